"""The SQL twin of webhooks/filters.py `matches` (`webhooks_filter_matches`, migration 0012),
which the PostgreSQL fan-out evaluates inside its one statement: the same answer as the
Python function for every operator case, the edge cases, and generated filters and bodies.
The function exists on PostgreSQL only (SQLite keeps the Python path)."""

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webhooks.filters import COMPARISONS, matches, validate_filter

from .test_filters import BODY, OPERATOR_CASES

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL twin is PostgreSQL's"),
]


def _text(value: Any) -> str:
    # As the fan-out sends the payload (webhooks/services/events.py `_validate_event`).
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def in_sql(filter_: Any, body: dict[str, Any]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhooks_filter_matches(%s::jsonb, %s::jsonb)",
            [None if filter_ is None else _text(filter_), _text(body)],
        )
        (answer,) = cursor.fetchone()
    return answer


def both(filter_: Any, body: dict[str, Any]) -> tuple[bool, bool]:
    body = json.loads(_text(body))  # the body as the receiver (and jsonb) reads it
    return matches(filter_, body), in_sql(filter_, body)


@pytest.mark.parametrize(("filter_", "expected"), OPERATOR_CASES)
def test_every_operator_case_answers_the_same(filter_, expected):
    assert both(validate_filter(filter_), BODY) == (expected, expected)


EDGE_BODY = {
    "type": "offer.accepted",
    "timestamp": "2026-03-02T10:15:00.123456Z",
    "data": {
        "nested": {"list": [[1, 2], {"a": [True, None]}], "obj": {"x": {"y": [1.5, "s"]}}},
        "unicode": "Zoë 😀",
        "bmp_top": "\uffff",
        "astral": "😀",
        "accented": "é",
        "empty": "",
        "null": None,
        "zero": 0,
        "negative_zero": -0.0,
        "big_int": 10**30,
        "huge_float": 1e23,
        "beyond_double": 2**53 + 1,
        "tiny": 5e-324,
        "flag": False,
        "list": ["a", 1, 1.0, None, {"k": "v"}],
        "10": "a key made of digits",
    },
}

EDGE_CASES = [
    # nested equality: key order does not matter, numbers compare as values, never booleans
    {"data.nested": {"$eq": {"obj": {"x": {"y": [1.5, "s"]}}, "list": [[1, 2], {"a": [True, None]}]}}},
    {"data.nested.list": [[1.0, 2], {"a": [True, None]}]},
    {"data.nested.list": [[1, 2], {"a": [1, None]}]},
    {"data.nested.list.0": {"$in": [[2, 1], [1, 2]]}},
    {"data.nested.list.1": {"$nin": [{"a": [True]}, {"a": [True, None], "b": 1}]}},
    {"data.nested.obj.x.y.1": "s"},
    # unicode: codepoint order (an astral character sorts after U+FFFF, unlike UTF-16)
    {"data.astral": {"$gt": "\uffff"}},
    {"data.bmp_top": {"$lt": "😀"}},
    {"data.accented": {"$gt": "z"}},
    {"data.unicode": {"$startsWith": "Zoë"}},
    {"data.unicode": {"$startsWith": "Zoe"}},
    {"data.unicode": {"$eq": "Zoë 😀"}},
    {"data.unicode": {"$gte": "Zoë", "$lt": "Zoë 😁"}},
    # empty strings
    {"data.empty": ""},
    {"data.empty": {"$startsWith": ""}},
    {"data.unicode": {"$startsWith": ""}},
    {"data.empty": {"$lt": "a"}},
    {"data.empty": {"$gte": ""}},
    {"data.empty": {"$exists": True}},
    # null values against missing paths
    {"data.null": None},
    {"data.null": {"$exists": True}},
    {"data.null": {"$neq": None}},
    {"data.null": {"$in": [None]}},
    {"data.null": {"$nin": [None]}},
    {"data.null.deeper": {"$exists": False}},
    {"data.null": {"$lt": 1}},
    {"data.nowhere": None},
    {"data.nowhere": {"$neq": None}},
    {"data.nowhere": {"$nin": [None]}},
    {"data.nowhere": {"$lte": "z"}},
    # large and odd numbers
    {"data.big_int": {"$eq": 1e30}},
    {"data.big_int": {"$gt": 10**30 - 1}},
    {"data.big_int": {"$lt": 1e31}},
    {"data.huge_float": {"$eq": 10**23}},
    {"data.huge_float": {"$gt": 99999999999999995000000}},
    {"data.beyond_double": {"$gt": 2.0**53}},
    {"data.beyond_double": {"$eq": 9007199254740993}},
    {"data.tiny": {"$gt": 0}},
    {"data.tiny": {"$lt": 1e-323}},
    {"data.negative_zero": 0},
    {"data.zero": {"$eq": False}},
    {"data.zero": {"$in": [False, None, "0"]}},
    {"data.flag": {"$lt": 1}},
    {"data.flag": False},
    {"data.list": ["a", 1.0, 1, None, {"k": "v"}]},
    {"data.list": {"$eq": ["a", 1, 1]}},
    # array indexes: ASCII digits only, within bounds; digit keys index objects
    {"data.list.4.k": "v"},
    {"data.list.04.k": "v"},
    {"data.list.5": {"$exists": False}},
    {"data.list.-1": {"$exists": False}},
    {"data.list.+1": {"$exists": False}},
    {"data.list. 1": {"$exists": False}},
    {"data.list.²": {"$exists": False}},
    {"data.list.\u0661": {"$exists": False}},  # ARABIC-INDIC DIGIT ONE
    {"data.list.99999999999999999999": {"$exists": False}},
    {"data.10": {"$startsWith": "a key"}},
    {"data.unicode.0": {"$exists": False}},
    # the body's other fields
    {"type": {"$startsWith": "offer."}, "timestamp": {"$gt": "2026-03-02T10:15:00Z"}},
    {"timestamp": {"$lt": "2026-03-02T10:15:00.2Z"}},
    {"type.0": {"$exists": False}},
    # combinators, nested; several keys all hold
    {"$or": [{"data.zero": 1}, {"$and": [{"data.flag": False}, {"data.empty": {"$exists": True}}]}]},
    {"$and": [{"$or": [{"data.zero": 1}, {"data.flag": True}]}], "data.empty": ""},
    {"data.zero": 0, "data.flag": False, "data.null": None, "data.nowhere": {"$exists": False}},
    {"data.zero": 0, "data.flag": True},
]


@pytest.mark.parametrize("filter_", EDGE_CASES)
def test_edge_cases_answer_the_same(filter_):
    python, sql = both(validate_filter(filter_), EDGE_BODY)
    assert python is sql


def test_no_filter_matches_in_sql_too():
    assert in_sql(None, BODY) is True
    assert in_sql({}, BODY) is True


# --- generated filters and bodies --------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "0", "1", "é"])
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6) | st.sampled_from(
    ["", "a", "ab", "b", "é", "😀", "\uffff"]
)
NUMBER = (
    st.integers(-5, 5)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 1.0, 2.0, 1e23, 10**23, 2**53 + 1, 2.0**53, -0.0])
)
SCALAR = st.none() | st.booleans() | NUMBER | TEXT
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
DATA = st.dictionaries(KEYS, JSON, max_size=4)
BODIES = st.fixed_dictionaries({"type": st.sampled_from(["a.b", "a.c", ""]), "timestamp": TEXT, "data": DATA})
PATHS = st.builds(
    lambda root, rest: ".".join([root, *rest]),
    st.sampled_from(["data", "data", "data", "type", "timestamp"]),
    st.lists(KEYS, max_size=3),
)
OPERATORS = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$neq"]), JSON),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(JSON, max_size=3)),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$startsWith"), TEXT),
    st.tuples(st.sampled_from(sorted(COMPARISONS)), NUMBER | TEXT),
)
CONDITIONS = (
    st.dictionaries(st.sampled_from(["$eq"]), SCALAR, min_size=1)
    | JSON
    | st.lists(OPERATORS, min_size=1, max_size=3).map(dict)
)
LEAVES = st.dictionaries(PATHS, CONDITIONS, min_size=1, max_size=3)
FILTERS = st.recursive(
    LEAVES,
    lambda inner: (
        st.dictionaries(st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=1, max_size=3), min_size=1)
        | st.builds(lambda a, b: {**a, **b}, inner, LEAVES)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter_=FILTERS, body=BODIES)
def test_generated_filters_and_bodies_answer_the_same(filter_, body):
    try:
        valid = validate_filter(filter_)
    except ValidationError:
        assume(False)
    python, sql = both(valid, body)
    assert python is sql, (valid, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, data=st.data())
def test_generated_filters_on_paths_that_exist_answer_the_same(body, data):
    """Paths drawn from the body itself, so most conditions look at a value."""
    paths = []

    def walk(value: Any, path: str) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")

    walk(body["data"], "data")
    paths += ["type", "timestamp"]
    path = data.draw(st.sampled_from(paths))
    operator, operand = data.draw(OPERATORS)
    try:
        valid = validate_filter({path: {operator: operand}})
    except ValidationError:
        assume(False)
    python, sql = both(valid, body)
    assert python is sql, (valid, body)
