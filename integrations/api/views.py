from http import HTTPStatus

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api.schema import ERROR, VALIDATION_ERROR
from integrations import providers
from integrations.models import Integration
from integrations.oauth.flows import oauth_exchange_code, oauth_start_authorization
from integrations.oauth.tokens import oauth_refresh_token
from integrations.selectors import connection_issue_list, integration_list
from integrations.services import (
    integration_create,
    integration_delete,
    integration_record_sync,
    integration_update,
)
from integrations.usage import integration_usage
from organizations.access import resolve_access
from organizations.tenancy import OrganizationScopedMixin

from .examples import INTEGRATION_CREATE, INTEGRATION_PATCH, INTEGRATION_UPDATE, OAUTH_CALLBACK, SYNC_RESULT
from .filters import IntegrationFilter
from .issues import ConnectionIssueSerializer, IssueQuerySerializer
from .serializers import (
    AuthorizationStartSerializer,
    IntegrationSerializer,
    OAuthCallbackSerializer,
    ProviderSerializer,
    SyncResultSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@extend_schema_view(
    create=extend_schema(examples=INTEGRATION_CREATE),
    update=extend_schema(examples=INTEGRATION_UPDATE),
    partial_update=extend_schema(examples=INTEGRATION_PATCH),
)
class IntegrationViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """The organization's integrations. Credentials are write-only."""

    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter
    # Only UUIDs are ids, so /integrations/providers/, /oauth/... and the separately
    # mounted /integrations/webhooks/ never match the detail route.
    lookup_value_regex = UUID_PATTERN

    def scoped_queryset(self, organization):
        return integration_list(organization=organization)

    def perform_create(self, serializer):
        serializer.instance = integration_create(organization=self.organization, **serializer.validated_data)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        integration = self.get_object()
        serializer = self.get_serializer(integration, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if not partial:
            data.setdefault("config", {})  # PUT replaces the config; credentials are kept unless sent
        integration = integration_update(integration=integration, **data)
        return Response(self.get_serializer(integration).data)

    def perform_destroy(self, instance):
        integration_delete(integration=instance)

    @extend_schema(
        summary="This organization's integrations of one provider",
        parameters=[
            OpenApiParameter("provider", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(providers.PROVIDERS))
        ],
        responses=IntegrationSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path=r"provider/(?P<provider>[^/.]+)")
    def by_provider(self, request, provider=None):
        if providers.get_provider(provider) is None:
            raise Http404
        queryset = self.filter_queryset(self.get_queryset().filter(provider=provider))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="The provider catalogue",
        responses=ProviderSerializer(many=True),
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def providers(self, request):
        return Response([provider.as_dict() for provider in providers.provider_list()])

    @extend_schema(
        summary="Deprecated: record the result of a sync job as the caller reports it (extension of docs/API.md §3)",
        description="Deprecated: it records only what the caller reports. Call providers with the client "
        "(`integrations.client`) or the proxy, and read `GET /api/integrations/{id}/usage/` for the calls "
        "made. Its 200 answers carry `Deprecation: true` and a `Link` to the usage endpoint.",
        request=SyncResultSerializer,
        responses={200: IntegrationSerializer, 400: VALIDATION_ERROR},
        examples=SYNC_RESULT,
        deprecated=True,
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        integration = self.get_object()
        serializer = SyncResultSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration = integration_record_sync(
            integration=integration,
            success=serializer.validated_data["success"],
            error=serializer.validated_data.get("error", ""),
        )
        response = Response(IntegrationSerializer(integration).data, status=HTTPStatus.OK)
        return _deprecated(response, successor=f"{request.path.rsplit('/sync/', 1)[0]}/usage/")

    @extend_schema(
        summary="Provider calls made through this integration: calls, errors, 429s, p50/p95 latency, "
        "in total, by endpoint and by hour or day",
        parameters=[UsageQuerySerializer],
        responses={200: UsageSerializer, 400: VALIDATION_ERROR},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def usage(self, request, pk=None):
        integration = self.get_object()
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        usage = integration_usage(integration=integration, **query.validated_data)
        return Response(UsageSerializer(usage).data)

    @extend_schema(
        summary="This integration's connection issues, newest first (open and resolved)",
        parameters=[IssueQuerySerializer],
        responses=ConnectionIssueSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], serializer_class=ConnectionIssueSerializer, filterset_class=None)
    def issues(self, request, pk=None):
        query = IssueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        # The integration alone (not get_object()'s list queryset, which prefetches its issues).
        integration = get_object_or_404(self.get_queryset().prefetch_related(None), pk=pk)
        self.check_object_permissions(request, integration)
        issues = connection_issue_list(organization=self.organization, integration=integration)
        if query.validated_data.get("status"):
            issues = issues.filter(status=query.validated_data["status"])
        page = self.paginate_queryset(issues)
        return self.get_paginated_response(ConnectionIssueSerializer(page, many=True).data)

    # --- OAuth 2.0 ----------------------------------------------------------------------

    @extend_schema(
        summary="Start OAuth authorization: the provider URL to send the user to",
        responses={200: AuthorizationStartSerializer, 400: ERROR},
    )
    @action(detail=True, methods=["get"], url_path="oauth/authorize")
    def oauth_authorize(self, request, pk=None):
        integration = self.get_object()
        # A GET, but it starts a flow that ends in writing tokens: only writers may start it.
        if not resolve_access(request).can_write:
            raise exceptions.PermissionDenied("This API key or role is read-only.")
        start = oauth_start_authorization(integration=integration)
        return Response(AuthorizationStartSerializer(start).data)

    @extend_schema(
        summary="Complete OAuth authorization: exchange the code, store the tokens",
        request=OAuthCallbackSerializer,
        responses={200: IntegrationSerializer, 400: VALIDATION_ERROR, 502: ERROR},
        examples=OAUTH_CALLBACK,
    )
    @action(detail=True, methods=["post"], url_path="oauth/callback")
    def oauth_callback(self, request, pk=None):
        integration = self.get_object()
        serializer = OAuthCallbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration = oauth_exchange_code(
            code=serializer.validated_data["code"],
            state=serializer.validated_data["state"],
            integration=integration,
            organization=self.organization,
        )
        return Response(IntegrationSerializer(integration).data)

    @extend_schema(
        summary="Refresh the access token now; returns the integration with the new token_expires_at",
        request=None,
        responses={200: IntegrationSerializer, 400: ERROR, 502: ERROR},
    )
    @action(detail=True, methods=["post"], url_path="oauth/refresh")
    def oauth_refresh(self, request, pk=None):
        integration = oauth_refresh_token(integration=self.get_object(), force=True)
        return Response(IntegrationSerializer(integration).data)


def _deprecated(response: Response, *, successor: str) -> Response:
    """Marks an answer of a deprecated endpoint (RFC 9745 `Deprecation`, RFC 8288 `Link`)."""
    response["Deprecation"] = "true"
    response["Link"] = f'<{successor}>; rel="successor-version"'
    return response
