"""Writing audit rows. Services call ``audit_record`` inside their own transaction.

Every row carries the contract it is about (``AuditLog.contract``), derived here, in ``_row``,
from the row's resource (see ``_contract_of``) unless the caller names it (``contract=``).
"""

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from django.core.exceptions import FieldDoesNotExist

from audit.models import AuditLog
from core import rls
from core.context import current_request_context
from core.sql import Params, Prepared, insert_select

if TYPE_CHECKING:  # for the annotation only: tenancy sits above audit (docs/architecture.md)
    from tenancy.models import Tenant

# By label, not by import: the audit app does not depend on the apps whose rows it records.
CONTRACT_MODEL = "contracts.Contract"
# ``contract=`` not given: derive it from the resource.
DERIVED = object()


def _resource_fields(resource) -> tuple[str, str]:
    if resource is None:
        return "", ""
    return resource._meta.model_name, str(resource.pk)


def _contract_of(resource):
    """The id of the contract ``resource`` is about, or None; never a query.

    A contract: its own id. Anything with a ``contract_id`` (a workflow instance, an approval, an
    SLA breach): that. Anything with an ``instance`` that has one (a workflow stage): the
    instance's, when the instance is already loaded on it (the orchestrator's stages always carry
    theirs); otherwise None rather than a query per row.
    """
    if resource is None:
        return None
    meta = getattr(resource, "_meta", None)
    if meta is not None and meta.label == CONTRACT_MODEL:
        return resource.pk
    contract_id = getattr(resource, "contract_id", None)
    if contract_id is not None:
        return contract_id
    if meta is None:
        return None
    try:
        field = meta.get_field("instance")
    except FieldDoesNotExist:
        return None
    if not (field.many_to_one and field.is_cached(resource)):
        return None
    return getattr(field.get_cached_value(resource), "contract_id", None)


def audit_record(
    *,
    action: str,
    tenant: "Tenant | None",
    actor=None,
    resource=None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    changes: Mapping | None = None,
    contract=DERIVED,
) -> AuditLog:
    """Write one audit row with the current request's IP, user agent and request id.

    ``tenant`` None: a platform row. ``contract`` (a contract or its id, or None) overrides the
    one derived from ``resource``.
    """
    return AuditLog.objects.create(
        **_row(action, tenant, actor, resource, resource_type, resource_id, changes, contract)
    )


def audit_rls_bypass(*, reason: str, actor=None) -> AuditLog:
    """A platform audit row for a row-level security bypass (``core.rls``).

    It has no tenant, so no tenant's API lists it; platform administrators read it in the admin
    (the platform scope). Written inside the bypass, as the worker role.
    """
    return audit_record(
        action="rls_bypass",
        tenant=None,
        actor=actor,
        resource_type="database",
        resource_id="",
        changes={"reason": [None, reason]},
    )


@contextmanager
def audited_rls_bypass(*, reason: str, actor=None) -> Iterator[None]:
    """``core.rls.bypass`` for production's cross-tenant jobs (``tenancy.worker``: only they
    connect as the worker role, which the bypass runs as): logged and audited."""
    with rls.bypass(reason):
        audit_rls_bypass(reason=reason, actor=actor)
        yield


def audit_record_many(entries: Iterable[dict]) -> list[AuditLog]:
    """Bulk variant: one INSERT for many rows (each entry takes ``audit_record``'s arguments).

    The database numbers the rows (``AuditLog.seq``) in the order of ``entries``: the order the
    listing shows them in, since they share ``created_at``.
    """
    return AuditLog.objects.bulk_create([AuditLog(**_entry_row(entry)) for entry in entries])


def audit_rows_statement(entries: Iterable[dict]) -> tuple[Prepared, dict] | None:
    """``audit_record_many``'s rows as one prepared statement and its named parameters, for a
    caller that sends it with its own statements (``core.pipeline``); None for no entries.
    The rows are numbered in the order of ``entries``, as ``audit_record_many`` numbers them.
    """
    rows = [_entry_row(entry) for entry in entries]
    if not rows:
        return None
    for row in rows:
        row["id"] = uuid.uuid4()
        row["changes"] = json.dumps(row["changes"])
    statement, defaults = _insert_statement()
    return statement, {**defaults, **{key: [row[key] for row in rows] for key in _UNNESTED}}


# The values of ``_entry_row`` (and the key) the statement unnests, each with its SQL type.
_UNNESTED = {
    "id": "uuid", "tenant_id": "uuid", "action": "text", "actor_id": "uuid",
    "resource_type": "text", "resource_id": "text", "changes": "text", "ip_address": "inet",
    "user_agent": "text", "request_id": "text", "contract": "uuid",
}  # fmt: skip


# Raw SQL: the orchestrator writes every transition's rows with it, and compiling the ORM's
# INSERT, a placeholder per row and column, cost more client time than the rest of writing the
# transition (bench/bench_process.py). One text whatever the number of rows, so it is prepared.
@cache
def _insert_statement() -> tuple[Prepared, dict]:
    params = Params()
    columns = {key: f"a.{key}" for key in _UNNESTED if key != "contract"}
    arrays = ", ".join(f"%({key})s::{kind}[]" for key, kind in _UNNESTED.items())
    statement = insert_select(
        AuditLog,
        {**columns, "changes": "a.changes::jsonb", "contract_id": "a.contract"},
        f"unnest({arrays}) WITH ORDINALITY AS a({', '.join(_UNNESTED)}, n)",
        params,
        order_by="a.n",
    )
    return Prepared(statement), dict(params)


def _entry_row(entry: dict) -> dict:
    return _row(
        entry["action"],
        entry["tenant"],
        entry.get("actor"),
        entry.get("resource"),
        entry.get("resource_type"),
        entry.get("resource_id"),
        entry.get("changes"),
        entry.get("contract", DERIVED),
    )


def _row(
    action, tenant, actor, resource, resource_type, resource_id, changes, contract=DERIVED
) -> dict:
    default_type, default_id = _resource_fields(resource)
    context = current_request_context()
    return {
        "action": action,
        "tenant_id": getattr(tenant, "pk", tenant),
        "actor_id": getattr(actor, "pk", actor),
        "contract": _contract_of(resource)
        if contract is DERIVED
        else getattr(contract, "pk", contract),
        "resource_type": resource_type if resource_type is not None else default_type,
        "resource_id": str(resource_id) if resource_id is not None else default_id,
        "changes": dict(changes or {}),
        "ip_address": context.ip_address if context else None,
        "user_agent": context.user_agent if context else "",
        "request_id": context.request_id if context else "",
    }


def diff_fields(before: Mapping, after: Mapping) -> dict[str, list]:
    """``{field: [old, new]}`` for the fields whose value changed, JSON-safe."""
    return {
        field: [_json_safe(before.get(field)), _json_safe(after.get(field))]
        for field in after
        if before.get(field) != after.get(field)
    }


def _json_safe(value):
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
