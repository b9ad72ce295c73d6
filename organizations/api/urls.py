from django.urls import re_path

from common.api.routers import OptionalSlashRouter

from .views import ApiKeyViewSet, CurrentOrganizationView

router = OptionalSlashRouter()
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    re_path(r"^organization/?$", CurrentOrganizationView.as_view(), name="current-organization"),
    *router.urls,
]
