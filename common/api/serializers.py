"""Base serializers of the API: strict input and one set of bounds.

Every API serializer derives from `Serializer` or `ModelSerializer` here
(tests/common/test_strict_api.py checks it), so:

- a key the serializer does not accept is a 400 naming it: unknown keys ("Unknown field")
  and read-only ones ("This field is read-only") alike, nested serializers too. A typo or
  a field the server keeps (`status`, `secret` on update) is never silently ignored;
- a choice field given something other than a string says so, without a Python repr;
- model `CharField`s keep their `max_length`, URL fields are at most `MAX_URL_LENGTH`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

from rest_framework import serializers

from common.api import fields
from common.limits import MAX_URL_LENGTH

#: query parameters every endpoint may get besides its own (DRF's `?format=`)
QUERY_KEYS = frozenset({"format"})
#: ... and every paginated list (common/api/pagination.py)
PAGINATION_KEYS = QUERY_KEYS | {"page", "page_size"}
#: ... and every cursor-paginated list (common/api/pagination.py `CursorPagination`)
CURSOR_PAGINATION_KEYS = QUERY_KEYS | {"cursor", "page_size"}


class StrictInputMixin:
    """Refuse input keys that are not writable fields of the serializer."""

    #: keys accepted besides the fields (query-parameter serializers: pagination)
    extra_allowed_keys: ClassVar[frozenset[str]] = frozenset()

    def to_internal_value(self, data):
        errors: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            errors = self._refused_keys(data)
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as error:
            if errors and isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **errors}) from None
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _refused_keys(self, data: Mapping) -> dict[str, list[str]]:
        all_fields = self.fields  # type: ignore[attr-defined]
        writable = sorted(name for name, field in all_fields.items() if not field.read_only)
        errors: dict[str, list[str]] = {}
        for key in data:
            if key in self.extra_allowed_keys:
                continue
            field = all_fields.get(key)
            if field is None:
                accepted = ", ".join(writable) or "none"
                errors[str(key)] = [f"Unknown field (accepted: {accepted})."]
            elif field.read_only:
                errors[str(key)] = ["This field is read-only."]
        return errors


class Serializer(StrictInputMixin, serializers.Serializer):
    pass


def validated_query(serializer_class: type[Serializer], params: Mapping) -> dict[str, Any]:
    """`serializer_class(data=params)`'s validated data (or its 400). Query parameters that
    name none of its fields (a list's first page, or only `extra_allowed_keys`: a cursor)
    validate into its defaults, which are worked out once rather than by building its
    fields on every request (so its defaults are constants, not callables like `now`)."""
    if all(key in serializer_class.extra_allowed_keys for key in params):
        return dict(_query_defaults(serializer_class))
    serializer = serializer_class(data=params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@functools.cache
def _query_defaults(serializer_class: type[Serializer]) -> dict[str, Any]:
    serializer = serializer_class(data={})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ModelSerializer(StrictInputMixin, serializers.ModelSerializer):
    serializer_choice_field = fields.ChoiceField

    def build_standard_field(self, field_name, model_field) -> tuple[Any, dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.URLField):
            field_class = fields.URLField
            field_kwargs["max_length"] = min(field_kwargs.get("max_length") or MAX_URL_LENGTH, MAX_URL_LENGTH)
        return field_class, field_kwargs


__all__ = [
    "CURSOR_PAGINATION_KEYS",
    "MAX_URL_LENGTH",
    "PAGINATION_KEYS",
    "QUERY_KEYS",
    "ModelSerializer",
    "Serializer",
    "StrictInputMixin",
]
