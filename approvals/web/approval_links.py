"""The page an approval e-mail's personal link opens: ``/approve/<token>/``.

GET shows the contract and the decision form and changes nothing (mail scanners and link
previews open links). POST decides through ``approvals.link_services`` (CSRF-protected). A dead,
expired or unknown link answers 410 with a page saying why; a throttled client 429.

The page has no login: the token names the tenant (``approval_link_tenant``) and the request's
row-level security scope is narrowed to it, as authentication does for the API.
"""

from zoneinfo import ZoneInfo

from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import APIException, ValidationError

from approvals.link_selectors import (
    UNKNOWN_LINK,
    LinkProblem,
    approval_link_get,
    approval_link_problem,
    approval_link_tenant,
)
from approvals.link_services import LINK_ACTIONS, LinkUnusable, approval_link_decide
from approvals.orchestrator import ApprovalAction
from config.exceptions import error_message
from contracts.models import amount_text
from core import rls
from core.links import contract_url
from core.public_pages import public_page
from tenancy.throttling import link_wait

COMMENTS_MAX_LENGTH = 5000
ACTION_LABELS = {
    ApprovalAction.APPROVE: "Approve",
    ApprovalAction.REQUEST_CHANGES: "Request changes",
    ApprovalAction.REJECT: "Reject",
}
DONE_TEXT = {
    ApprovalAction.APPROVE: "You approved",
    ApprovalAction.REJECT: "You rejected",
    ApprovalAction.REQUEST_CHANGES: "You sent back for changes",
}


def _page(request, template: str, context: dict, status: int = 200):
    return public_page(request, f"approvals/{template}", context, status=status)


def _gone(request, problem: LinkProblem, **headers):
    response = _page(request, "link_gone.html", {"problem": problem}, status=problem.status)
    for name, value in headers.items():
        response[name] = value
    return response


def _summary(link) -> dict:
    approval, contract, tenant = link.approval, link.approval.contract, link.user.tenant
    zone = ZoneInfo(tenant.timezone)
    return {
        "link": link,
        "approval": approval,
        "contract": contract,
        "value": amount_text(contract.value, contract.currency),
        "stage": approval.stage,
        "due_at": timezone.localtime(approval.due_at, zone) if approval.due_at else None,
        "expires_at": timezone.localtime(link.expires_at, zone),
        "timezone": tenant.timezone,
        "contract_url": contract_url(contract.pk),
        "actions": [(action, ACTION_LABELS[action]) for action in LINK_ACTIONS],
    }


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def approval_link_page(request, token: str):
    wait = link_wait(request.META)
    if wait:
        problem = LinkProblem(429, "Too many requests", f"Try again in {wait} seconds.")
        return _gone(request, problem, **{"Retry-After": str(wait)})
    tenant_id = approval_link_tenant(token=token)
    if tenant_id is None:
        return _gone(request, UNKNOWN_LINK)
    rls.activate_tenant(tenant_id)
    if request.method == "POST":
        return _decide(request, tenant_id, token)
    link = approval_link_get(tenant_id=tenant_id, token=token)
    if link is None:
        return _gone(request, UNKNOWN_LINK)
    problem = approval_link_problem(link)
    if problem is not None:
        return _gone(request, problem)
    return _page(request, "link_confirm.html", _summary(link))


def _decide(request, tenant_id, token: str):
    action = request.POST.get("action", "")
    comments = request.POST.get("comments", "")
    try:
        if len(comments) > COMMENTS_MAX_LENGTH:
            raise ValidationError(
                {"comments": [f"A comment may have at most {COMMENTS_MAX_LENGTH} characters."]}
            )
        link = approval_link_decide(
            tenant_id=tenant_id, token=token, action=action, comments=comments
        )
    except LinkUnusable as exc:
        return _gone(request, exc.problem)
    except ValidationError as exc:
        link = approval_link_get(tenant_id=tenant_id, token=token)
        if link is None:
            return _gone(request, UNKNOWN_LINK)
        context = {
            **_summary(link),
            "error": error_message(exc.detail),
            "comments": comments[:COMMENTS_MAX_LENGTH],
        }
        return _page(request, "link_confirm.html", context, status=400)
    except APIException as exc:  # the orchestrator refused (a race lost to another decision)
        problem = LinkProblem(
            exc.status_code, "The decision was not recorded", error_message(exc.detail)
        )
        return _gone(request, problem)
    context = {**_summary(link), "done": DONE_TEXT[action], "comments": comments.strip()}
    return _page(request, "link_done.html", context)
