from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common.api.handlers import unrouted
from health.views import healthz
from portal.api import PortalLinkView

api_patterns = [
    path("", include("organizations.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("health.api.urls")),
    path("", include("integrations.api.urls")),
    re_path(r"^portal-links/?$", PortalLinkView.as_view(), name="portal-links"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    path("", include("observability.urls")),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Our template: drf-spectacular's loads Google Fonts; this one loads nothing from outside.
    re_path(
        r"^api/redoc/?$",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("portal/", include("portal.urls")),
    path("api/", include(api_patterns)),
    # Last: any other path under /api/ is a JSON 404, also with DEBUG on (common/api/handlers.py).
    re_path(r"^api/(?P<path>.*)$", unrouted, name="api-unrouted"),
]

handler404 = "common.api.handlers.not_found"
handler500 = "common.api.handlers.server_error"
