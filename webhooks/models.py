from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q

from common.fields import EncryptedCharField, EncryptedTextField, is_readable
from common.limits import MAX_URL_LENGTH
from common.redaction import REDACTED
from integrations.fields import EncryptedJSONField
from organizations.models import Organization

from .rollups import DURATION_COLUMNS, LATENCY_COLUMNS


class Webhook(models.Model):
    # Kept by the delivery engine and the services; read-only to API clients and the admin.
    STATUS_FIELDS = (
        "success_count",
        "failure_count",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "last_triggered_at",
        "last_success_at",
        "last_failure_at",
        "created_at",
        "updated_at",
    )

    # Delivery flow settings, editable in the API and the admin (docs/WEBHOOKS.md, "Flow").
    FLOW_FIELDS = ("rate_limit", "max_concurrency", "ordered")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=MAX_URL_LENGTH)
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for all.')
    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhooks",
        help_text="Optional: the integration this webhook belongs to.",
    )
    # Custom request headers, encrypted at rest: values such as `Authorization` are secrets.
    headers: dict[str, str] = EncryptedJSONField(default=dict, blank=True)
    retry_attempts = models.PositiveSmallIntegerField(default=5)
    is_active = models.BooleanField(default=True)
    # Standard Webhooks secrets ("whsec_" + base64), encrypted at rest. After a rotation
    # the previous secret keeps signing beside the new one until it expires.
    secret: str = EncryptedCharField(max_length=200)
    previous_secret: str | None = EncryptedCharField(max_length=200, null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)

    # --- delivery flow: per-endpoint limits and ordered delivery (docs/WEBHOOKS.md, "Flow") ---
    rate_limit = models.FloatField(
        null=True, blank=True, help_text="Optional: at most this many deliveries per second (all workers)."
    )
    max_concurrency = models.PositiveIntegerField(
        null=True, blank=True, help_text="Optional: at most this many requests in flight at once (all workers)."
    )
    ordered = models.BooleanField(
        default=False, help_text="Deliver one event at a time, in creation order (the next after the head ends)."
    )
    # The engine's: GCRA state of the `rate_limit` bucket (µs since the epoch), written only
    # by the claim, under the row lock it takes (webhooks/engine/flow.py).
    rate_tat_us = models.BigIntegerField(default=0, editable=False)
    # --- end delivery flow ---

    success_count = models.PositiveBigIntegerField(default=0)
    failure_count = models.PositiveBigIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # --- subscriber controls (docs/WEBHOOKS.md "Filters, transforms and subscriber auth") ---
    # A content filter (webhooks/filters.py), applied at fan-out; NULL: every event.
    filter = models.JSONField(null=True, blank=True, help_text="Content filter; empty: every subscribed event.")
    # A JMESPath expression whose result becomes the body's `data`; "": the payload as is.
    transform = models.CharField(max_length=1000, blank=True, help_text="JMESPath expression producing `data`.")
    # OAuth2 client-credentials settings, client_secret included: encrypted whole; NULL: none.
    auth: dict | None = EncryptedJSONField(null=True, blank=True)
    # PEM client certificate and its private key for mTLS, encrypted; NULL: none.
    client_certificate: str | None = EncryptedTextField(null=True, blank=True)
    client_certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "webhooks"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "is_active"], name="webhook_org_active"),
            # Fan-out reads the filtered webhooks of an organization (webhooks/services/events.py).
            models.Index(fields=["organization"], condition=Q(filter__isnull=False), name="webhook_org_filtered"),
        ]
        constraints = [
            # Like integration names; migration 0005 renamed earlier duplicates "name (2)", ...
            models.UniqueConstraint(fields=["organization", "name"], name="webhook_unique_name_per_organization")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def secret_readable(self) -> bool:
        """False when no key in FERNET_KEYS decrypts the signing secret (or the previous one)."""
        return is_readable(self.secret) and is_readable(self.previous_secret)

    @property
    def headers_readable(self) -> bool:
        """False when no key in FERNET_KEYS decrypts the custom headers."""
        return is_readable(self.headers)

    @property
    def client_certificate_set(self) -> bool:
        """Whether an mTLS client certificate is stored (read without decrypting it)."""
        return self.client_certificate_expires_at is not None

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class Event(models.Model):
    """One occurrence of a platform event, fanned out to a delivery per subscribed webhook."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_events")
    type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    # NULL, not "", when absent: the partial unique constraint only covers given keys.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # W3C traceparent of the span that triggered it, written only while tracing is on
    # (OTEL_ENABLED): each delivery attempt's span is its child (common/tracing.py).
    traceparent = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    # Set by `trigger_event` on the instance it returns (not stored).
    delivery_count: int = 0
    is_repeat: bool = False

    class Meta:
        db_table = "webhook_events"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_event_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Delivery(models.Model):
    """The state of one event's delivery to one webhook. The database owns it, not the broker.

    A worker claims a due delivery by setting a lease (`lease_token`, `lease_expires_at`);
    results are written only while that token still holds, and a delivery whose lease
    expired (its worker died) is claimed again and resent with the same message id.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not indexed (docs/RELIABILITY.md, "Indexes"): every query of a delivery that names its
    # organization names its webhook or event too; deleting an organization reads the table once.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No single-column indexes: `unique_delivery_per_webhook` leads with the event and
    # `delivery_webhook_unfinished` with the webhook, so they serve these lookups (and cascades).
    # Not a database constraint: `webhook_events` is partitioned on PostgreSQL (a foreign key
    # to it would need its `created_at`); the ORM's cascade and retention keep the order.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False, db_constraint=False
    )
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When it first succeeded (set by the engine's bulk write); end-to-end latency is
    # `delivered_at - event.created_at`. A replay that succeeds again keeps the first.
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "webhook"], name="unique_delivery_per_webhook")]
        indexes = [
            # The claim/sweep query: pending deliveries by due time.
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="delivery_due"),
            # Pending and failed deliveries of a webhook (stats' counts, ordered delivery's
            # "older pending" check): succeeded ones, 90% of the rows, are left out.
            models.Index(
                fields=["webhook", "state", "created_at"],
                condition=Q(state__in=["pending", "failed"]),
                name="delivery_webhook_unfinished",
            ),
            # Pruning finished deliveries by `finished_at` (services/retention.py): pending
            # ones have none, and the state need not be in every entry.
            models.Index(
                fields=["finished_at"], condition=Q(state__in=["succeeded", "failed"]), name="delivery_finished_at"
            ),
            # Delivery flow (webhooks/engine/flow.py): first attempts are claimed before retries,
            # and the leases in flight are counted per webhook.
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending", attempts=0), name="delivery_due_first"
            ),
            models.Index(
                fields=["webhook"], condition=Q(state="pending", lease_token__isnull=False), name="delivery_leased"
            ),
        ]

    def __str__(self) -> str:
        return self.message_id

    @property
    def message_id(self) -> str:
        """The `webhook-id`: the same on every retry and replay of this event to this webhook."""
        return f"msg_{self.id.hex}"


#: Headers every attempt sends, rebuilt from the log row instead of being stored with it.
STANDARD_HEADERS = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookLog(models.Model):
    """One attempt to deliver an event to a webhook.

    Lean (bench/storage.py): the message id is the delivery's, and of the request's headers
    only the custom ones are stored (masked as sent); `request_headers` adds the standard
    ones back: `webhook-id`, `webhook-timestamp` (the attempt's start, in whole seconds: the
    engine signs with that second) and the signature, which is not kept (`REDACTED`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not indexed (as `Delivery.organization`): always the webhook's, which the queries name.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed by the composite indexes below, which lead with it.
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="logs", db_index=False)
    # Not a database constraint: `webhook_deliveries` is partitioned on PostgreSQL (see Delivery.event).
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="logs", db_constraint=False)
    event_type = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField()
    request_url = models.URLField(max_length=MAX_URL_LENGTH)
    # Rows written before migration 0012 hold every header as sent; newer ones only custom ones.
    custom_headers = models.JSONField(default=dict, db_column="request_headers")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    error = models.CharField(max_length=500, blank=True)
    success = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "webhook_logs"
        ordering = ["-created_at"]
        # Each one serves a query (docs/RELIABILITY.md, "Indexes"; tests/webhooks/test_lean_storage.py).
        indexes = [
            # A webhook's logs, newest first; also `?success=true` (90% of the rows).
            models.Index(fields=["webhook", "-created_at"], name="log_webhook_created"),
            # `?success=false`, and the last failure of a webhook being disabled.
            models.Index(fields=["webhook", "-created_at"], condition=Q(success=False), name="log_webhook_failed"),
            # `?event=`.
            models.Index(fields=["webhook", "event_type", "-created_at"], name="log_webhook_event"),
            # Pruning what partitions do not drop (and every prune on SQLite).
            models.Index(fields=["created_at"], name="log_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.attempt} → {self.response_status or self.error}"

    @property
    def message_id(self) -> str:
        """The delivery's `webhook-id` (`Delivery.message_id`)."""
        return f"msg_{self.delivery_id.hex}"

    @property
    def request_headers(self) -> dict[str, str]:
        """The request's headers as sent, custom ones first (masked as stored)."""
        return self.headers_as_sent(self.custom_headers, message_id=self.message_id, created_at=self.created_at)

    @staticmethod
    def headers_as_sent(stored: dict | None, *, message_id: str, created_at: datetime) -> dict[str, str]:
        """`request_headers` from a row's columns (the logs list builds it from `.values()`)."""
        stored = stored or {}
        standard = {
            "content-type": stored.get("content-type", "application/json"),
            "webhook-id": message_id,
            "webhook-timestamp": stored.get("webhook-timestamp", str(int(created_at.timestamp()))),
            "webhook-signature": REDACTED,
        }
        return {**{name: value for name, value in stored.items() if name not in standard}, **standard}

    @staticmethod
    def custom_only(headers: dict[str, str]) -> dict[str, str]:
        """What is stored of an attempt's headers (`request_headers` rebuilds the rest)."""
        return {name: value for name, value in headers.items() if name not in STANDARD_HEADERS}


class SubscriberToken(models.Model):
    """A webhook's cached OAuth2 access token (webhooks/engine/subscriber_auth.py), shared by
    every worker process. `refreshing_until` is the refresh lease: one worker fetches, the
    others wait for its token (a conditional UPDATE claims it)."""

    webhook = models.OneToOneField(Webhook, on_delete=models.CASCADE, primary_key=True, related_name="+")
    access_token: str | None = EncryptedTextField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refreshing_until = models.DateTimeField(null=True, blank=True)
    # Which fetch the token is from: a 401 drops the token only if no newer one replaced it.
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_subscriber_tokens"

    def __str__(self) -> str:
        return f"token for {self.webhook_id} until {self.expires_at}"


class WebhookHourlyStats(models.Model):
    """A webhook's attempts in one hour (UTC): counts by outcome, durations and end-to-end
    latencies as histograms (bucket bounds in webhooks/rollups.py). Maintained by the
    engine's bulk write with an incrementing upsert; read by the stats endpoint."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by `webhook_hourly_stats_unique`, which leads with it.
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="hourly_stats", db_index=False)
    hour = models.DateTimeField()
    succeeded = models.IntegerField(default=0, db_default=0)
    failed = models.IntegerField(default=0, db_default=0)
    duration_ms_sum = models.FloatField(default=0, db_default=0)
    delivered = models.IntegerField(default=0, db_default=0, help_text="Deliveries that first succeeded in this hour.")
    latency_ms_sum = models.FloatField(default=0, db_default=0)
    # Database defaults too: the engine's upsert names only the columns a batch moves.
    # d00..d36: attempt-duration buckets; l00..l48: end-to-end latency buckets.
    for _column in (*DURATION_COLUMNS, *LATENCY_COLUMNS):
        locals()[_column] = models.IntegerField(default=0, db_default=0)
    del _column

    class Meta:
        db_table = "webhook_hourly_stats"
        verbose_name_plural = "webhook hourly stats"
        constraints = [models.UniqueConstraint(fields=["webhook", "hour"], name="webhook_hourly_stats_unique")]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.hour:%Y-%m-%d %H}:00"


class DispatchMarker(models.Model):
    """One row: until when a queued delivery task is known not to have started claiming
    (used by the ORM broker; with Redis the marker is a Redis key). See webhooks/scheduling.py."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    pending_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_dispatch_marker"

    def __str__(self) -> str:
        return f"delivery task pending until {self.pending_until}"


class EventType(models.Model):
    """An organization's own event type (`custom.*`): subscribed to and triggered by that
    organization only, its payloads validated against its JSON Schema (draft 2020-12)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="event_types")
    name = models.CharField(max_length=100, help_text="custom.<name>, e.g. custom.assessment.completed")
    description = models.CharField(max_length=500, blank=True)
    schema = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    example = models.JSONField(default=dict, blank=True)
    deprecated = models.BooleanField(default=False)
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days its logs and payloads are kept (empty: WEBHOOKS_LOG_RETENTION_DAYS)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_event_types"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="event_type_unique_name")]

    def __str__(self) -> str:
        return self.name


class SubjectErasure(models.Model):
    """The tombstone of one erasure of a data subject's data: what was erased (rows per
    table), when and by whom. It keeps a hash of the subject, never the id or email."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    #: {"candidate_id": sha256, "email": sha256} of what was given, salted with the organization
    subject_hashes = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    erased_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_subject_erasures"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure of {', '.join(sorted(self.subject_hashes))} by {self.erased_by}"
