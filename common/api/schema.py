"""OpenAPI generation: every operation documents the errors it can really answer.

`AutoSchema` adds the error responses of the API shell to each operation (unless the view
documents that code itself), so clients and the fuzzing suite (tests/security) see the
whole contract:

- 401 (no or bad key) and 403 (read-only key or viewer writing; not a member) everywhere;
- 404 on paths with an id, and on paginated lists (`?page=` past the end);
- 400 where a body or query parameters (filters, `?page_size=`) are validated;
- 415 where a JSON body is read.

Views add the codes only they can give (409, 502, ...) with `extend_schema(responses=...)`
using `ERROR` or `VALIDATION_ERROR` below.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as _AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse

#: `{"detail": "..."}`, sometimes with more context keys (see common/api/exceptions.py)
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": True,
}
#: field errors `{"field": ["..."]}` (nested for nested fields), or `{"detail": "..."}`
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": 'Field errors (`{"field": ["message"]}`, nested objects for nested fields) '
    'or `{"detail": "message"}`.',
}

ERROR = OpenApiResponse(ERROR_SCHEMA, description="Error")
VALIDATION_ERROR = OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="Invalid input")

_DESCRIPTIONS = {
    400: "Invalid input: field errors or a detail message",
    401: "Missing, unknown or revoked API key",
    403: "Read-only API key or viewer writing; or not a member of the organization",
    404: "Not found (including another organization's object)",
    415: "Unsupported media type: send application/json",
}


PAGINATION_PARAMETERS = {"page", "page_size"}


class AutoSchema(_AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in sorted(self._error_codes(operation)):
            if str(code) in responses:
                continue
            name, schema = ("ValidationError", VALIDATION_ERROR_SCHEMA) if code == 400 else ("Error", ERROR_SCHEMA)
            component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
            self.registry.register_on_missing(component)
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
            codes |= {400, 404}  # a bad ?page_size=; ?page= past the end
        if query - PAGINATION_PARAMETERS:
            codes.add(400)  # filters are validated
        if "requestBody" in operation:
            codes |= {400, 415}
        return codes
