"""POST /api/portal-links/: a signed, single-use, expiring portal URL (admin API key)."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.serializers import Serializer
from organizations.access import resolve_access

from .models import PortalLink
from .services import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, portal_link_create

PORTAL_LINK_CREATE = [
    OpenApiExample("An admin link for 15 minutes", value={"role": "admin"}, request_only=True),
    OpenApiExample("A viewer link for 5 minutes", value={"role": "viewer", "expires_in": 300}, request_only=True),
]


class PortalLinkCreateSerializer(Serializer):
    role = serializers.ChoiceField(choices=PortalLink.Role.choices)
    expires_in = serializers.IntegerField(min_value=30, max_value=MAX_EXPIRES_IN, default=DEFAULT_EXPIRES_IN)


class PortalLinkSerializer(Serializer):
    url = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)


class PortalLinkView(APIView):
    @extend_schema(
        summary="Create a portal link",
        description="A signed URL that opens one portal session, once, for the key's organization and the "
        "given role; it expires after `expires_in` seconds (default 900, at most 3600). Needs a writable API key.",
        request=PortalLinkCreateSerializer,
        responses={201: PortalLinkSerializer},
        examples=PORTAL_LINK_CREATE,
        tags=["portal-links"],
    )
    def post(self, request):
        access = resolve_access(request)
        if request.auth is None:
            raise exceptions.PermissionDenied("Portal links are created with an API key.")
        serializer = PortalLinkCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link = portal_link_create(organization=access.organization, **serializer.validated_data)
        return Response(PortalLinkSerializer(link).data, status=status.HTTP_201_CREATED)
