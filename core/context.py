"""Who is acting, from where: set once per request (or per command) and read by audit and logs.

A ``ContextVar`` rather than a thread-local, so it is correct under threads and async alike.
"""

import ipaddress
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

from django.conf import settings

Value = TypeVar("Value")


@contextmanager
def set_within(variable: ContextVar[Value], value: Value) -> Iterator[Value]:
    """``variable`` is ``value`` within the block, and what it was before after it."""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_USER_AGENT_MAX = 512


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip_address: str | None = None
    user_agent: str = ""
    actor_id: object | None = None


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def current_request_context() -> RequestContext | None:
    return _current.get()


def new_request_id(candidate: str | None = None) -> str:
    """Accept a caller's X-Request-ID when it is sane, so traces join up; otherwise mint one."""
    if candidate and _REQUEST_ID_PATTERN.match(candidate):
        return candidate
    return uuid.uuid4().hex


def client_ip(meta) -> str | None:
    """REMOTE_ADDR, or the address the configured number of trusted proxies saw.

    X-Forwarded-For is client-controlled up to the first trusted proxy, so only the entry that the
    outermost trusted proxy appended is believed.

    An entry that is not an IP address (a garbled header) is ignored rather than stored: the audit
    column is ``inet``, and a bad value there would fail the request being audited.
    """
    trusted = settings.TRUSTED_PROXY_COUNT
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if trusted > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted:
            address = _ip_or_none(hops[-trusted])
            if address is not None:
                return address
    return _ip_or_none(meta.get("REMOTE_ADDR") or "")


def _ip_or_none(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # PostgreSQL's inet has no IPv6 zone ("fe80::1%eth0"); such a peer is not worth failing over.
    return None if getattr(address, "scope_id", None) else str(address)


def _printable(value: str) -> str:
    """Header text without control characters (PostgreSQL refuses NUL in text columns)."""
    return "".join(char for char in value if char.isprintable())


def context_from_request(request) -> RequestContext:
    return RequestContext(
        request_id=new_request_id(request.META.get("HTTP_X_REQUEST_ID")),
        ip_address=client_ip(request.META),
        user_agent=_printable(request.META.get("HTTP_USER_AGENT", ""))[:_USER_AGENT_MAX],
    )


def request_context(context: RequestContext):
    return set_within(_current, context)


def set_actor(actor_id) -> None:
    """Record the authenticated user once DRF has authenticated the request."""
    context = _current.get()
    if context is not None:
        _current.set(replace(context, actor_id=actor_id))
