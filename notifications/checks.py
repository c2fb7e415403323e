"""System check: the delivery lease must outlast a send, or the worker could never send."""

from django.conf import settings
from django.core import checks


@checks.register()
def check_lease_outlasts_a_send(app_configs=None, **kwargs):
    from notifications.delivery import LEASE_MARGIN_SECONDS, longest_send_seconds

    longest_send = longest_send_seconds()
    needed = longest_send + LEASE_MARGIN_SECONDS
    if needed < settings.NOTIFICATION_LEASE_SECONDS:
        return []
    return [
        checks.Error(
            f"NOTIFICATION_LEASE_SECONDS ({settings.NOTIFICATION_LEASE_SECONDS}) must exceed the "
            f"longest send (WEBHOOK_TIMEOUT_SECONDS / EMAIL_TIMEOUT: {longest_send} s) plus "
            f"{LEASE_MARGIN_SECONDS} s: a worker starts a send only with that much lease left, "
            "so it would claim batches and hand them back without sending, in a busy loop.",
            id="notifications.E001",
        )
    ]
