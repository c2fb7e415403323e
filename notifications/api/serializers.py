from rest_framework import serializers

from notifications.models import (
    Delivery,
    Notification,
    NotificationType,
    WebhookEndpoint,
    WebhookFormat,
)
from notifications.signing import SECRET_MAX_BYTES, SECRET_MIN_BYTES, secret_validate
from notifications.targets import URL_MAX_LENGTH, validate_webhook_url

# --- inbox -------------------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "notification_type",
            "title",
            "message",
            "priority",
            "payload",
            "read_at",
            "created_at",
        ]
        read_only_fields = fields


class ReadAllOutputSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="How many notifications were marked read.")


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class EmailPreferencesSerializer(serializers.Serializer):
    """One boolean per notification type: whether it is also sent by email."""

    def get_fields(self):
        return {
            kind: serializers.BooleanField(required=False, help_text=f"Email for `{kind}`.")
            for kind in NotificationType.values
        }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in NotificationType.values)
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown notification type."] for key in unknown}
                )
        return super().to_internal_value(data)


class PreferencesSerializer(serializers.Serializer):
    """In-app notifications are always on; email can be switched off per type.

    On PUT, types left out keep their current setting.
    """

    email = EmailPreferencesSerializer()


# --- webhooks ----------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=NotificationType.choices))

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "format",
            "events",
            "is_active",
            "consecutive_failures",
            "disabled_at",
            "created_at",
        ]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_<base64>`), shown only in this response: store it."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=URL_MAX_LENGTH,
        help_text=(
            "http or https, no credentials. Private, loopback and link-local targets are "
            "refused unless the service allows them (WEBHOOK_ALLOW_PRIVATE_TARGETS)."
        ),
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=NotificationType.choices),
        min_length=1,
        max_length=len(NotificationType.values),
        help_text="Notification types to receive.",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=200,
        trim_whitespace=False,
        help_text=(
            f"`whsec_` + base64 of {SECRET_MIN_BYTES}-{SECRET_MAX_BYTES} random bytes (the "
            "Standard Webhooks format); generated when omitted on create (and returned once). "
            "Setting it replaces the current secret at once; `rotate-secret` keeps the old one "
            "signing for 24 hours."
        ),
    )
    is_active = serializers.BooleanField(
        required=False, help_text="Default true on create; left unchanged when omitted later."
    )
    format = serializers.ChoiceField(
        choices=WebhookFormat.choices,
        required=False,
        help_text=(
            "`standard` (the event JSON, default on create), `slack` (a Slack incoming-webhook "
            "message) or `teams` (a Microsoft Teams incoming-webhook Adaptive Card); left "
            "unchanged when omitted later."
        ),
    )

    def validate_url(self, value: str) -> str:
        return validate_webhook_url(value)

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate_secret(self, value: str) -> str:
        return secret_validate(value)


class WebhookSecretRotatedSerializer(serializers.Serializer):
    secret = serializers.CharField(
        help_text="The new signing secret (`whsec_<base64>`). Shown only in this response."
    )
    previous_secret_expires_at = serializers.DateTimeField(
        help_text=(
            "Until then the replaced secret signs every delivery too (`webhook-signature` "
            "carries both); `X-Signature` uses the new secret at once."
        )
    )


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "last_error",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields
