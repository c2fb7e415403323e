from rest_framework import serializers

from documents import providers
from documents.models import Document, SignatureRequest, Signer, SigningOrder

MAX_SIGNERS = 20


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "kind", "revision", "sha256", "size", "created_at"]
        read_only_fields = fields


class VerifyInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, help_text="The PDF to check.")


class VerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text="Sealed by this service and unmodified since.")
    ours = serializers.BooleanField(help_text="A seal of this service's key is present.")
    document = serializers.UUIDField(
        allow_null=True, help_text="The caller's tenant's document with these exact bytes."
    )
    sha256 = serializers.CharField()
    sealed_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class SignerInputSerializer(serializers.Serializer):
    user = serializers.UUIDField(required=False, help_text="A member of your organisation.")
    name = serializers.CharField(required=False, max_length=200, help_text="Someone outside.")
    email = serializers.EmailField(required=False, help_text="Where their link is sent.")

    def validate(self, attrs):
        if "user" in attrs:
            if "name" in attrs or "email" in attrs:
                raise serializers.ValidationError("Give either `user` or `name` and `email`.")
        elif not ("name" in attrs and "email" in attrs):
            raise serializers.ValidationError("Give `user`, or both `name` and `email`.")
        return attrs


class SignatureRequestInputSerializer(serializers.Serializer):
    signers = SignerInputSerializer(many=True, allow_empty=False, max_length=MAX_SIGNERS)
    order = serializers.ChoiceField(choices=SigningOrder.choices, default=SigningOrder.PARALLEL)
    message = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    provider = serializers.CharField(
        default=providers.BUILTIN,
        help_text="`builtin` (this service's signing page) or `external` when configured.",
    )

    def validate_provider(self, value):
        if value not in providers.available():
            raise serializers.ValidationError(f"No signature provider {value!r} is configured.")
        return value


class SignerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Signer
        fields = ["id", "name", "email", "status", "signed_at"]
        read_only_fields = fields


class SignatureRequestSerializer(serializers.ModelSerializer):
    signers = SignerSerializer(many=True, read_only=True)

    class Meta:
        model = SignatureRequest
        fields = [
            "id",
            "status",
            "order",
            "revision",
            "content_hash",
            "message",
            "signers",
            "created_at",
            "expires_at",
            "finished_at",
        ]
        read_only_fields = fields
