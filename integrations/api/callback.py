"""The browser redirect target of OAuth providers: GET /api/integrations/oauth/callback/.

No API key: the single-use state authenticates the request. Answers a small HTML page
(never echoing the code), linking to the integration's admin page.
"""

from __future__ import annotations

from http import HTTPStatus

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.exceptions import ApplicationError
from common.fields import UndecryptableValueError
from integrations.oauth.flows import oauth_exchange_code

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
    try:
        integration = oauth_exchange_code(code=request.GET.get("code", ""), state=request.GET.get("state", ""))
    except ApplicationError as failure:
        return _page(request, title="Authorization failed", message=failure.message, status=failure.status_code)
    except UndecryptableValueError as failure:  # e.g. the PKCE verifier, after a Fernet key was dropped
        return _page(request, title="Authorization failed", message=str(failure), status=HTTPStatus.CONFLICT)
    return _page(
        request,
        title="Connected",
        message=f"{integration.name} ({integration.provider}) is authorized and active.",
        status=HTTPStatus.OK,
        integration=integration,
    )
