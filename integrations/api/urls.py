from common.api.routers import OptionalSlashRouter

from .views import IntegrationViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    *router.urls,
]
