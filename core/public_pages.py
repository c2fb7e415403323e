"""The pages opened from a link in an e-mail, without a login: approval links and signing links.

Both families extend ``core/public_base.html``, whose one stylesheet is the static file
``core/public.css``. The policy allows that and nothing else: no inline style or script, nothing
from another origin, forms posting only to this site, never framed. The views add ``no-store``
themselves (``never_cache``), for their other answers too.
"""

from django.http import HttpResponse
from django.shortcuts import render

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def public_page(request, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """``template`` rendered with this family's security and robots headers."""
    response = render(request, template, context, status=status)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
