from rest_framework import exceptions, serializers

from config.validators import validate_json_object
from contracts import clause_services
from contracts.comments import MAX_MENTIONS
from contracts.currencies import ISO_4217_CODES
from contracts.models import (
    COMMENT_MAX_LENGTH,
    CONTRACT_TYPE_MAX_LENGTH,
    GUIDANCE_MAX_LENGTH,
    MAX_CONTRACT_TYPES_PER_RULE,
    MAX_PATTERNS_PER_RULE,
    TEXT_MAX_LENGTH,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    ClauseKind,
    ClauseRule,
    ClauseSeverity,
    Contract,
    ContractRevision,
)
from contracts.playbook import MAX_PHRASE_LENGTH
from tenancy.api.fields import TenantPrimaryKeyRelatedField


class ContractCreatorSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class ClauseFindingsSummarySerializer(serializers.Serializer):
    """The last clause validation of a stored contract (on create and on text/type changes)."""

    valid = serializers.BooleanField(help_text="False when there is a blocking finding.")
    blocking = serializers.IntegerField(help_text="Number of blocking findings.")
    warnings = serializers.IntegerField(help_text="Number of warning findings.")
    info = serializers.IntegerField(help_text="Number of info findings.")
    missing_required = serializers.ListField(child=serializers.CharField())
    prohibited_found = serializers.ListField(child=serializers.CharField())
    checked_at = serializers.DateTimeField()


class ContractRevisionSerializer(serializers.ModelSerializer):
    """One immutable state of the contract's business fields."""

    revision = serializers.IntegerField(source="number")
    changed_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Business fields changed by this revision."
    )
    created_by = ContractCreatorSerializer(allow_null=True)

    class Meta:
        model = ContractRevision
        fields = ["revision", "content_hash", "changed_fields", "created_by", "created_at"]
        read_only_fields = fields


class CommentSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    author = serializers.UUIDField(source="author_id", read_only=True, allow_null=True)
    body = serializers.CharField(min_length=1, max_length=COMMENT_MAX_LENGTH, trim_whitespace=False)
    mentions = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        default=list,
        max_length=MAX_MENTIONS,
        help_text="Members to notify (comment_mention).",
    )
    created_at = serializers.DateTimeField(read_only=True)


class ContractInputSerializer(serializers.Serializer):
    """Business fields a requester sets. Unknown and read-only fields are ignored."""

    title = serializers.CharField(max_length=255)
    contract_type = serializers.CharField(max_length=50)
    value = serializers.DecimalField(
        max_digits=VALUE_MAX_DIGITS,
        decimal_places=VALUE_DECIMAL_PLACES,
        min_value=0,
        allow_null=True,
        required=False,
        help_text="Money as a decimal string with 2 places (a JSON number is accepted too).",
    )
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217 code, default USD."
    )
    counterparty = serializers.CharField(max_length=255, required=False, allow_blank=True)
    department = serializers.CharField(max_length=100, required=False, allow_blank=True)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    text = serializers.CharField(
        max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, trim_whitespace=False
    )
    metadata = serializers.JSONField(
        required=False,
        help_text="A JSON object; keys of letters, digits and underscores (usable in rules).",
    )

    def validate_currency(self, value: str) -> str:
        code = value.upper()
        if code not in ISO_4217_CODES:
            raise serializers.ValidationError(f"'{value}' is not an ISO 4217 currency code.")
        return code

    def validate_metadata(self, value):
        return validate_json_object(value)

    def validate(self, attrs):
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": ["Must not be before start_date."]})
        return attrs


# --- clause library ------------------------------------------------------------------------


class ClauseRuleInputSerializer(serializers.Serializer):
    """A clause rule as written. Phrases are plain text (no regular expressions)."""

    name = serializers.CharField(max_length=200)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    contract_types = serializers.ListField(
        child=serializers.CharField(max_length=CONTRACT_TYPE_MAX_LENGTH),
        max_length=MAX_CONTRACT_TYPES_PER_RULE,
        required=False,
        default=list,
        help_text="Contract types the rule applies to (e.g. MSA); empty: every type.",
    )
    kind = serializers.ChoiceField(
        choices=ClauseKind.choices,
        help_text="`required`: missing is a finding; `prohibited`: present is a finding.",
    )
    patterns = serializers.ListField(
        # Length, blank and whitespace-only phrases are reported by playbook.validate_phrase.
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        min_length=1,
        max_length=MAX_PATTERNS_PER_RULE,
        help_text=(
            f"1-{MAX_PATTERNS_PER_RULE} plain phrases of at most {MAX_PHRASE_LENGTH} characters, "
            "matched case-insensitively on word boundaries, tolerant of line breaks and runs of "
            "whitespace. Characters like `(`, `*` or `$` are literal text."
        ),
    )
    severity = serializers.ChoiceField(
        choices=ClauseSeverity.choices, required=False, default=ClauseSeverity.WARNING
    )
    guidance = serializers.CharField(
        max_length=GUIDANCE_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Shown to the reviewer with each finding (e.g. the fallback wording).",
    )
    is_active = serializers.BooleanField(required=False, default=True)

    def validate_patterns(self, patterns):
        try:
            return clause_services.validated_patterns(patterns)
        except exceptions.ValidationError as exc:
            raise serializers.ValidationError(exc.detail["patterns"]) from exc


class ClauseRuleSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = ClauseRule
        fields = [
            "id",
            *clause_services.CLAUSE_RULE_FIELDS,
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_created_by(self, rule) -> str | None:
        user = rule.created_by
        return f"{user.full_name} <{user.email}>" if user else None


class ClauseValidationInputSerializer(serializers.Serializer):
    """Exactly one of a stored contract (its text and type are used) or free text."""

    contract = TenantPrimaryKeyRelatedField(
        queryset=Contract.objects.only("id", "tenant_id", "text", "contract_type"),
        required=False,
        help_text="A contract of the caller's tenant; another tenant's id is an unknown id.",
    )
    text = serializers.CharField(
        max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, trim_whitespace=False
    )
    contract_type = serializers.CharField(
        max_length=CONTRACT_TYPE_MAX_LENGTH,
        required=False,
        help_text=(
            "With `text`: rules for this type apply as well as the universal ones; without it "
            "only rules with no contract types apply. Not allowed with `contract`."
        ),
    )

    def validate(self, attrs):
        has_contract, has_text = "contract" in attrs, "text" in attrs
        if has_contract == has_text:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send exactly one of `contract` and `text`."]}
            )
        if has_contract and "contract_type" in attrs:
            raise serializers.ValidationError(
                {"contract_type": ["The contract's own type is used; omit contract_type."]}
            )
        return attrs


class ClauseFindingSerializer(serializers.Serializer):
    clause = serializers.CharField(help_text="The rule's name.")
    rule = serializers.UUIDField(help_text="The rule's id.")
    severity = serializers.ChoiceField(choices=ClauseSeverity.choices)
    message = serializers.CharField(help_text="What is wrong, with the rule's guidance.")
    excerpt = serializers.CharField(help_text="The text around the hit; empty when missing.")
    start = serializers.IntegerField(
        allow_null=True, help_text="Offset of the hit in the text; null for a missing clause."
    )
    end = serializers.IntegerField(allow_null=True)


class ClauseValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text="False when any finding is blocking.")
    has_blocking_findings = serializers.BooleanField()
    findings = ClauseFindingSerializer(many=True)
    missing_required = serializers.ListField(
        child=serializers.CharField(), help_text="Names of required clauses not found."
    )
    prohibited_found = serializers.ListField(
        child=serializers.CharField(), help_text="Names of prohibited clauses found."
    )
