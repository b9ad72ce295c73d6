from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api.schema import ERROR
from health.selectors import health_summary
from health.services import health_check_now
from integrations.api.views import UUID_PATTERN
from integrations.models import Integration
from integrations.selectors import integration_list
from organizations.tenancy import OrganizationScopedMixin

from .serializers import HealthCheckNowSerializer, HealthQuerySerializer, HealthSummarySerializer


class IntegrationHealthViewSet(OrganizationScopedMixin, viewsets.GenericViewSet):
    """Health of one integration: `/api/integrations/{id}/health/` and `.../health/check/`."""

    queryset = Integration.objects.all()
    # OPTIONS (DRF's metadata) describes the POST action with it.
    serializer_class = HealthCheckNowSerializer
    lookup_value_regex = UUID_PATTERN
    pagination_class = None
    filter_backends = []

    def scoped_queryset(self, organization):
        return integration_list(organization=organization)

    @extend_schema(
        summary="Latest health status, recent checks and uptime over 24 h",
        parameters=[HealthQuerySerializer],
        responses=HealthSummarySerializer,
    )
    @action(detail=True, methods=["get"], url_path="health")
    def health(self, request, pk=None):
        query = HealthQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        summary = health_summary(integration=self.get_object(), limit=query.validated_data["limit"])
        return Response(HealthSummarySerializer(summary).data)

    @extend_schema(
        summary="Run a health check now and return it",
        description=(
            "409 while a run is checking this integration, or when it was never connected "
            "(pending, never authorized, no credentials): there is nothing to check yet."
        ),
        request=None,
        responses={200: HealthCheckNowSerializer, 409: ERROR},
    )
    @action(detail=True, methods=["post"], url_path="health/check")
    def check(self, request, pk=None):
        integration = self.get_object()
        record = health_check_now(integration=integration)
        return Response(HealthCheckNowSerializer({"integration": integration, "record": record}).data)
