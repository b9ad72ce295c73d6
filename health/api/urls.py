from common.api.routers import OptionalSlashRouter

from .views import IntegrationHealthViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationHealthViewSet, basename="integration-health")

urlpatterns = router.urls
