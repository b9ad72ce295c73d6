from rest_framework import serializers

from common.api import fields
from common.api import serializers as api
from health.models import HealthCheck
from integrations.models import Integration


class HealthCheckSerializer(api.ModelSerializer):
    class Meta:
        model = HealthCheck
        fields = [
            "id",
            "status",
            "response_time_ms",
            "http_status",
            "error",
            "consecutive_unhealthy",
            "transition",
            "checked_at",
        ]
        read_only_fields = fields


class HealthSummarySerializer(api.Serializer):
    integration = serializers.UUIDField(source="integration.pk")
    status = fields.ChoiceField(source="integration.status", choices=Integration.Status.choices)
    health_status = fields.ChoiceField(source="integration.health_status", choices=Integration.HealthStatus.choices)
    last_health_check_at = serializers.DateTimeField(source="integration.last_health_check_at", allow_null=True)
    consecutive_unhealthy = serializers.IntegerField()
    latest = HealthCheckSerializer(allow_null=True)
    uptime_24h = serializers.FloatField(
        allow_null=True, help_text="Percentage of the last 24 h's checks that were not unhealthy."
    )
    checks_24h = serializers.IntegerField()
    average_response_time_ms_24h = serializers.FloatField(allow_null=True)
    history = HealthCheckSerializer(source="recent", many=True, help_text="The most recent checks, newest first.")


class HealthQuerySerializer(api.Serializer):
    extra_allowed_keys = api.QUERY_KEYS
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20, help_text="history entries (1-100)")


class HealthCheckNowSerializer(api.Serializer):
    health_status = fields.ChoiceField(source="integration.health_status", choices=Integration.HealthStatus.choices)
    status = fields.ChoiceField(source="integration.status", choices=Integration.Status.choices)
    check = HealthCheckSerializer(source="record")
