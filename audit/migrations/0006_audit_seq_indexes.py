"""The listing indexes end with ``seq`` instead of ``id``.

The listing orders by ``created_at DESC, seq DESC`` and pages with ``(created_at, seq) < cursor``
(0005); each filter's index is ``tenant, <filter columns>, created_at, seq`` so that a filter plus
the cursor stays one ordered index range read.

Built and dropped CONCURRENTLY (the table is large and written by every request), the new ones
first so a listing is index-backed throughout; hence not atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0005_auditlog_seq")]

    operations = [
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "-created_at", "-seq"], name="audit_tenant_seq_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "action", "-created_at", "-seq"], name="audit_action_seq_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["tenant", "actor", "-created_at", "-seq"],
                name="audit_actor_seq_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="auditlog",
            index=models.Index(
                fields=["tenant", "resource_type", "resource_id", "-created_at", "-seq"],
                name="audit_resource_seq_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_time_idx"),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_action_time_idx"),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_actor_time_idx"),
        RemoveIndexConcurrently(model_name="auditlog", name="audit_tenant_resource_time_idx"),
    ]
