"""The browser side of the OAuth flow: the provider's redirect target
(GET /api/integrations/oauth/callback/) and the start page of API-started flows
(/api/integrations/oauth/start/).

No API key: the single-use state and the browser binding cookie (oauth/binding.py)
authenticate the callback; a state without this browser's cookie is refused (403) before
anything is exchanged. Answers small HTML pages (never echoing the code).
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from common.exceptions import ApplicationError
from common.fields import UndecryptableValueError
from integrations.oauth.binding import (
    OAuthBindingRefused,
    clear_binding_cookie,
    oauth_bind_state,
    presented_binding,
    set_binding_cookie,
)
from integrations.oauth.flows import MAX_PARAMETER_LENGTH, hash_state, oauth_exchange_code

MAX_SHOWN = 200


def _page(request, *, title: str, message: str, status: int, integration=None):
    admin_url = reverse("admin:integrations_integration_change", args=[integration.pk]) if integration else ""
    response = render(
        request,
        "integrations/oauth_result.html",
        {"title": title, "message": message[: MAX_SHOWN * 2], "integration": integration, "admin_url": admin_url},
        status=status,
    )
    response["Referrer-Policy"] = "no-referrer"  # the URL carries the code
    return response


@never_cache
@require_GET
def oauth_callback(request):
    error = request.GET.get("error")
    if error:
        description = request.GET.get("error_description", "")
        text = f"{error[:MAX_SHOWN]}" + (f": {description[:MAX_SHOWN]}" if description else "")
        return _page(
            request,
            title="Authorization was not granted",
            message=f"The provider answered {text}. Nothing was changed; start the authorization again to retry.",
            status=HTTPStatus.BAD_REQUEST,
        )
    state = request.GET.get("state", "")
    state_hash = hash_state(state) if isinstance(state, str) else ""
    try:
        integration = oauth_exchange_code(
            code=request.GET.get("code", ""),
            state=state,
            browser_binding=presented_binding(request, state_hash),
        )
    except ApplicationError as failure:
        return _page(request, title="Authorization failed", message=failure.message, status=failure.status_code)
    except UndecryptableValueError as failure:  # e.g. the PKCE verifier, after a Fernet key was dropped
        return _page(request, title="Authorization failed", message=str(failure), status=HTTPStatus.CONFLICT)
    response = _page(
        request,
        title="Connected",
        message=f"{integration.name} ({integration.provider}) is authorized and active.",
        status=HTTPStatus.OK,
        integration=integration,
    )
    clear_binding_cookie(response, state_hash=state_hash)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def oauth_start(request):
    """GET: a page with a button (a CSRF-protected POST). POST: bind the flow to this
    browser (the first to press it), set the cookie and go to the provider."""
    state = request.POST.get("state", "") if request.method == "POST" else request.GET.get("state", "")
    if not isinstance(state, str) or not state or len(state) > MAX_PARAMETER_LENGTH:
        return _page(request, title="Authorization failed", message="Missing state.", status=HTTPStatus.BAD_REQUEST)
    if request.method == "GET":
        response = render(request, "integrations/oauth_start.html", {"state": state})
        response["Referrer-Policy"] = "no-referrer"
        return response
    try:
        secret, provider_url = oauth_bind_state(state=state)
    except OAuthBindingRefused as refused:
        return _page(request, title="Authorization failed", message=str(refused), status=HTTPStatus.BAD_REQUEST)
    except ApplicationError as failure:
        return _page(request, title="Authorization failed", message=failure.message, status=failure.status_code)
    response = HttpResponseRedirect(provider_url)
    set_binding_cookie(response, request, state_hash=hash_state(state), secret=secret)
    return response
