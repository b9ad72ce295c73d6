from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from common.fields import UNDECRYPTABLE_HELP, EncryptedTextField, is_readable
from organizations.models import Organization

from . import providers
from .fields import EncryptedJSONField

UNREADABLE_CREDENTIALS = (
    f"The stored credentials {UNDECRYPTABLE_HELP}, or send new credentials (and authorize an OAuth integration again)."
)


class Integration(models.Model):
    """A connection of one organization to one third-party service.

    `credentials` is a JSON object encrypted at rest (API key, client secret, OAuth tokens);
    it is write-only in the API and admin. Token bookkeeping (`token_expires_at`,
    `needs_reauthorization`, `refresh_failure_count`, `refresh_retry_at`) is owned by
    `integrations.oauth.tokens`.
    """

    class AuthType(models.TextChoices):
        OAUTH2 = providers.OAUTH2, "OAuth 2.0"
        API_KEY = providers.API_KEY, "API key"
        JWT = providers.JWT, "JWT"
        SAML = providers.SAML, "SAML"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        ERROR = "error", "Error"

    class HealthStatus(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        UNHEALTHY = "unhealthy", "Unhealthy"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=200)
    provider = models.CharField(max_length=50, choices=providers.PROVIDER_CHOICES)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices)
    config = models.JSONField(default=dict, blank=True)
    credentials: dict[str, Any] = EncryptedJSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    health_status = models.CharField(max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    needs_reauthorization = models.BooleanField(default=False)
    refresh_failure_count = models.PositiveIntegerField(default=0)
    refresh_retry_at = models.DateTimeField(null=True, blank=True)
    #: token lifecycle, for people (API, admin): every refresh or mint attempt and failure
    #: ever made, and the last success (`refresh_failure_count` is the current failure run)
    token_refresh_attempts = models.PositiveIntegerField(default=0)
    token_refresh_failures = models.PositiveIntegerField(default=0)
    last_token_refresh_at = models.DateTimeField(null=True, blank=True)
    #: the scopes the provider granted, from the last token response (not secret)
    granted_scopes = models.JSONField(default=list, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_health_check_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "integrations"
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="integration_unique_name_per_organization"),
        ]
        indexes = [
            models.Index(fields=["organization", "provider"], name="integration_org_provider"),
            models.Index(fields=["organization", "status"], name="integration_org_status"),
            models.Index(fields=["organization", "health_status"], name="integration_org_health"),
            models.Index(fields=["organization", "-created_at"], name="integration_org_created"),
            models.Index(fields=["auth_type", "status", "token_expires_at"], name="integration_token_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    @property
    def provider_info(self) -> providers.Provider | None:
        return providers.get_provider(self.provider)

    @property
    def next_token_refresh_at(self):
        """When the token will next be refreshed or minted: the end of a backoff, else the
        expiry less the refresh margin; None when nothing is scheduled."""
        if self.auth_type not in {providers.OAUTH2, providers.JWT, providers.SAML} or self.needs_reauthorization:
            return None
        if self.refresh_retry_at is not None:
            return self.refresh_retry_at
        if self.token_expires_at is None:
            return None
        from .app_settings import refresh_margin

        return self.token_expires_at - refresh_margin()

    @property
    def credentials_readable(self) -> bool:
        """False when no key in FERNET_KEYS decrypts the stored credentials (see common/fields.py)."""
        return is_readable(self.credentials)

    @property
    def credential_fields(self) -> list[str]:
        """The names of the stored credential keys, never their values."""
        return sorted(self.credentials) if isinstance(self.credentials, dict) else []


class OAuthState(models.Model):
    """One authorization attempt: single-use, expiring, bound to an integration.

    Only the SHA-256 of the `state` value is stored; the PKCE verifier is encrypted.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="oauth_states")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    state_hash = models.CharField(max_length=64, unique=True)
    #: SHA-256 of the secret in the browser cookie that binds the flow to the browser which
    #: started it (oauth/binding.py); empty until the flow is bound (API-started, not opened yet)
    binding_hash = models.CharField(max_length=64, blank=True, default="")
    code_verifier: str = EncryptedTextField(blank=True, default="")
    redirect_uri = models.URLField(max_length=500)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integration_oauth_states"
        indexes = [models.Index(fields=["expires_at"], name="oauth_state_expires")]

    def __str__(self) -> str:
        return f"OAuth state for {self.integration_id}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class ConnectionIssue(models.Model):
    """A typed problem of one integration's connection (`integrations/issues.py` owns the rules).

    At most one row per integration and kind is active (`pending` or `open`); resolved rows
    stay as history. A `pending` row is a transient problem seen fewer times in a row than
    its opening threshold: it is not shown as an issue and no event is sent for it.
    """

    class Kind(models.TextChoices):
        REAUTHORIZATION_REQUIRED = "reauthorization_required", "Re-authorization required"
        MISSING_SCOPES = "missing_scopes", "Missing scopes"
        CREDENTIALS_REJECTED = "credentials_rejected", "Credentials rejected"
        PROVIDER_UNAVAILABLE = "provider_unavailable", "Provider unavailable"
        RATE_LIMITED = "rate_limited", "Rate limited"
        CONFIG_INVALID = "config_invalid", "Configuration invalid"
        CERTIFICATE_EXPIRING = "certificate_expiring", "Certificate expiring"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="connection_issues")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    #: what a person should know and do; never a secret
    message = models.TextField(blank=True, default="")
    #: facts for programs: `consent_url`, `missing_scopes`, `expires_at`, `retry_after`...
    details = models.JSONField(default=dict, blank=True)
    #: detections while active (all of them), and the current runs of detections and of
    #: observations without the problem (they decide opening and resolving)
    count = models.PositiveIntegerField(default=0)
    detected_streak = models.PositiveIntegerField(default=0)
    clear_streak = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "integration_connection_issues"
        ordering = ["-last_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind"],
                condition=models.Q(status__in=["pending", "open"]),
                name="connection_issue_one_active_per_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "kind"], name="connection_issue_org_status"),
            models.Index(fields=["integration", "status"], name="connection_issue_integration"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display().lower()})"


class RateLimitBucket(models.Model):
    """One shared token bucket of an integration, when Redis is not configured
    (integrations/ratelimit.py owns it). `tat_us` is GCRA's theoretical arrival time in
    microseconds since the epoch: the bucket is full again once it has passed."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    #: the limit's window, e.g. "1s", "3600s"
    name = models.CharField(max_length=32)
    tat_us = models.BigIntegerField(default=0)

    class Meta:
        db_table = "integration_rate_limit_buckets"
        constraints = [
            models.UniqueConstraint(fields=["integration", "name"], name="rate_limit_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.integration_id} {self.name}"


class ProviderCall(models.Model):
    """One call made to a provider's API (the call log, written in batches by
    integrations/calllog.py). Read-only for people; pruned after
    `INTEGRATIONS_CALL_LOG_RETENTION_DAYS`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="provider_calls")
    method = models.CharField(max_length=10)
    #: the path called, its query secrets removed
    path = models.CharField(max_length=500)
    #: method and path template, ids collapsed: "GET /calendars/{id}/events"
    endpoint = models.CharField(max_length=300)
    #: None when no answer came (timeout, connection error, refused by the limiter)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    #: time spent waiting on a rate limit before sending
    waited_ms = models.FloatField(default=0)
    #: empty on success; else what went wrong ("timeout", "http_error", "rate_limited", ...)
    error_kind = models.CharField(max_length=50, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "integration_provider_calls"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "created_at"], name="provider_call_integration"),
            models.Index(fields=["created_at"], name="provider_call_created"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.status})"


# Interviews on calendars and their change subscriptions (integrations/calendar/).
from .calendar.models import CalendarSubscription, InterviewEvent  # noqa: E402, F401
