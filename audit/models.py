import uuid

from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """One row per action. Append-only: a database trigger refuses UPDATE and DELETE."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null only for events with no tenant yet (a failed login for an unknown email).
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.DO_NOTHING, null=True, db_constraint=True
    )
    action = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, null=True, related_name="+"
    )
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_default=models.functions.Now())

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="audit_tenant_time_idx"),
            models.Index(
                fields=["tenant", "action", "-created_at"], name="audit_tenant_action_idx"
            ),
            models.Index(
                fields=["tenant", "resource_type", "resource_id", "-created_at"],
                name="audit_tenant_resource_idx",
            ),
            models.Index(fields=["tenant", "actor", "-created_at"], name="audit_tenant_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id}"
