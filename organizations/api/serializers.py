from rest_framework import serializers

from common.api import serializers as api
from organizations.models import ApiKey, Organization


class OrganizationSerializer(api.ModelSerializer):
    can_write = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "can_write"]

    def get_can_write(self, obj) -> bool:
        return self.context["can_write"]


class ApiKeySerializer(api.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "read_only", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
