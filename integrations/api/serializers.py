from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import fields
from common.api import serializers as api
from integrations.grants import consent_url
from integrations.models import ConnectionIssue, Integration
from integrations.providers import AUTH_TYPES, PROVIDER_CHOICES
from integrations.selectors import OPEN_ISSUES_ATTR

from .issues import OpenIssuesSerializer, open_issues_summary

# Kept by the services (OAuth, health, sync); read-only to API clients.
STATE_FIELDS = (
    "status",
    "health_status",
    "needs_reauthorization",
    "token_expires_at",
    "last_sync_at",
    "last_error",
    "last_error_at",
    "last_health_check_at",
    "created_at",
    "updated_at",
)
# Token lifecycle (refresh and mint), kept by integrations.oauth.tokens.
LIFECYCLE_FIELDS = (
    "token_refresh_attempts",
    "token_refresh_failures",
    "refresh_failure_count",
    "last_token_refresh_at",
    "next_token_refresh_at",
    "granted_scopes",
)


class IntegrationSerializer(api.ModelSerializer):
    """Credentials are write-only: reads show `credential_fields`, the stored key names."""

    provider = fields.ChoiceField(choices=PROVIDER_CHOICES)
    auth_type = fields.ChoiceField(choices=[(value, value) for value in AUTH_TYPES])
    config = serializers.JSONField(required=False, help_text="Provider settings: see /api/integrations/providers/.")
    credentials = serializers.JSONField(
        write_only=True,
        required=False,
        help_text="Write-only object of secrets; omitted on update keeps the stored ones, sent replaces them.",
    )
    credential_fields = serializers.ListField(child=serializers.CharField(), read_only=True)
    credentials_readable = serializers.BooleanField(
        read_only=True,
        help_text="False when the stored credentials cannot be decrypted with FERNET_KEYS "
        "(restore the old key and run reencrypt_credentials, or send new credentials).",
    )
    consent_url = serializers.SerializerMethodField(
        help_text="Where a user grants the consent a minted token needs (DocuSign JWT: the integration key "
        "may impersonate them); empty when none is needed."
    )
    open_issues = serializers.SerializerMethodField(help_text="The open connection issues: how many, which kinds.")
    token_refresh_attempts = serializers.IntegerField(read_only=True, help_text="Refresh and mint attempts, ever.")
    token_refresh_failures = serializers.IntegerField(read_only=True, help_text="Failed attempts, ever.")
    refresh_failure_count = serializers.IntegerField(read_only=True, help_text="Failed attempts in a row, now.")
    last_token_refresh_at = serializers.DateTimeField(read_only=True, allow_null=True)
    next_token_refresh_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the token is next refreshed or minted; null: not scheduled."
    )
    granted_scopes = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The scopes the provider granted (last token answer)."
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "provider",
            "auth_type",
            "config",
            "credentials",
            "credential_fields",
            "credentials_readable",
            "consent_url",
            *STATE_FIELDS,
            "open_issues",
            *LIFECYCLE_FIELDS,
        ]
        read_only_fields = ["id", *STATE_FIELDS]
        # Uniqueness per organization is checked by the service (the organization is not a field).
        validators = []

    @extend_schema_field(OpenApiTypes.STR)
    def get_consent_url(self, obj: Integration) -> str:
        return consent_url(obj)

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    @extend_schema_field(OpenIssuesSerializer)
    def get_open_issues(self, obj: Integration) -> dict:
        issues = getattr(obj, OPEN_ISSUES_ATTR, None)  # prefetched by integration_list
        if issues is None:
            issues = list(obj.connection_issues.filter(status=ConnectionIssue.Status.OPEN))
        return open_issues_summary(issues)

    def validate_credentials(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class SyncResultSerializer(api.Serializer):
    success = serializers.BooleanField()
    error = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConfigFieldSerializer(api.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    required_for = serializers.ListField(child=serializers.CharField())
    default = serializers.JSONField(allow_null=True)
    choices = serializers.ListField(child=serializers.CharField())
    help = serializers.CharField()
    max_length = serializers.IntegerField(
        allow_null=True, help_text="the longest accepted string (each item, for a list); null for other kinds"
    )


class HealthCheckInfoSerializer(api.Serializer):
    method = serializers.CharField()
    url = serializers.CharField()
    success = serializers.CharField()
    auth = serializers.CharField()
    note = serializers.CharField()


class JwtGrantInfoSerializer(api.Serializer):
    key = fields.ChoiceField(
        choices=["private_key", "service_account"],
        help_text="the credential holding the signing key: `private_key` (PEM) or `service_account` (Google JSON key)",
    )
    default_scopes = serializers.ListField(child=serializers.CharField())
    needs_consent = serializers.BooleanField(
        help_text="a user must grant consent first (the integration's consent_url)"
    )


class RateLimitSerializer(api.Serializer):
    requests = serializers.FloatField()
    per_seconds = serializers.FloatField()
    burst = serializers.FloatField()
    source = serializers.CharField()


class ProviderSerializer(api.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    category = serializers.CharField()
    auth_types = serializers.ListField(child=serializers.CharField())
    authorization_url = serializers.CharField()
    token_url = serializers.CharField()
    default_scopes = serializers.ListField(child=serializers.CharField())
    supports_pkce = serializers.BooleanField()
    token_auth_method = serializers.CharField()
    extra_authorize_params = serializers.DictField(child=serializers.CharField())
    config_fields = ConfigFieldSerializer(many=True)
    api_key_credentials = serializers.ListField(child=serializers.CharField())
    health_check = HealthCheckInfoSerializer()
    jwt = JwtGrantInfoSerializer(allow_null=True, help_text="the JWT bearer grant, for providers with auth type jwt")
    rate_limits = RateLimitSerializer(many=True)
    notes = serializers.CharField()


class AuthorizationStartSerializer(api.Serializer):
    authorization_url = serializers.URLField(help_text="the provider's URL; complete with POST .../oauth/callback/")
    start_url = serializers.URLField(
        help_text="our page that binds the flow to the browser opening it (needed for the browser callback)"
    )
    state = serializers.CharField()
    expires_at = serializers.DateTimeField()


class OAuthCallbackSerializer(api.Serializer):
    code = serializers.CharField(max_length=4096, trim_whitespace=True)
    state = serializers.CharField(max_length=4096, trim_whitespace=True)


class UsageQuerySerializer(api.Serializer):
    extra_allowed_keys = api.QUERY_KEYS

    """`?since=&until=&interval=hour|day` of the usage endpoint."""

    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    interval = serializers.ChoiceField(choices=["hour", "day"], default="hour")

    def validate(self, attrs):
        from integrations.usage import INTERVALS, MAX_BUCKETS, usage_window

        since, until = usage_window(since=attrs.get("since"), until=attrs.get("until"), interval=attrs["interval"])
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be before until."]})
        if (until - since) / INTERVALS[attrs["interval"]] > MAX_BUCKETS:
            raise serializers.ValidationError(
                {"since": [f"At most {MAX_BUCKETS} {attrs['interval']}s per answer: narrow the window."]}
            )
        return {**attrs, "since": since, "until": until}


class UsageFiguresSerializer(api.Serializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="no answer, an error kind, or a status >= 400")
    rate_limited = serializers.IntegerField(help_text="answers with status 429")
    waited_ms = serializers.FloatField(help_text="time spent waiting on our rate limits")
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)


class EndpointUsageSerializer(UsageFiguresSerializer):
    endpoint = serializers.CharField(help_text='method and path template, ids collapsed: "GET /users/{id}"')


class UsageBucketSerializer(UsageFiguresSerializer):
    start = serializers.DateTimeField()


class UsageSerializer(api.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    interval = serializers.CharField()
    totals = UsageFiguresSerializer()
    endpoints = EndpointUsageSerializer(many=True)
    buckets = UsageBucketSerializer(many=True)
