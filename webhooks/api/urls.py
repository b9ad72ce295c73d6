from django.urls import re_path

from common.api.routers import OptionalSlashRouter

from .erasure import SubjectEraseView
from .views import EventBatchView, EventCatalogueView, EventTriggerView, EventTypeViewSet, WebhookViewSet

router = OptionalSlashRouter()
router.register("integrations/webhooks/event-types", EventTypeViewSet, basename="webhook-event-type")
router.register("integrations/webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [
    re_path(r"^integrations/webhooks/events/?$", EventCatalogueView.as_view(), name="webhook-event-catalogue"),
    re_path(r"^data-subjects/erase/?$", SubjectEraseView.as_view(), name="data-subject-erase"),
    re_path(r"^events/?$", EventTriggerView.as_view(), name="event-trigger"),
    re_path(r"^events/batch/?$", EventBatchView.as_view(), name="event-batch"),
    *router.urls,
]
