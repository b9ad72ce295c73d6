from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import serializers as api
from common.fields import is_readable
from common.redaction import REDACTED, mask_sensitive
from integrations.models import Integration
from organizations.tenancy import OrganizationScopedRelatedField
from webhooks.masking import MaskedResponseBodyField
from webhooks.models import EventType, Webhook, WebhookLog
from webhooks.selectors import STATS_WINDOWS
from webhooks.services import MAX_BATCH_EVENTS
from webhooks.subscriber import auth_for_reading


class MaskedHeadersField(serializers.DictField):
    """Reads back with sensitive values masked; headers no key in FERNET_KEYS decrypts read as
    none (PATCH them to enter them again)."""

    def to_representation(self, value):
        return mask_sensitive(value) if is_readable(value) else {}


# --- subscriber controls (filter, transform, auth, client_certificate): docs/WEBHOOKS.md ---


class WebhookAuthField(serializers.JSONField):
    """OAuth2 client-credentials settings; reads never show `client_secret`, only
    `client_secret_set` (webhooks/subscriber.py validates and keeps the stored secret)."""

    def to_representation(self, value):
        return auth_for_reading(value)


class SubscriberControlsMixin(api.Serializer):
    filter = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='Content filter, e.g. {"data.job.department": {"$in": ["engineering"]}}: an event it rejects '
        "creates no delivery. Operators $eq $neq $in $nin $gt $gte $lt $lte $exists $startsWith, $and/$or; "
        "paths are dotted into the body {type, timestamp, data}. null: every subscribed event.",
    )
    transform = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="JMESPath expression over the body {type, timestamp, data}; its result is sent as `data`. "
        '"": the payload as is.',
    )
    auth = WebhookAuthField(
        required=False,
        allow_null=True,
        help_text='{"type": "oauth2_client_credentials", "token_url", "client_id", "client_secret", "scope"?, '
        '"audience"?}: a token fetched from the subscriber is sent as Authorization: Bearer. client_secret is '
        "write-only (reads show client_secret_set); leave it out of an update to keep it. null: none.",
    )
    client_certificate = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        help_text="mTLS: PEM certificate and unencrypted private key, write-only, stored encrypted. null: none.",
    )
    client_certificate_set = serializers.BooleanField(read_only=True)
    client_certificate_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)


SUBSCRIBER_FIELDS = [
    "filter",
    "transform",
    "auth",
    "client_certificate",
    "client_certificate_set",
    "client_certificate_expires_at",
]
SUBSCRIBER_READ_ONLY = ["client_certificate_set", "client_certificate_expires_at"]


class WebhookSerializer(SubscriberControlsMixin, api.ModelSerializer):
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
            *SUBSCRIBER_FIELDS,
        ]
        read_only_fields = ["id", "secret_readable", *Webhook.STATUS_FIELDS, *SUBSCRIBER_READ_ONLY]


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
    # Rebuilt from the row (WebhookLog): the delivery's message id, the headers as sent.
    message_id = serializers.CharField(read_only=True)
    request_headers = serializers.DictField(
        child=serializers.CharField(), read_only=True, help_text="As sent; secret ones and the signature masked."
    )
    response_body = MaskedResponseBodyField(help_text="As received; values the event's schema marks sensitive masked.")

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
    extra_allowed_keys = api.CURSOR_PAGINATION_KEYS
    success = serializers.BooleanField(required=False, allow_null=True, default=None)
    event = serializers.CharField(required=False, max_length=100)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class WebhookStatsFilterSerializer(api.Serializer):
    extra_allowed_keys = api.QUERY_KEYS
    window = serializers.ChoiceField(
        choices=list(STATS_WINDOWS), required=False, default="24h", help_text="the window of `window_stats`"
    )


PERCENTILE_HELP = "estimated from the hourly histogram (within its 1.5x bucket)"


class WindowStatsSerializer(api.Serializer):
    attempts = serializers.IntegerField()
    successes = serializers.IntegerField()
    failures = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="0 to 1")
    mean_duration_ms = serializers.FloatField(allow_null=True)
    p50_duration_ms = serializers.FloatField(allow_null=True, help_text=PERCENTILE_HELP)
    p95_duration_ms = serializers.FloatField(allow_null=True, help_text=PERCENTILE_HELP)
    delivered = serializers.IntegerField(help_text="deliveries that first succeeded (end-to-end latency samples)")
    mean_latency_ms = serializers.FloatField(allow_null=True, help_text="event created to delivered")
    p50_latency_ms = serializers.FloatField(allow_null=True, help_text=PERCENTILE_HELP)
    p95_latency_ms = serializers.FloatField(allow_null=True, help_text=PERCENTILE_HELP)


class WebhookStatsSerializer(WindowStatsSerializer):
    window = serializers.CharField(help_text="24h, 7d or 30d (`?window=`)")
    window_stats = WindowStatsSerializer(help_text="the current hour and the ones before it, `window` in all")
    last_24h = WindowStatsSerializer()
    pending_deliveries = serializers.IntegerField(help_text="counted up to 10,000")
    failed_deliveries = serializers.IntegerField(help_text="counted up to 10,000")
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
    version = serializers.IntegerField(help_text="The version of the payload schema.")
    schema = serializers.JSONField(
        help_text="The payload's JSON Schema (draft 2020-12); `x-sensitive` and "
        "`x-subject` annotate sensitive values and data-subject identifiers."
    )
    example = serializers.JSONField(help_text="An example payload (valid against the schema).")
    deprecated = serializers.BooleanField(help_text="Deprecated: still delivered, but move to its replacement.")
    custom = serializers.BooleanField(help_text="This organization's own event type (custom.*).")
    retention_days = serializers.IntegerField(
        allow_null=True, help_text="Days its logs and payloads are kept; null: WEBHOOKS_LOG_RETENTION_DAYS."
    )


class EventTriggerSerializer(api.Serializer):
    event = serializers.CharField(max_length=100)
    payload = serializers.JSONField(required=False, default=dict)
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)


class EventAcceptedSerializer(api.Serializer):
    id = serializers.UUIDField()
    event = serializers.CharField()
    deliveries = serializers.IntegerField(help_text="How many webhooks the event is delivered to.")


class EventTypeSerializer(api.ModelSerializer):
    """An organization's own event type. `name` is set once (webhooks subscribe by name)."""

    schema = serializers.JSONField(help_text="The payload's JSON Schema (draft 2020-12), at most 64 KiB.")
    example = serializers.JSONField(required=False, help_text="An example payload; must validate against the schema.")
    version = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    retention_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)

    class Meta:
        model = EventType
        fields = [
            "id",
            "name",
            "description",
            "schema",
            "version",
            "example",
            "deprecated",
            "retention_days",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


@extend_schema_field(EventTriggerSerializer)
class BatchItemField(serializers.Field):
    """One item of a batch, passed on as given: `trigger_client_events` validates each item
    (an invalid one is that item's error, not the request's) and encodes its payload once."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class EventBatchSerializer(api.Serializer):
    events = serializers.ListField(
        child=BatchItemField(),
        min_length=1,
        max_length=MAX_BATCH_EVENTS,
        help_text=f"1 to {MAX_BATCH_EVENTS} events, each as POST /api/events/ takes one "
        "(event, payload, idempotency_key). An invalid item is reported in its result; the others are stored.",
    )


class EventBatchResultSerializer(api.Serializer):
    index = serializers.IntegerField(help_text="The item's position in `events`.")
    id = serializers.UUIDField(
        allow_null=True, help_text="The event (for a repeat: the first event of the key); null for an error."
    )
    event = serializers.CharField(allow_null=True, help_text="The item's event type, as given.")
    deliveries = serializers.IntegerField(help_text="How many webhooks the event is delivered to (0 for an error).")
    status = serializers.ChoiceField(
        choices=["created", "repeat", "error"],
        help_text="created: a new event; repeat: its idempotency key named an earlier event with the same "
        "type and payload (nothing new is sent); error: nothing stored for this item, see `errors`.",
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For an error: messages by field, as POST /api/events/ answers them in a 400 or 409.",
    )


class EventBatchAcceptedSerializer(api.Serializer):
    results = EventBatchResultSerializer(many=True, help_text="One per item, in the order of `events`.")
