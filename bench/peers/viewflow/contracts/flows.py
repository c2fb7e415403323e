"""Contract approval: Start -> Legal -> Finance -> Executive -> End.

Each approval is a viewflow human task (flow.View) open to holders of a permission that
only one group ("legal", "finance", "ceo") has: a member takes it (assign) and approves
it (execute), as viewflow's own assign and UpdateProcessView views do.
"""

from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.flow import views

from .models import Contract

APPROVE = views.UpdateProcessView.as_view(fields=[])


class ContractApprovalFlow(flow.Flow):
    # viewflow's documented choice for PostgreSQL (the default is no lock at all).
    lock_impl = lock.select_for_update_lock

    start = flow.StartHandle(this.create_contract).Next(this.legal_approval)
    legal_approval = (
        flow.View(APPROVE).Permission("contracts.approve_legal").Next(this.finance_approval)
    )
    finance_approval = (
        flow.View(APPROVE).Permission("contracts.approve_finance").Next(this.ceo_approval)
    )
    ceo_approval = flow.View(APPROVE).Permission("contracts.approve_ceo").Next(this.end)
    end = flow.End()

    def create_contract(self, activation, *, title, contract_type, value):
        contract = Contract.objects.create(title=title, contract_type=contract_type, value=value)
        activation.process.artifact = contract
        return activation.process
