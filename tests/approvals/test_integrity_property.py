"""Approval integrity as a property: random sequences of edits and decisions on one contract.

A hypothesis state machine drives one contract through the services and the orchestrator
(edits of business fields, approvals, rejections, delegations, requests for changes,
resubmissions, cancel and restart, amendments) with a small pool of people, several of them
holding more than one role. Refusals (400, 403, 409) are fine: the machine tries things that
the rules forbid on purpose. After every step:

* ``check_consistency`` finds nothing;
* nobody holds two live decisions of one instance (every definition has distinct approvers);
* the contract's revision and hash are its newest revision's;
* an ``approved`` contract's newest, completed workflow has, at every required stage, the
  approvals its type needs (all: every live row; any: one; quorum: ``min_approvals``), each
  made on the contract's current revision unless the stage's ``reset_on_change`` does not fire
  on the fields the revisions since then changed.

The policy is evaluated here independently of ``workflows.stages.reset_fires``.
"""

from collections import Counter
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from rest_framework.exceptions import APIException

from approvals.consistency import consistency_check
from approvals.lifecycle import contract_amend, contract_create, contract_update
from approvals.models import ApprovalStatus, InstanceStatus, StageStatus, WorkflowStageApproval
from approvals.orchestrator import (
    approval_act,
    workflow_cancel,
    workflow_resubmit,
    workflow_start,
)
from contracts.models import ContractStatus
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db

# The default definition: "any", then a quorum, then "all" with an optional stage in parallel.
# The first two stages' policies are disjoint, so an edit may re-open one and keep the other.
STANDARD = [
    {
        "stage_name": "Legal",
        "sequence": 1,
        "approvers": ["legal", "privacy"],
        "approval_type": "any",
        "reset_on_change": ["value", "text"],
    },
    {
        "stage_name": "Finance",
        "sequence": 2,
        "approvers": ["finance", "cfo", "risk"],
        "approval_type": "quorum",
        "min_approvals": 2,
        "reset_on_change": ["metadata", "title"],
    },
    {"stage_name": "Exec", "sequence": 3, "approvers": ["ceo", "cfo"]},
    {
        "stage_name": "Ops",
        "sequence": 3,
        "approvers": ["ops"],
        "is_required": False,
        "reset_on_change": "never",
    },
]
# What a contract of 5,000 or more goes to: an edit of the value re-routes it.
LARGE = [
    {"stage_name": "Board", "sequence": 1, "approvers": ["ceo", "legal"], "approval_type": "any"},
    {
        "stage_name": "Sign",
        "sequence": 2,
        "approvers": ["cfo", "risk"],
        "reset_on_change": ["title"],
    },
]
# The pool: several people hold two roles; the last one holds none.
POOL_ROLES = (
    ("legal",),
    ("privacy", "finance"),
    ("finance", "cfo"),
    ("risk", "ceo"),
    ("ceo",),
    ("ops", "legal"),
    ("cfo", "privacy"),
    (),
)
EDITS = {
    "value": [Decimal("1000.00"), Decimal("2000.00"), Decimal("9000.00")],
    "text": ["Text A.", "Text B.", "Text C."],
    "metadata": [{}, {"k": 1}, {"k": 2}],
    "title": ["Title 1", "Title 2", "Title 3"],
}
RETIRED = (ApprovalStatus.DELEGATED, ApprovalStatus.SUPERSEDED, ApprovalStatus.CANCELLED)
DECIDED = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
OPEN = (InstanceStatus.ACTIVE, InstanceStatus.CHANGES_REQUESTED)
REFUSALS = (400, 403, 409)

picks = st.integers(min_value=0, max_value=7)
# Drawn uniformly from this list: approvals most often, so that workflows get to their end.
OPERATIONS = (
    ["approve"] * 8
    + ["patch"] * 3
    + ["resubmit"] * 2
    + ["reject", "delegate", "request_changes", "cancel_and_restart", "amend"]
)


def policy_fires(policy, changed: set[str]) -> bool:
    if not changed or policy == "never":
        return False
    if policy == "any":
        return True
    return bool(changed & set(policy))


class IntegrityMachine(RuleBasedStateMachine):
    """One contract per example; the world (tenant, people, definitions) is the test's."""

    world: dict = {}
    stats: Counter = Counter()

    @initialize()
    def create(self):
        # Each example's writes are rolled back in teardown, so every example (and every replay
        # while shrinking) starts from the same database.
        self.example = transaction.atomic()
        self.example.__enter__()
        self.tenant, self.creator = self.world["tenant"], self.world["creator"]
        self.contract = contract_create(
            tenant=self.tenant,
            created_by=self.creator,
            title="Title 1",
            contract_type="MSA",
            value=Decimal("1000.00"),
            text="Text A.",
            metadata={},
        )

    def teardown(self):
        if hasattr(self, "example"):
            transaction.set_rollback(True)
            self.example.__exit__(None, None, None)

    # --- helpers ------------------------------------------------------------------------------

    def attempt(self, name, call) -> None:
        """Run one operation; a refusal is fine, anything else fails the example."""
        try:
            call()
        except APIException as exc:
            refused = exc
        else:
            self.stats[f"{name} ok"] += 1
            return
        assert refused.status_code in REFUSALS, f"{name}: {refused!r}"
        self.stats[f"{name} refused {refused.get_codes()}"] += 1

    def open_rows(self):
        """The pending rows of the open instance's current sequence (stable order)."""
        instance = self.contract.workflow_instances.filter(status__in=OPEN).first()
        if instance is None:
            return []
        return list(
            instance.approvals.filter(
                status=ApprovalStatus.PENDING, stage__sequence=instance.current_sequence
            )
            .select_related("stage")
            .order_by("stage__stage_name", "approver", "created_at")
        )

    def eligible(self, user, row) -> bool:
        if row.assigned_to_id is not None:
            return row.assigned_to_id == user.pk
        return row.role in self.world["roles"][user.pk]

    def choose(self, row_pick, user_pick, *, optional_only=False):
        """A pending row and someone to act on it: mostly an eligible holder who has not decided
        yet (so workflows progress), sometimes any holder or anyone at all (so the refusals are
        exercised too)."""
        rows = [row for row in self.open_rows() if not optional_only or not row.stage.is_required]
        pool = self.world["pool"]
        if not rows or user_pick == 7:
            return (rows[row_pick % len(rows)] if rows else None), pool[user_pick % len(pool)]
        row = rows[row_pick % len(rows)]
        holders = [user for user in pool if self.eligible(user, row)]
        if user_pick < 6:
            decided = set(
                WorkflowStageApproval.objects.filter(
                    instance_id=row.instance_id, status__in=DECIDED
                ).values_list("decided_by", flat=True)
            )
            holders = [user for user in holders if user.pk not in decided] or holders
        return row, (holders[user_pick % len(holders)] if holders else pool[user_pick])

    def act(self, name, row, user, action, **extra) -> None:
        self.attempt(
            name,
            lambda: approval_act(
                tenant=self.tenant,
                contract_id=self.contract.pk,
                actor=user,
                action=action,
                approval_id=row.pk if row is not None else None,
                **extra,
            ),
        )

    # --- operations ---------------------------------------------------------------------------

    @rule(
        operation=st.sampled_from(OPERATIONS),
        field=st.sampled_from(sorted(EDITS)),
        choice=st.integers(0, 2),
        row_pick=picks,
        user_pick=picks,
        to_pick=picks,
        required_too=st.booleans(),
    )
    def step(self, operation, field, choice, row_pick, user_pick, to_pick, required_too):
        """One operation, drawn with weights that let workflows reach their end."""
        if operation == "approve":  # where nothing can be approved, move the contract on
            status = self.contract.status  # as the last invariant check read it
            if status == ContractStatus.APPROVED:
                operation = "amend"
                if getattr(self.contract, field) == EDITS[field][choice]:
                    choice = (choice + 1) % len(EDITS[field])  # an amendment changes something
            elif status in (ContractStatus.REJECTED, ContractStatus.CANCELLED):
                operation = "cancel_and_restart"
            elif status == ContractStatus.CHANGES_REQUESTED and user_pick < 4:
                operation = "resubmit"
        if operation in ("patch", "amend"):
            service = contract_update if operation == "patch" else contract_amend
            actor = "updated_by" if operation == "patch" else "amended_by"
            self.attempt(
                operation,
                lambda: service(
                    tenant=self.tenant,
                    contract_id=self.contract.pk,
                    **{actor: self.creator, field: EDITS[field][choice]},
                ),
            )
        elif operation == "reject":  # mostly on the optional stage: the workflow goes on
            row, user = self.choose(row_pick, user_pick, optional_only=not required_too)
            if row is not None:
                self.act("reject", row, user, "reject")
        elif operation == "delegate":
            row, user = self.choose(row_pick, user_pick)
            self.act("delegate", row, user, "delegate", delegate_to=self.world["pool"][to_pick])
        elif operation == "request_changes":
            row, user = self.choose(row_pick, user_pick)
            self.act("request_changes", row, user, "request_changes", comments="Please fix.")
        elif operation == "resubmit":
            self.attempt(
                "resubmit",
                lambda: workflow_resubmit(
                    tenant=self.tenant, contract_id=self.contract.pk, actor=self.creator
                ),
            )
        elif operation == "cancel_and_restart":
            self.attempt(
                "cancel",
                lambda: workflow_cancel(
                    tenant=self.tenant, contract_id=self.contract.pk, actor=self.creator
                ),
            )
            self.attempt(
                "restart", lambda: workflow_start(contract=self.contract, started_by=self.creator)
            )
        else:
            row, user = self.choose(row_pick, user_pick)
            self.act("approve", row, user, "approve")

    # --- the property -------------------------------------------------------------------------

    @invariant()
    def integrity(self):
        contract = self.contract
        contract.refresh_from_db()
        assert consistency_check(tenant_id=self.tenant.pk).violations == []
        revisions = {rev.number: rev for rev in contract.revisions.all()}
        assert max(revisions) == contract.revision
        assert revisions[contract.revision].content_hash == contract.content_hash
        instances = list(contract.workflow_instances.order_by("-started_at", "-id"))
        for instance in instances:
            assert instance.distinct_approvers
            deciders = list(
                instance.approvals.filter(status__in=DECIDED).values_list("decided_by", flat=True)
            )
            assert len(deciders) == len(set(deciders)), deciders
        if instances and instances[0].status in OPEN:
            ahead = instances[0].stages.filter(
                sequence__gt=instances[0].current_sequence, status=StageStatus.APPROVED
            )
            if ahead.exists():  # a reset kept a later stage: the shape where skipping hid
                self.stats["steps with a settled stage ahead of the current one"] += 1
        if contract.status != ContractStatus.APPROVED:
            return
        self.stats["steps ending approved"] += 1
        instance = instances[0]
        assert instance.status == InstanceStatus.COMPLETED

        def changed_since(number: int) -> set[str]:
            return {
                name
                for later in range(number + 1, contract.revision + 1)
                for name in revisions[later].changed_fields
            }

        for stage in instance.stages.filter(is_required=True).prefetch_related("approvals"):
            assert stage.status == StageStatus.APPROVED, stage
            live = [row for row in stage.approvals.all() if row.status not in RETIRED]
            approved = [row for row in live if row.status == ApprovalStatus.APPROVED]
            fresh = [
                row
                for row in approved
                if row.revision == contract.revision
                or not policy_fires(stage.reset_on_change, changed_since(row.revision))
            ]
            needed = {
                "all": len(live),
                "any": 1,
                "quorum": stage.min_approvals,
            }[stage.approval_type]
            assert len(fresh) >= needed, (stage.stage_name, contract.revision, live)
            assert all(row.revision is not None for row in approved)
            if any(row.revision < contract.revision for row in fresh):
                self.stats["approved stages keeping an older approval"] += 1


# The property was exercised: contracts were edited, sent back, partly reset (a later stage kept
# while an earlier one re-opened) and approved along the way.
EXERCISED = (
    "patch ok",
    "request_changes ok",
    "steps with a settled stage ahead of the current one",
    "steps ending approved",
)


def test_approval_integrity_holds_under_random_operations(tenant):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    definition_create(tenant=tenant, created_by=admin, name="Standard", stages=STANDARD)
    definition_create(
        tenant=tenant,
        created_by=admin,
        name="Large",
        stages=LARGE,
        trigger_conditions={"value__gte": 5000},
        priority=10,
    )
    pool, roles = [], {}
    for held in POOL_ROLES:
        user = UserFactory(tenant=tenant)
        for role in held:
            UserRoleFactory(user=user, role=role)
        pool.append(user)
        roles[user.pk] = set(held)
    IntegrityMachine.world = {
        "tenant": tenant,
        "creator": UserFactory(tenant=tenant),
        "pool": pool,
        "roles": roles,
    }
    IntegrityMachine.stats = Counter()
    # A developer's run explores new examples (CI replays fixed ones), and one round of them
    # misses a shape now and then (a partial reset, above all): a round that missed one is
    # followed by another, up to three, so the verdict does not depend on the draw.
    for _ in range(3):
        run_state_machine_as_test(
            IntegrityMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
        if all(IntegrityMachine.stats[shape] for shape in EXERCISED):
            break
    stats = IntegrityMachine.stats
    print(f"integrity property: {dict(sorted(stats.items()))}")
    assert {shape: stats[shape] > 0 for shape in EXERCISED} == dict.fromkeys(EXERCISED, True)
