"""The notification fan-out as a port: for set-based statements of apps below notifications.

The SLA check (approvals) writes its reminders and breach notices in its own statement, with
the CTEs of notifications' one writer (``notifications.services.fanout_ctes``). Notifications is
the layer above, so the check cannot import it: notifications registers its writer here when
its app is ready (``NotificationsConfig.ready``), and callers compose ``fanout_ctes`` from here.
Until one is registered a call fails loudly: no statement runs without its notifications.

``Priority`` lives here because both sides name it: the check in its messages, notifications
in its model.
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class Priority(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# Keyword arguments ``messages, recipients, kinds, params, occurred_at, now``; returns the CTEs.
FanoutCtes = Callable[..., str]
_writers: list[FanoutCtes] = []


def register_fanout(writer: FanoutCtes) -> None:
    """The writer ``fanout_ctes`` calls from now on (registering again replaces it)."""
    _writers[:] = [writer]


def fanout_ctes(**arguments) -> str:
    """The registered writer's CTEs for a set of events; the arguments, and what the CTEs
    write and define, are those of ``notifications.services.fanout_ctes``."""
    if not _writers:
        raise ImproperlyConfigured(
            "No notification fan-out is registered: the notifications app registers it in its "
            "AppConfig.ready(); is it in INSTALLED_APPS?"
        )
    return _writers[0](**arguments)
