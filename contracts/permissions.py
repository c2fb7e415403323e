"""Who may change a contract: written once, called by the contract services and the orchestrator."""

from rest_framework.exceptions import PermissionDenied

from tenancy.capabilities import CONTRACTS_MANAGE
from tenancy.permissions import has_capability


def require_contract_editor(*, contract, user) -> None:
    """Editing, resubmitting and amending: the contract's creator or ``contracts.manage``."""
    if contract.created_by_id != user.pk and not has_capability(user, CONTRACTS_MANAGE):
        raise PermissionDenied(
            "Only the contract's creator or a holder of 'contracts.manage' may change it."
        )
