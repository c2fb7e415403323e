from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditLog


@extend_schema_field(
    {
        "type": "object",
        "description": (
            "`{field: [old, new]}`; `old` is null for created values, `new` for removed ones."
        ),
        "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": {}},
    }
)
class ChangesField(serializers.JSONField):
    pass


class AuditLogSerializer(serializers.ModelSerializer):
    """One audit row (output only: the log has no input, nothing writes it through the API)."""

    actor_email = serializers.EmailField(read_only=True, allow_null=True)
    changes = ChangesField(read_only=True)

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "action",
            "actor",
            "actor_email",
            "resource_type",
            "resource_id",
            "changes",
            "ip_address",
            "user_agent",
            "request_id",
            "contract",
            "created_at",
        ]
        read_only_fields = fields
