"""Inbound change notifications: verified here, processed later in a django-q2 task.

- Google (`events/watch` channels) sends an empty POST with `X-Goog-Channel-ID`,
  `X-Goog-Channel-Token`, `X-Goog-Resource-ID` and `X-Goog-Resource-State` (`sync` first,
  then `exists` / `not_exists`). The channel must be one of ours, active, with the same
  resource, and its token must match (compared in constant time).
- Microsoft Graph first validates the URL (`?validationToken=...`: echoed as text/plain
  within 10 seconds), then POSTs `{"value": [{"subscriptionId", "clientState",
  "changeType", "resourceData": {"id"}...}]}`; every item's subscription must be ours and
  its `clientState` match, else the whole batch is refused.

A refused notification changes nothing: 404 (unknown channel or subscription) or 403
(wrong token or clientState). What changed is read through the client by
`integrations.calendar.tasks.process_changes` (the provider's word, not the request's).
"""

from __future__ import annotations

import hmac
import logging
from collections import defaultdict
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from common.api.exceptions import problem
from common.fields import is_readable
from integrations.models import CalendarSubscription

logger = logging.getLogger(__name__)

PROCESS_TASK = "integrations.calendar.tasks.process_changes"
MAX_VALIDATION_TOKEN = 1024
MAX_NOTIFICATION_BODY = 1024 * 1024


def _refused(status: int, detail: str) -> JsonResponse:
    return JsonResponse(problem(status_code=status, detail=detail), status=status)


def _same(secret: Any, given: str) -> bool:
    return (
        bool(given)
        and is_readable(secret)
        and bool(secret)
        and hmac.compare_digest(str(secret).encode(), given.encode())
    )


def _enqueue(subscription_id: Any, event_ids: list[str] | None = None) -> None:
    from django_q.tasks import async_task

    async_task(PROCESS_TASK, str(subscription_id), event_ids)


@csrf_exempt
@require_POST
def google_notification(request: HttpRequest) -> HttpResponse:
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    token = request.headers.get("X-Goog-Channel-Token", "")
    state = request.headers.get("X-Goog-Resource-State", "")
    resource_id = request.headers.get("X-Goog-Resource-ID", "")
    subscription = (
        CalendarSubscription.objects.filter(
            channel_id=channel_id, state=CalendarSubscription.State.ACTIVE, integration__provider="google_calendar"
        ).first()
        if channel_id
        else None
    )
    if subscription is None:
        return _refused(HTTPStatus.NOT_FOUND, "Unknown notification channel.")
    if not _same(subscription.client_state, token) or (resource_id and resource_id != subscription.resource_id):
        logger.warning("Refused a Google notification for channel %s: token or resource mismatch", channel_id)
        return _refused(HTTPStatus.FORBIDDEN, "The channel token does not match.")
    if state == "sync":  # the channel's first message: nothing changed yet
        return HttpResponse(status=HTTPStatus.OK)
    CalendarSubscription.objects.filter(pk=subscription.pk).update(last_notification_at=timezone.now())
    _enqueue(subscription.pk)
    return HttpResponse(status=HTTPStatus.OK)


@csrf_exempt
@require_POST
def microsoft_notification(request: HttpRequest) -> HttpResponse:
    validation = request.GET.get("validationToken")
    if validation is not None:  # Graph checking the URL when a subscription is created
        if len(validation) > MAX_VALIDATION_TOKEN:
            return _refused(HTTPStatus.BAD_REQUEST, "validationToken is too long.")
        response = HttpResponse(validation, content_type="text/plain; charset=utf-8", status=HTTPStatus.OK)
        response["X-Content-Type-Options"] = "nosniff"
        return response
    import json

    try:
        body = json.loads(request.body[: MAX_NOTIFICATION_BODY + 1] or b"{}")
    except ValueError:
        return _refused(HTTPStatus.BAD_REQUEST, "The notification is not JSON.")
    items = body.get("value") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return _refused(HTTPStatus.BAD_REQUEST, 'Expected {"value": [notifications]}.')
    ids = {str(item.get("subscriptionId", "")) for item in items}
    subscriptions = {
        s.channel_id: s
        for s in CalendarSubscription.objects.filter(
            channel_id__in=ids, state=CalendarSubscription.State.ACTIVE, integration__provider="microsoft_outlook"
        )
    }
    changed: dict[Any, list[str]] = defaultdict(list)
    for item in items:
        subscription = subscriptions.get(str(item.get("subscriptionId", "")))
        if subscription is None:
            return _refused(HTTPStatus.NOT_FOUND, "Unknown subscription.")
        if not _same(subscription.client_state, str(item.get("clientState") or "")):
            logger.warning("Refused a Graph notification for subscription %s: clientState mismatch", subscription.pk)
            return _refused(HTTPStatus.FORBIDDEN, "The clientState does not match.")
        event_id = (item.get("resourceData") or {}).get("id") if isinstance(item.get("resourceData"), dict) else None
        if isinstance(event_id, str) and event_id and event_id not in changed[subscription.pk]:
            changed[subscription.pk].append(event_id)
    CalendarSubscription.objects.filter(pk__in=[s.pk for s in subscriptions.values()]).update(
        last_notification_at=timezone.now()
    )
    for subscription_id, event_ids in changed.items():
        _enqueue(subscription_id, event_ids)
    return HttpResponse(status=HTTPStatus.ACCEPTED)
