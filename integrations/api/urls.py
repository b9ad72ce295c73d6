from django.urls import re_path

from common.api.routers import OptionalSlashRouter

from .callback import oauth_callback, oauth_start
from .proxy import IntegrationProxyView
from .views import UUID_PATTERN, IntegrationViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    re_path(r"^integrations/oauth/callback/?$", oauth_callback, name="integration-oauth-callback"),
    re_path(r"^integrations/oauth/start/?$", oauth_start, name="integration-oauth-start"),
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/proxy/(?P<path>[\s\S]*)$",
        IntegrationProxyView.as_view(),
        name="integration-proxy",
    ),
    *router.urls,
]
