from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from organizations.access import resolve_access
from organizations.models import ApiKey
from organizations.selectors import api_key_list
from organizations.services import api_key_create, api_key_revoke
from organizations.tenancy import OrganizationScopedMixin

from .examples import API_KEY_CREATE
from .serializers import ApiKeyCreatedSerializer, ApiKeySerializer, OrganizationSerializer


class CurrentOrganizationView(APIView):
    @extend_schema(responses=OrganizationSerializer, summary="The organization this request acts for")
    def get(self, request):
        access = resolve_access(request)
        serializer = OrganizationSerializer(access.organization, context={"can_write": access.can_write})
        return Response(serializer.data)


class ApiKeyViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The organization's API keys. Creating one returns the key once; DELETE revokes it."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer

    def scoped_queryset(self, organization):
        return api_key_list(organization=organization)

    @extend_schema(
        summary="Create an API key (returned once, in `key`)",
        request=ApiKeySerializer,
        responses={201: ApiKeyCreatedSerializer},
        examples=API_KEY_CREATE,
    )
    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = api_key_create(organization=self.organization, **serializer.validated_data)
        api_key.key = raw_key
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
