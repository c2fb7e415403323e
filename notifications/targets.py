"""Which webhook URLs the service will call (SSRF protection).

A webhook URL is tenant input that the worker later fetches from inside our network, so:

* only ``http`` and ``https``; no credentials in the URL (``user:pass@``); a host is required;
* unless ``settings.WEBHOOK_ALLOW_PRIVATE_TARGETS`` is on, targets on loopback, private,
  link-local (cloud metadata at 169.254.169.254), shared, reserved or multicast addresses are
  refused (IPv6 forms that embed an IPv4 address, such as ``::ffff:127.0.0.1``, ``::7f00:1``,
  NAT64, 6to4 and Teredo, by the embedded address: see ``embedded_ipv4``): at creation for
  literal addresses and obviously-internal names (``localhost``,
  single-label names such as ``db``), and again at delivery for whatever the name resolves to.
  The delivery connects to the address it checked (no second lookup, so DNS rebinding cannot
  swap it), follows no redirects and uses no proxy.
"""

import hashlib
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

ALLOWED_SCHEMES = ("http", "https")
URL_MAX_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(Exception):
    """The URL's host resolves to an address the service must not call.

    ``str(exc)`` names the addresses (for the server log); ``public`` does not (for tenants).
    """

    def __init__(self, message: str, public: str):
        super().__init__(message)
        self.public = public


def private_targets_allowed() -> bool:
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)


IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated, RFC 4291)
NAT64_PREFIXES = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # well-known NAT64 prefix (RFC 6052)
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 prefix (RFC 8215), /96 layout
)
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 2002:AABB:CCDD::/48 carries A.B.C.D
TEREDO = ipaddress.IPv6Network("2001::/32")  # server IPv4, then the client's XOR 0xffffffff


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses packets to ``address`` end up at, when it is a form that embeds them.

    IPv4-mapped (``::ffff:127.0.0.1``) and IPv4-compatible (``::7f00:1``) addresses, NAT64
    (``64:ff9b::/96``; ``64:ff9b:1::/48`` read as a /96 prefix: the last 32 bits), 6to4
    (``2002::/16``: bytes 2-5) and Teredo (``2001::/32``: the server, bytes 4-7, and the client,
    the last 32 bits XOR 0xffffffff). ``None`` for any other address.
    """
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in IPV4_COMPATIBLE or any(address in prefix for prefix in NAT64_PREFIXES):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in SIX_TO_FOUR:
        return [address.sixtofour]
    if address in TEREDO:
        return list(address.teredo)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Global unicast; an IPv6 form that embeds IPv4 addresses is judged by every one of them."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return all(is_public_address(ipv4) for ipv4 in embedded)
    return address.is_global and not address.is_multicast


def _literal_address(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal, including legacy IPv4 forms (``0x7f.1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def parse_webhook_url(url: str) -> SplitResult:
    """The split URL, or ``ValidationError`` saying what is wrong with it."""
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(f"At most {URL_MAX_LENGTH} characters.")
    if any(character.isspace() or ord(character) < 32 for character in url):
        raise ValidationError("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError("Enter a valid URL.") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValidationError("Only http and https URLs are allowed.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("Credentials in the URL are not allowed; use the secret instead.")
    host = parts.hostname
    if not host:
        raise ValidationError("Enter a valid URL with a host.")
    if port == 0:
        raise ValidationError("Enter a valid port.")
    try:
        host.encode("idna")
    except UnicodeError as exc:
        raise ValidationError("Enter a valid host name.") from exc
    return parts


def validate_webhook_url(url: str) -> str:
    """Syntax always; literal private targets too unless private targets are allowed."""
    parts = parse_webhook_url(url)
    if private_targets_allowed():
        return url
    host = parts.hostname.rstrip(".")
    address = _literal_address(host)
    if address is not None:
        if not is_public_address(address):
            raise ValidationError("Private, loopback and reserved addresses are not allowed.")
        return url
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        raise ValidationError("The host must be a public, fully qualified domain name.")
    return url


def redacted_url(url: str) -> str:
    """``url`` as audit rows show it: scheme and host, then a hash of everything else.

    ``https://hooks.example.com/services/T0/B0/xyz?token=abc`` becomes
    ``https://hooks.example.com/…#sha256:<16 hex>``: the port, path, query and fragment (where
    tokens travel; credentials too, though they are refused anyway) are replaced by the first
    16 hex digits of the SHA-256 of that rest as written, so the same URL always reads the same
    and a change of it shows, without the secret parts. A string that is not a URL with a host
    is hashed whole (``…#sha256:<16 hex>``).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return f"…#sha256:{_short_digest(url)}"
    start = url.find(f"//{parts.netloc}")
    if not host or start < 0:
        return f"…#sha256:{_short_digest(url)}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    after_host = url[start + 2 + len(parts.netloc) :]
    rest = userinfo + at + (f":{port}" if port is not None else "") + after_host
    host_part = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host_part}/…#sha256:{_short_digest(rest)}"


def _short_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def resolve_target(parts: SplitResult) -> tuple[str, int]:
    """The address and port to connect to; ``UnsafeTarget`` when it is not public.

    Every address the name resolves to must be public (an attacker's name may resolve to a
    public and a private address and let the client pick).
    """
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(
            f"cannot resolve {parts.hostname}: {exc}", "the host name cannot be resolved"
        ) from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnsafeTarget(
            f"{parts.hostname} resolves to no address", "the host name cannot be resolved"
        )
    unsafe = [str(address) for address in addresses if not is_public_address(address)]
    if unsafe:
        raise UnsafeTarget(
            f"{parts.hostname} resolves to a non-public address ({unsafe[0]})",
            "the host name resolves to a non-public address",
        )
    return str(addresses[0]), port
