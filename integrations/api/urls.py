from django.urls import re_path

from common.api.routers import OptionalSlashRouter

from .callback import oauth_callback, oauth_start
from .issues import ConnectionIssueViewSet
from .views import IntegrationViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("integration-issues", ConnectionIssueViewSet, basename="integration-issue")

urlpatterns = [
    re_path(r"^integrations/oauth/callback/?$", oauth_callback, name="integration-oauth-callback"),
    re_path(r"^integrations/oauth/start/?$", oauth_start, name="integration-oauth-start"),
    *router.urls,
]
