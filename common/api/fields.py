"""Serializer fields whose errors read as sentences (no Python reprs) and whose sizes are bounded."""

from __future__ import annotations

from rest_framework import serializers

from common.limits import MAX_URL_LENGTH


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else "a value of another type"


class ChoiceField(serializers.ChoiceField):
    """DRF's, but a non-string input says what it got instead of quoting its repr
    (`"['slack']" is not a valid choice.`)."""

    default_error_messages = {
        "invalid_choice": '"{input}" is not a valid choice.',
        "not_a_string": "Expected a string (one of the choices), got {kind}.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) and not (isinstance(data, int) and not isinstance(data, bool)):
            self.fail("not_a_string", kind=_kind(data))
        return super().to_internal_value(data)


class URLField(serializers.URLField):
    """An http(s) URL of at most `MAX_URL_LENGTH` characters."""

    def __init__(self, **kwargs):
        kwargs["max_length"] = min(kwargs.get("max_length") or MAX_URL_LENGTH, MAX_URL_LENGTH)
        super().__init__(**kwargs)
