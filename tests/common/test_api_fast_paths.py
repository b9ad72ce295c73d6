"""The API's per-request shortcuts answer what the code they skip answers.

- `common.api.negotiation.ContentNegotiation` picks the renderer without parsing `Accept`
  for the usual headers: the same renderer and media type as DRF's negotiation, and every
  other header goes to DRF's (406 included).
- `common.api.parsers.JSONParser` walks a parsed body for its depth and its text only when
  the JSON text could fail those checks: the same data or the same error as walking always.
- `common.api.serializers.validated_query` gives a query serializer's defaults without
  building it when no parameter names one of its fields: what the serializer validates.
"""

from __future__ import annotations

import io
import json

import pytest
from django.http import Http404, QueryDict
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request

from common.api.negotiation import ContentNegotiation
from common.api.parsers import JSONParser, too_deep_message
from common.api.serializers import validated_query
from common.jsonvalues import contains_unstorable_text, nesting_exceeds
from webhooks.api.serializers import WebhookLogFilterSerializer, WebhookStatsFilterSerializer


def _negotiated(negotiation, renderers, accept, query=""):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get(f"/api/x/{query}", **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except exceptions.NotAcceptable:
        return "406"
    except Http404:  # ?format= naming no renderer
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "application/json; indent=4", "text/html", "application/*", "", "a/b, */*"],
)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
@pytest.mark.parametrize("renderers", [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()]], ids=["json", "two"])
def test_negotiation_answers_what_drfs_does(accept, query, renderers):
    assert _negotiated(ContentNegotiation(), renderers, accept, query) == _negotiated(
        DefaultContentNegotiation(), renderers, accept, query
    )


def _walking_always(body: bytes):
    """What the parser did before: DRF's parse, then both walks on every body."""
    limit = 32
    try:
        data = DRFJSONParser().parse(io.BytesIO(body))
    except RecursionError:
        return ("error", too_deep_message(limit))
    except exceptions.ParseError as error:
        return ("error", str(error.detail))
    if nesting_exceeds(data, limit):
        return ("error", too_deep_message(limit))
    if contains_unstorable_text(data):
        return ("error", "JSON parse error - strings must not contain NUL characters or lone surrogates.")
    return ("data", data)


def _parsed(body: bytes):
    try:
        return ("data", JSONParser().parse(io.BytesIO(body)))
    except exceptions.ParseError as error:
        return ("error", str(error.detail))


BODIES = [
    b'{"event": "job.opened", "payload": {"a": 1}}',
    b"[" * 32 + b"]" * 32,
    b"[" * 33 + b"]" * 33,
    b'{"a": "' + b"[" * 40 + b'"}',  # brackets in a string: many, but no depth
    b"[" * 5000 + b"]" * 5000,
    b'{"a": "\\u0000"}',
    b'{"\\u0000": 1}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\ud83d\\ude00"}',  # a pair: storable
    b'{"a": "\\\\u0000"}',  # an escaped backslash, then text
    b'{"a": "\\u00e9"}',
    '{"a": "é"}'.encode(),
    b'{"a": "\x00"}',  # a raw control character: strict JSON refuses it
    b'{"a": NaN}',
    b'{"a": 1',
    b"\xff",
    b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate: not UTF-8
    json.dumps({"events": [{"event": "job.opened", "payload": {"n": n}} for n in range(50)]}).encode(),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda body: repr(body)[:50])
def test_the_parser_answers_what_walking_every_body_answers(body, settings):
    settings.API_MAX_JSON_DEPTH = 32
    assert _parsed(body) == _walking_always(body)


def _validated(serializer_class, query):
    serializer = serializer_class(data=QueryDict(query))
    if not serializer.is_valid():
        return ("400", serializer.errors)
    return ("ok", dict(serializer.validated_data))


def _shortcut(serializer_class, query):
    try:
        return ("ok", validated_query(serializer_class, QueryDict(query)))
    except exceptions.ValidationError as error:
        return ("400", error.detail)


@pytest.mark.parametrize(
    ("serializer_class", "query"),
    [
        (WebhookLogFilterSerializer, ""),
        (WebhookLogFilterSerializer, "cursor=abc&page_size=3"),
        (WebhookLogFilterSerializer, "format=json"),
        (WebhookLogFilterSerializer, "success=false&cursor=abc"),
        (WebhookLogFilterSerializer, "since=2026-01-02T03:04:05Z&event=job.opened"),
        (WebhookLogFilterSerializer, "since=yesterday"),
        (WebhookLogFilterSerializer, "unknown=1"),
        (WebhookLogFilterSerializer, "page=2"),
        (WebhookStatsFilterSerializer, ""),
        (WebhookStatsFilterSerializer, "window=30d"),
        (WebhookStatsFilterSerializer, "window=1y"),
        (WebhookStatsFilterSerializer, "cursor=abc"),
    ],
)
def test_validated_query_answers_what_the_serializer_does(serializer_class, query):
    assert _shortcut(serializer_class, query) == _validated(serializer_class, query)
    first = validated_query(serializer_class, QueryDict(""))
    first["changed"] = True  # a caller's copy: the next request's defaults are untouched
    assert "changed" not in validated_query(serializer_class, QueryDict(""))
