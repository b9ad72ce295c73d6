from django.urls import re_path

from common.api.handlers import browser_page
from common.api.routers import OptionalSlashRouter

from .callback import oauth_callback, oauth_start
from .issues import ConnectionIssueViewSet
from .proxy import IntegrationProxyView
from .views import UUID_PATTERN, IntegrationViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("integration-issues", ConnectionIssueViewSet, basename="integration-issue")

# Pages for people: their own HTML answers (errors included) stay HTML under /api/.
urlpatterns = [
    re_path(r"^integrations/oauth/callback/?$", browser_page(oauth_callback), name="integration-oauth-callback"),
    re_path(r"^integrations/oauth/start/?$", browser_page(oauth_start), name="integration-oauth-start"),
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/proxy/(?P<path>[\s\S]*)$",
        IntegrationProxyView.as_view(),
        name="integration-proxy",
    ),
    *router.urls,
]
