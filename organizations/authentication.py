"""`Authorization: Bearer <key>` authentication for the REST API."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from common.text import quoted

from .models import ApiKey
from .selectors import api_key_authenticate
from .services import api_key_mark_used


class ApiKeyPrincipal:
    """`request.user` for API-key requests: authenticated, acting for one organization."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = api_key.pk
        self.id = api_key.pk
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username


#: the one way to present a key; every malformed Authorization header is told so
USE_BEARER = "Use `Authorization: Bearer <api key>`."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode():
            # `Token ik_...`, `Basic ...`, a bare key: no other scheme is accepted (the
            # browsable API and the admin use the session cookie, not this header).
            scheme = header[0][:20].decode("ascii", "replace")
            raise exceptions.AuthenticationFailed(f"Unsupported Authorization scheme {quoted(scheme)}. {USE_BEARER}")
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(f"Invalid Authorization header. {USE_BEARER}")
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        api_key = api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_mark_used(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An organization API key: `Authorization: Bearer ik_…`.",
        }
