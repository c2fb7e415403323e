"""The signing page: anyone holding a live link reads the document and signs or declines.

No login: the link is the credential. It names its signer by a token whose SHA-256 is all the
database keeps; everything runs in the signer's tenant's row-level security scope.
"""

import hashlib

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from rest_framework.exceptions import APIException, ValidationError

from contracts.models import amount_text
from core import rls
from core.context import client_ip
from core.public_pages import public_page
from documents import selectors, services

MAX_TOKEN_LENGTH = 200


def _live_signer(token: str):
    """(signer, None) for a live link, else (signer or None, why it is dead)."""
    signer = selectors.signer_by_token(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if signer is None:
        return None, "This signing link is not valid. Check that you copied all of it."
    return signer, selectors.signer_link_problem(signer)


def _dead(request, signer, problem: str) -> HttpResponse:
    return public_page(
        request,
        "documents/sign_closed.html",
        {"problem": problem, "contract": signer.request.contract if signer else None},
        status=410,
    )


def _contract_pdf(inputs: dict) -> bytes:
    """The PDF of ``selectors.contract_inputs``: what the signer is asked to sign."""
    from documents import rendering  # fpdf2 is slow to import: only the pages that render

    return rendering.render_contract(inputs)


@never_cache
def sign(request, token: str):
    signer, problem = _live_signer(token)
    if problem:
        return _dead(request, signer, problem)
    with rls.tenant_scope(signer.tenant_id):
        return _sign_in_scope(request, signer, token)


def _sign_in_scope(request, signer, token: str) -> HttpResponse:
    inputs = selectors.contract_inputs(request=signer.request)
    contract = inputs["contract"]
    context = {
        "signer": signer,
        "token": token,
        "contract": contract,
        "amount": amount_text(contract["value"], contract["currency"]),
        "signature_request": signer.request,
    }
    if request.method == "GET":
        if signer.viewed_at is None:  # the first view records the hash of what is shown
            pdf = _contract_pdf(inputs)
            services.signer_viewed(signer=signer, document_sha256=hashlib.sha256(pdf).hexdigest())
        return public_page(request, "documents/sign.html", context)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    declining = request.POST.get("decline") == "1"
    try:
        if declining:
            services.signer_decline(signer=signer, reason=request.POST.get("reason", ""))
        else:  # the done page thanks the signer by the name they typed
            context["signer"] = services.signer_sign(
                signer=signer,
                typed_name=request.POST.get("full_name", ""),
                consent=request.POST.get("consent") == "on",
                ip_address=client_ip(request.META),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
    except ValidationError as exc:
        errors = [str(message) for messages in exc.detail.values() for message in messages]
        return public_page(
            request,
            "documents/sign.html",
            {**context, "errors": errors, "declining": declining, "form": request.POST},
            status=400,
        )
    except APIException as exc:  # the link died meanwhile (409)
        return _dead(request, signer, str(exc.detail))
    return public_page(request, "documents/sign_done.html", {**context, "declined": declining})


@never_cache
@xframe_options_sameorigin
def sign_document(request, token: str):
    """The contract as a PDF, exactly what the page asks the signer to sign."""
    signer, problem = _live_signer(token)
    if problem:
        return _dead(request, signer, problem)
    with rls.tenant_scope(signer.tenant_id):
        pdf = _contract_pdf(selectors.contract_inputs(request=signer.request))
        response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="contract.pdf"'
    return response
