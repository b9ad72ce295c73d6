"""OpenAPI generation: operations named, grouped and documented with the errors they answer.

`AutoSchema` gives every operation:

- a tag, the app that serves it (`integrations`, `health`, `webhooks`; `organization` and
  `api-keys` from their paths; the event views say `events` themselves), described once in
  `SPECTACULAR_SETTINGS["TAGS"]`, where the viewsets' docstrings used to be repeated on
  every operation;
- a summary: a view's own (`extend_schema(summary=...)`), else one per CRUD action
  ("List webhooks", "Create a webhook", ...); the description is the action's docstring;
- the error responses of the API shell (unless the view documents that code itself), so
  clients and the fuzzing suite (tests/security) see the whole contract:
  - 401 (no or bad key) and 403 (read-only key or viewer writing; not a member) everywhere;
  - 404 on paths with an id, and on paginated lists (`?page=` past the end);
  - 400 where a body or query parameters (filters, `?page_size=`) are validated;
  - 413 and 415 where a JSON body is read.

Views add the codes only they can give (409, 502, ...) with `extend_schema(responses=...)`
using `ERROR` or `VALIDATION_ERROR` below, and request examples
(`extend_schema(examples=...)`, from each app's `api/examples.py`). Every error response
refers to one component, `Error`: the body common/api/exceptions.py builds.
"""

from __future__ import annotations

import copy

from drf_spectacular.openapi import AutoSchema as _AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_doc
from drf_spectacular.utils import OpenApiResponse

from .exceptions import ERROR_TYPES

#: the one error body of the API (common/api/exceptions.py, docs/API.md "Errors")
ERROR_SCHEMA = {
    "type": "object",
    "description": "A problem document (RFC 9457 style). `errors` holds field errors, nested fields as "
    "dotted paths (`config.tenant`, `events.0`), `{}` when the error is about no field. Some errors add "
    "context keys (`retry_after`, `event_id`...).",
    "properties": {
        "type": {"type": "string", "enum": list(ERROR_TYPES), "description": "stable slug to branch on"},
        "title": {"type": "string", "description": "the type in words"},
        "detail": {"type": "string", "description": "this occurrence in words"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "`{field: [messages]}`",
        },
        "retry_after": {"type": "integer", "description": "seconds to wait (rate_limited)"},
    },
    "required": ["type", "title", "detail", "errors"],
    "additionalProperties": True,
}
#: kept for views that declare their 400 (same body: `type` is `validation_error`)
VALIDATION_ERROR_SCHEMA = ERROR_SCHEMA
ERROR_COMPONENT = "Error"

ERROR = OpenApiResponse(ERROR_SCHEMA, description="Error")
VALIDATION_ERROR = OpenApiResponse(ERROR_SCHEMA, description="Invalid input")

_DESCRIPTIONS = {
    400: "Invalid input: field errors or a detail message (also malformed JSON, or objects and arrays "
    "nested deeper than API_MAX_JSON_DEPTH, 32 by default)",
    401: "Missing, unknown or revoked API key",
    403: "Read-only API key or viewer writing; or not a member of the organization",
    404: "Not found (including another organization's object)",
    413: "Request body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB by default); `max_bytes` names the limit",
    415: "Unsupported media type: send application/json",
}


PAGINATION_PARAMETERS = {"page", "page_size", "cursor"}

#: the tag of each app's views (others: the first segment of the path)
APP_TAGS = {"integrations": "integrations", "health": "health", "webhooks": "webhooks"}

#: summaries of the CRUD actions a viewset does not describe itself
_ACTION_SUMMARIES = {
    "list": "List {plural}",
    "create": "Create {a} {name}",
    "retrieve": "Get {a} {name}",
    "update": "Replace {a} {name} (every writable field)",
    "partial_update": "Update {a} {name} (only the fields sent)",
    "destroy": "Delete {a} {name}",
}


class AutoSchema(_AutoSchema):
    def get_tags(self) -> list[str]:
        app = type(self.view).__module__.split(".")[0]
        return [APP_TAGS[app]] if app in APP_TAGS else super().get_tags()

    def get_summary(self) -> str | None:
        template = _ACTION_SUMMARIES.get(getattr(self.view, "action", None) or "")
        queryset = getattr(self.view, "queryset", None)
        if template is None or queryset is None:
            return None
        meta = queryset.model._meta
        name, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
        article = "an" if name[:1].lower() in "aeiou" or name.startswith("API") else "a"
        return template.format(a=article, name=name, plural=plural)

    # drf-spectacular's signature, which differs from DRF's ViewInspector.get_description.
    def get_description(self) -> str:  # type: ignore[override]
        # The action's (or method's) own docstring only: the view's is its tag's description.
        action_or_method = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        return get_doc(action_or_method) if action_or_method is not None else ""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        component = ResolvedComponent(
            # A copy: the enum post-processing hook rewrites the component in place (its `type`
            # becomes a reference to ErrorTypeEnum), and the next schema must find the enum again.
            name=ERROR_COMPONENT,
            type=ResolvedComponent.SCHEMA,
            schema=copy.deepcopy(ERROR_SCHEMA),
            object=ERROR_COMPONENT,
        )
        self.registry.register_on_missing(component)
        for response in responses.values():  # views' own ERROR / VALIDATION_ERROR: the component too
            content = response.get("content", {}).get("application/json")
            if content and content.get("schema") == ERROR_SCHEMA:
                content["schema"] = component.ref
        for code in sorted(self._error_codes(operation)):
            if str(code) in responses:
                continue
            responses[str(code)] = {
                "content": {"application/json": {"schema": component.ref}},
                "description": _DESCRIPTIONS[code],
            }
        return operation

    def _error_codes(self, operation: dict) -> set[int]:
        codes = {401, 403}
        parameters = operation.get("parameters", [])
        if any(parameter["in"] == "path" for parameter in parameters):
            codes.add(404)
        query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
        if query & PAGINATION_PARAMETERS:
            codes |= {400, 404}  # a bad ?page_size= or ?cursor=; ?page= past the end
        if query - PAGINATION_PARAMETERS:
            codes.add(400)  # filters are validated
        if "requestBody" in operation:
            codes |= {400, 413, 415}
        return codes
