"""Signature providers: who collects the signatures of a request.

A provider does three things (``SignatureProvider``): ``send`` invites a signer whose turn it is
(the worker calls it), ``parse_webhook`` turns a provider's status callback into ``SignerEvent``s
(verified, or ``ProviderError``), and ``fetch_signed_document`` returns the signed PDF once every
signer signed. The services own the state: providers never write rows.

* ``builtin``: this service's own signing page. ``send`` makes a single-use link and e-mails it;
  its events come from the page itself, so it has no webhook; the signed PDF is rendered here.
* ``external``: any provider reached through ``HttpProvider``'s small JSON protocol (an adapter
  for DocuSign, Documenso or DocuSeal translates it; docs/documents.md). Configured by
  ``SIGNATURE_PROVIDER_URL`` and ``SIGNATURE_PROVIDER_SECRET``.
"""

import base64
import hashlib
import hmac
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

BUILTIN = "builtin"
EXTERNAL = "external"
SIGNATURE_HEADER = "X-Signature"
EVENTS = ("viewed", "signed", "declined")


class ProviderError(Exception):
    """A provider call failed or a callback did not verify."""


@dataclass(frozen=True)
class SignerEvent:
    reference: str  # the provider's id of the request (envelope)
    email: str
    event: str  # one of EVENTS
    ip_address: str | None = None
    user_agent: str = ""
    reason: str = ""


class SignatureProvider:
    name = ""

    def send(self, *, signer, token: str | None) -> str | None:
        """Invite ``signer`` (its request loaded); returns the request's provider reference."""
        raise NotImplementedError

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> list[SignerEvent]:
        raise NotImplementedError

    def fetch_signed_document(self, *, request) -> bytes | None:
        """The signed PDF, or None when this service renders it."""
        raise NotImplementedError


class BuiltinProvider(SignatureProvider):
    name = BUILTIN
    uses_links = True

    def send(self, *, signer, token: str | None) -> str | None:
        request = signer.request
        link = f"{settings.PUBLIC_BASE_URL.rstrip('/')}{reverse('sign', args=[token])}"
        send_mail(
            subject=f"Please sign: {request.contract.title}",
            message=(
                f"Hello {signer.name},\n\nyou are asked to sign '{request.contract.title}'."
                f"\n{request.message}\n\nRead and sign it here (the link works once, until "
                f"{request.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n"
            ),
            from_email=None,
            recipient_list=[signer.email],
        )
        return None

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> list[SignerEvent]:
        raise ProviderError("the built-in provider takes no webhooks: its page records events")

    def fetch_signed_document(self, *, request) -> bytes | None:
        return None


class HttpProvider(SignatureProvider):
    """An external provider behind a small JSON protocol:

    * ``POST {url}/envelopes`` ``{request, order, message, document (base64 PDF), signers:
      [{email, name, position}], callback_url}`` → ``{"id": ...}``; then ``POST
      {url}/envelopes/{id}/invite`` ``{email}`` for each signer whose turn it is;
    * callbacks ``POST callback_url`` ``{envelope, email, event, ip_address?, user_agent?,
      reason?}`` signed ``X-Signature: sha256=<hex HMAC-SHA256 of the body>`` with the secret;
    * ``GET {url}/envelopes/{id}/document`` → the signed PDF.
    """

    name = EXTERNAL
    uses_links = False

    def __init__(self, *, url: str, secret: str, timeout: float = 10):
        self.url, self.secret, self.timeout = url.rstrip("/"), secret, timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        call = urllib.request.Request(  # noqa: S310 (the operator's configured https/http URL)
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **self._signed(data or b"")},
        )
        try:
            with urllib.request.urlopen(call, timeout=self.timeout) as response:  # noqa: S310
                return response.read()
        except OSError as exc:
            raise ProviderError(f"{method} {path}: {exc}") from exc

    def _signed(self, body: bytes) -> dict:
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"sha256={digest}"}

    def send(self, *, signer, token: str | None) -> str | None:
        from documents import rendering, selectors  # fpdf2 is slow to import

        request = signer.request
        reference = request.provider_reference
        if not reference:
            document = rendering.render_contract(selectors.contract_inputs(request=request))
            created = self._call(
                "POST",
                "/envelopes",
                {
                    "request": str(request.pk),
                    "order": request.order,
                    "message": request.message,
                    "document": base64.b64encode(document).decode(),
                    "signers": [
                        {"email": row.email, "name": row.name, "position": row.position}
                        for row in request.signers.order_by("position")
                    ],
                    "callback_url": settings.PUBLIC_BASE_URL.rstrip("/")
                    + reverse("signature-provider-webhook", args=[self.name, signer.tenant_id]),
                },
            )
            reference = json.loads(created)["id"]
        self._call("POST", f"/envelopes/{reference}/invite", {"email": signer.email})
        return reference

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> list[SignerEvent]:
        expected = self._signed(body)[SIGNATURE_HEADER]
        if not hmac.compare_digest(headers.get(SIGNATURE_HEADER, ""), expected):
            raise ProviderError("the callback's signature does not verify")
        try:
            event = json.loads(body)
            parsed = SignerEvent(
                reference=str(event["envelope"]),
                email=str(event["email"]).lower(),
                event=str(event["event"]),
                ip_address=event.get("ip_address"),
                user_agent=str(event.get("user_agent", ""))[:512],
                reason=str(event.get("reason", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("the callback is not an event") from exc
        if parsed.event not in EVENTS:
            raise ProviderError(f"unknown event {parsed.event!r}")
        return [parsed]

    def fetch_signed_document(self, *, request) -> bytes | None:
        return self._call("GET", f"/envelopes/{request.provider_reference}/document")


def available() -> dict[str, SignatureProvider]:
    providers: dict[str, SignatureProvider] = {BUILTIN: BuiltinProvider()}
    if settings.SIGNATURE_PROVIDER_URL:
        providers[EXTERNAL] = HttpProvider(
            url=settings.SIGNATURE_PROVIDER_URL, secret=settings.SIGNATURE_PROVIDER_SECRET
        )
    return providers


def provider(name: str) -> SignatureProvider:
    try:
        return available()[name]
    except KeyError as exc:
        raise ProviderError(f"no signature provider {name!r} is configured") from exc
