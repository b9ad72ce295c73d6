from __future__ import annotations

from rest_framework import serializers

from common.api import serializers as api
from common.fields import is_readable
from common.redaction import REDACTED, mask_sensitive
from integrations.models import Integration
from organizations.tenancy import OrganizationScopedRelatedField
from webhooks.models import Webhook, WebhookLog


class MaskedHeadersField(serializers.DictField):
    """Reads back with sensitive values masked; headers no key in FERNET_KEYS decrypts read as
    none (PATCH them to enter them again)."""

    def to_representation(self, value):
        return mask_sensitive(value) if is_readable(value) else {}


class WebhookSerializer(api.ModelSerializer):
    events = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False)
    headers = MaskedHeadersField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text="Extra request headers. Values of sensitive names (auth, token, key, secret...) "
        f"read back as {REDACTED!r}; sending {REDACTED!r} keeps the stored value, except when the URL "
        "moves to another host: then sensitive values must be entered again (or removed).",
    )
    retry_attempts = serializers.IntegerField(min_value=0, max_value=10, required=False)
    integration = OrganizationScopedRelatedField(
        queryset=Integration.objects.all(), required=False, allow_null=True, pk_field=serializers.UUIDField()
    )

    # --- delivery flow (docs/WEBHOOKS.md, "Flow") ---
    rate_limit = serializers.FloatField(
        min_value=0.001,
        max_value=10_000,
        required=False,
        allow_null=True,
        help_text="At most this many deliveries per second, across all workers; null: no limit.",
    )
    max_concurrency = serializers.IntegerField(
        min_value=1,
        max_value=1_000,
        required=False,
        allow_null=True,
        help_text="At most this many requests in flight at once, across all workers; null: no limit.",
    )
    ordered = serializers.BooleanField(
        required=False,
        help_text="One event at a time, in creation order: the next goes once the head succeeded or finally failed.",
    )
    # --- end delivery flow ---

    secret_readable = serializers.BooleanField(
        read_only=True,
        help_text="False when the signing secret cannot be decrypted with FERNET_KEYS: deliveries fail "
        "until the old key is back and reencrypt_credentials ran, or the secret is rotated.",
    )

    class Meta:
        model = Webhook
        fields = [
            "id",
            "name",
            "url",
            "events",
            "integration",
            "headers",
            "retry_attempts",
            "is_active",
            *Webhook.FLOW_FIELDS,
            "secret_readable",
            *Webhook.STATUS_FIELDS,
        ]
        read_only_fields = ["id", "secret_readable", *Webhook.STATUS_FIELDS]


class WebhookCreateSerializer(WebhookSerializer):
    secret = serializers.CharField(
        required=False,
        write_only=False,
        help_text="Optional `whsec_` + base64 secret; generated when omitted. Returned only here.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True)
    # null unless a rotation left the previous secret signing (create; rotating an unreadable one).
    previous_secret_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret", "previous_secret_expires_at"]


class WebhookLogSerializer(api.ModelSerializer):
    webhook_id = serializers.UUIDField(read_only=True)
    event = serializers.CharField(source="event_type", read_only=True)
    status = serializers.IntegerField(source="response_status", read_only=True, allow_null=True)

    class Meta:
        model = WebhookLog
        fields = [
            "id",
            "webhook_id",
            "event",
            "message_id",
            "attempt",
            "success",
            "status",
            "duration_ms",
            "error",
            "request_url",
            "request_headers",
            "response_body",
            "created_at",
        ]
        read_only_fields = fields


class WebhookLogFilterSerializer(api.Serializer):
    extra_allowed_keys = api.PAGINATION_KEYS
    success = serializers.BooleanField(required=False, allow_null=True, default=None)
    event = serializers.CharField(required=False, max_length=100)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class WindowStatsSerializer(api.Serializer):
    attempts = serializers.IntegerField()
    successes = serializers.IntegerField()
    failures = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="0 to 1")
    mean_duration_ms = serializers.FloatField(allow_null=True)
    p95_duration_ms = serializers.FloatField(allow_null=True)


class WebhookStatsSerializer(WindowStatsSerializer):
    last_24h = WindowStatsSerializer()
    pending_deliveries = serializers.IntegerField()
    failed_deliveries = serializers.IntegerField()
    consecutive_failures = serializers.IntegerField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)


class RecoverSerializer(api.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(required=False, allow_null=True)


class RecoverResultSerializer(api.Serializer):
    recovered = serializers.IntegerField()


class EventCatalogueEntrySerializer(api.Serializer):
    event = serializers.CharField()
    description = serializers.CharField()
    system_only = serializers.BooleanField(
        help_text="Emitted by the platform only (the integration.* and webhook.* namespaces): "
        "POST /api/events/ refuses it, so a receiver can trust it. Subscribable like any event."
    )


class EventTriggerSerializer(api.Serializer):
    event = serializers.CharField(max_length=100)
    payload = serializers.JSONField(required=False, default=dict)
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)


class EventAcceptedSerializer(api.Serializer):
    id = serializers.UUIDField()
    event = serializers.CharField()
    deliveries = serializers.IntegerField(help_text="How many webhooks the event is delivered to.")
