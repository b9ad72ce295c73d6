from http import HTTPStatus

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .service_status import service_status


@never_cache
@require_safe
def healthz(request):
    """200 when the database, the broker and a cluster heartbeat are fine; 503 naming what is not."""
    status = service_status()
    code = HTTPStatus.OK if status["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
    return JsonResponse(status, status=code)
