"""The organization portal: server-rendered pages over the same services and tenancy
rules as the API (every object is looked up within the session's organization)."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from common.exceptions import ApplicationError
from integrations.models import Integration
from integrations.oauth.binding import set_binding_cookie
from integrations.oauth.flows import hash_state, oauth_start_authorization
from integrations.selectors import integration_list
from integrations.services import integration_create, integration_set_credentials
from webhooks.masking import masked_payload, masked_response_body
from webhooks.models import WebhookLog
from webhooks.selectors import webhook_hourly, webhook_list, webhook_log_list, webhook_stats
from webhooks.services.replay import deliveries_recover, log_replay, webhook_send_test
from webhooks.services.webhooks import webhook_create, webhook_enable, webhook_rotate_secret, webhook_update

from .access import ORGANIZATION_KEY, SESSION_KEY, frame_headers, portal_access, portal_view
from .selectors import event_entries, integration_rows
from .services import LinkRefused, portal_link_consume


class PortalLoginView(LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = False

    def get_default_redirect_url(self):
        return "/portal/"

    def dispatch(self, request, *args, **kwargs):
        return frame_headers(super().dispatch(request, *args, **kwargs))


@require_POST
def logout_view(request):
    logout(request)  # flushes the session, a portal-link one too
    return redirect("/portal/login/")


REFUSED = {
    "expired": ("This link has expired", "Portal links are valid for a short time. Ask for a new link."),
    "used": ("This link was already used", "A portal link opens one session, once. Ask for a new link."),
    "invalid": ("This link is not valid", "The link is damaged or was not issued by this platform."),
}


def open_link(request, token: str):
    try:
        link = portal_link_consume(token=token)
    except LinkRefused as refused:
        title, message = REFUSED[refused.reason]
        return frame_headers(render(request, "portal/error.html", {"title": title, "message": message}, status=410))
    request.session.flush()  # no earlier login survives: this session is the portal's only
    request.session[SESSION_KEY] = {"organization": str(link.organization_id), "role": link.role}
    return frame_headers(redirect("/portal/"))


def _errors(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return [
                f"{field}: {' '.join(m for e in errs for m in e.messages)}" for field, errs in exc.error_dict.items()
            ]
        return list(exc.messages)
    return [str(exc)]


def _webhook(request, webhook_id):
    webhook = webhook_list(organization=request.portal.organization).filter(pk=webhook_id).first()
    if webhook is None:
        raise Http404("No such webhook in this organization.")
    return webhook


def _render(request, template, context=None, status=200):
    return render(request, template, {"access": request.portal, **(context or {})}, status=status)


@require_POST
def switch_organization(request):
    """A member of several organizations picks the one the portal shows (a link session
    is bound to its organization and cannot switch)."""
    access = portal_access(request)
    if access is None or access.via_link:
        return frame_headers(redirect("/portal/login/?next=/portal/"))
    slug = request.POST.get("organization", "")
    if slug not in {choice for choice, _ in access.choices}:
        request.portal = access
        return frame_headers(
            _render(
                request,
                "portal/error.html",
                {"title": "Not found", "message": "You are not a member of that organization."},
                status=404,
            )
        )
    request.session[ORGANIZATION_KEY] = slug
    return frame_headers(redirect("/portal/"))


@portal_view()
def index(request):
    organization = request.portal.organization
    return _render(
        request,
        "portal/index.html",
        {
            "webhook_count": webhook_list(organization=organization).count(),
            "integration_count": integration_list(organization=organization).count(),
        },
    )


@portal_view()
def webhooks(request):
    return _render(
        request, "portal/webhooks.html", {"webhooks": webhook_list(organization=request.portal.organization)}
    )


def _parse_form(post) -> dict:
    fields: dict = {
        "name": post.get("name", "").strip(),
        "url": post.get("url", "").strip(),
        "events": post.getlist("events"),
    }
    headers: dict[str, str] = {}
    for line in post.get("headers", "").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValidationError({"headers": f"Write each header as 'Name: value' (got {line.strip()[:40]!r})."})
        headers[name.strip()] = value.strip()
    fields["headers"] = headers
    raw_filter = post.get("filter", "").strip()
    try:
        fields["filter"] = json.loads(raw_filter) if raw_filter else None
    except ValueError as exc:
        raise ValidationError({"filter": f"Not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})."}) from exc
    return fields


def _form(request, webhook=None):
    errors: list[str] = []
    values = {
        "name": webhook.name if webhook else "",
        "url": webhook.url if webhook else "",
        "events": webhook.events if webhook else [],
        "headers": "",
        "filter": json.dumps(webhook.filter, indent=2) if webhook and webhook.filter else "",
    }
    if request.method == "POST":
        values = {**values, **{k: request.POST.get(k, "") for k in ("name", "url", "headers", "filter")}}
        values["events"] = request.POST.getlist("events")
        try:
            fields = _parse_form(request.POST)
            if webhook is None:
                webhook = webhook_create(organization=request.portal.organization, **fields)
            else:
                if not fields["headers"]:
                    fields.pop("headers")  # headers are write-only: blank keeps them
                webhook = webhook_update(webhook=webhook, **fields)
            return redirect(f"/portal/webhooks/{webhook.pk}/")
        except (ValidationError, ApplicationError) as exc:
            errors = _errors(exc)
    return _render(
        request,
        "portal/webhook_form.html",
        {
            "webhook": webhook,
            "values": values,
            "errors": errors,
            "catalogue": event_entries(organization=request.portal.organization),
        },
        status=400 if errors else 200,
    )


@portal_view()
def webhook_new(request):
    if request.method == "GET" and not request.portal.can_write:
        return _render(
            request,
            "portal/error.html",
            {"title": "Read-only access", "message": "Viewers can't create webhooks."},
            403,
        )
    return _form(request)


@portal_view()
def webhook_edit(request, webhook_id):
    return _form(request, _webhook(request, webhook_id))


def _chart(webhook):
    series = webhook_hourly(webhook=webhook)
    peak = max([row["successes"] + row["failures"] for row in series] + [1])
    for row in series:
        row["success_pct"] = round(100 * row["successes"] / peak)
        row["failure_pct"] = round(100 * row["failures"] / peak)
    return series


@portal_view()
def webhook_detail(request, webhook_id, notice="", secret=""):
    webhook = _webhook(request, webhook_id)
    return _render(
        request,
        "portal/webhook_detail.html",
        {
            "webhook": webhook,
            "stats": webhook_stats(webhook=webhook),
            "filter": json.dumps(webhook.filter, indent=2) if webhook.filter else "",
            "chart": _chart(webhook),
            "notice": notice,
            "secret": secret,
            "recent": webhook_log_list(webhook=webhook)[:10],
        },
    )


@portal_view(write=True)
def webhook_secret(request, webhook_id):
    webhook = _webhook(request, webhook_id)
    if request.method == "POST":
        webhook = webhook_rotate_secret(webhook=webhook)
        return _fragment(
            request, webhook, "The secret was rotated: the previous one keeps signing for a while.", webhook.secret
        )
    return _fragment(request, webhook, "", webhook.secret)


def _fragment(request, webhook, notice, secret=""):
    if request.htmx:
        return _render(request, "portal/_notice.html", {"notice": notice, "secret": secret})
    return webhook_detail.__wrapped__(request, webhook.pk, notice=notice, secret=secret)


@portal_view(write=True)
@require_POST
def webhook_test(request, webhook_id):
    webhook = _webhook(request, webhook_id)
    try:
        log = webhook_send_test(webhook=webhook)
    except (ValidationError, ApplicationError) as exc:
        return _fragment(request, webhook, "The test was not sent: " + " ".join(_errors(exc)))
    outcome = f"answered {log.response_status}" if log.response_status else f"failed: {log.error}"
    return _fragment(
        request, webhook, f"Test sent ({'success' if log.success else 'failure'}): the endpoint {outcome}."
    )


@portal_view(write=True)
@require_POST
def webhook_enable_view(request, webhook_id):
    webhook = webhook_enable(webhook=_webhook(request, webhook_id))
    return _fragment(request, webhook, "The webhook is enabled again.")


@portal_view(write=True)
@require_POST
def webhook_recover(request, webhook_id):
    webhook = _webhook(request, webhook_id)
    try:
        since = parse_datetime(request.POST.get("since", "")[:40])
    except ValueError:  # well-formed but impossible, e.g. month 13
        since = None
    if since is None:
        return _fragment(request, webhook, "Recover: give a start time such as 2026-01-31T09:00.")
    if timezone.is_naive(since):
        since = timezone.make_aware(since, timezone.get_current_timezone())
    if since < timezone.now() - timedelta(days=30):
        return _fragment(request, webhook, "Recover: the window can start at most 30 days ago.")
    try:
        result = deliveries_recover(webhook=webhook, since=since)
    except (ValidationError, ApplicationError) as exc:
        return _fragment(request, webhook, "Recover: " + " ".join(_errors(exc)))
    return _fragment(request, webhook, f"Recovering: {result.recovered} failed deliveries queued again.")


@portal_view()
def webhook_logs(request, webhook_id):
    webhook = _webhook(request, webhook_id)
    success = {"true": True, "false": False}.get(request.GET.get("success", ""))
    event = request.GET.get("event", "")[:100]
    logs = webhook_log_list(webhook=webhook, success=success, event=event or None)[:100]
    return _render(
        request,
        "portal/webhook_logs.html",
        {
            "webhook": webhook,
            "logs": logs,
            "success": request.GET.get("success", ""),
            "event": event,
            "catalogue": [e["name"] for e in event_entries(organization=request.portal.organization)],
        },
    )


def _log(request, webhook, log_id) -> WebhookLog:
    log = webhook_log_list(webhook=webhook).filter(pk=log_id).first()
    if log is None:
        raise Http404("No such attempt.")
    return log


@portal_view()
def webhook_log(request, webhook_id, log_id, notice=""):
    webhook = _webhook(request, webhook_id)
    log = _log(request, webhook, log_id)
    return _render(
        request,
        "portal/webhook_log.html",
        {
            "webhook": webhook,
            "log": log,
            "request_headers": json.dumps(log.request_headers, indent=2),
            # Values the event type's schema marks sensitive are masked, as in the API and the admin.
            "request_body": json.dumps(masked_payload(log.delivery.event), indent=2),
            "response_body": masked_response_body(log),
            "notice": notice,
        },
    )


@portal_view(write=True)
@require_POST
def webhook_log_replay(request, webhook_id, log_id):
    webhook = _webhook(request, webhook_id)
    log = _log(request, webhook, log_id)
    try:
        replayed = log_replay(log=log)
    except (ValidationError, ApplicationError) as exc:
        notice = "Not replayed: " + " ".join(_errors(exc))
    else:
        notice = f"Replayed ({'success' if replayed.success else 'failure'}, status {replayed.response_status or '-'})."
    return webhook_log.__wrapped__(request, webhook.pk, log.pk, notice=notice)


@portal_view()
def integrations(request, errors=None, values=None, status=200):
    rows = integration_rows(organization=request.portal.organization)
    return _render(
        request,
        "portal/integrations.html",
        {"rows": rows, "errors": errors or [], "values": values or {}},
        status,
    )


def _integration(request, integration_id) -> Integration:
    integration = integration_list(organization=request.portal.organization).filter(pk=integration_id).first()
    if integration is None:
        raise Http404("No such integration in this organization.")
    return integration


def _to_provider(request, integration: Integration):
    """Start the authorization code flow bound to this browser, and go to the provider."""
    start = oauth_start_authorization(integration=integration, bind_browser=True)
    response = redirect(start.authorization_url)
    set_binding_cookie(response, request, state_hash=hash_state(start.state), secret=start.binding)
    return response


@portal_view(write=True)
@require_POST
def integration_connect(request):
    values = {
        k: request.POST.get(k, "").strip() for k in ("name", "authorization_url", "token_url", "client_id", "scopes")
    }
    config = {k: values[k] for k in ("authorization_url", "token_url", "client_id")}
    if values["scopes"]:
        config["scopes"] = values["scopes"].split()
    try:
        integration = integration_create(
            organization=request.portal.organization,
            name=values["name"],
            provider="custom",
            auth_type="oauth2",
            config=config,
            credentials={"client_secret": request.POST.get("client_secret", "")},
        )
        return _to_provider(request, integration)
    except (ValidationError, ApplicationError) as exc:
        return integrations.__wrapped__(request, errors=_errors(exc), values=values, status=400)


@portal_view(write=True)
@require_POST
def integration_reconnect(request, integration_id):
    try:
        return _to_provider(request, _integration(request, integration_id))
    except (ValidationError, ApplicationError) as exc:
        return integrations.__wrapped__(request, errors=_errors(exc), status=400)


@portal_view(write=True)
@require_POST
def integration_credentials(request, integration_id):
    integration = _integration(request, integration_id)
    credentials = {
        k: v for k, v in zip(request.POST.getlist("key"), request.POST.getlist("value"), strict=False) if k.strip()
    }
    try:
        integration_set_credentials(integration=integration, credentials=credentials)
    except (ValidationError, ApplicationError) as exc:
        return integrations.__wrapped__(request, errors=_errors(exc), status=400)
    return redirect("/portal/integrations/")


@portal_view()
def events(request):
    return _render(
        request, "portal/events.html", {"catalogue": event_entries(organization=request.portal.organization)}
    )
