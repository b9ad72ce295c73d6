"""common/jsonvalues.py: depth and storable-text checks that never recurse."""

import sys

import pytest

from common.jsonvalues import contains_unstorable_text, nesting_exceeds


def nested(depth: int, leaf=1, *, kind: str = "dict"):
    value = leaf
    for _ in range(depth):
        value = {"a": value} if kind == "dict" else [value]
    return value


@pytest.mark.parametrize("kind", ["dict", "list"])
def test_depth_counts_containers(kind):
    assert not nesting_exceeds(1, 0)
    assert not nesting_exceeds(nested(3, kind=kind), 3)
    assert nesting_exceeds(nested(4, kind=kind), 3)
    assert not nesting_exceeds({}, 1)
    assert nesting_exceeds({}, 0)


def test_the_deepest_branch_decides_not_the_first():
    value = {"shallow": 1, "deep": [{"x": [nested(5)]}], "other": [[]]}
    assert nesting_exceeds(value, 8)  # 1 (top) + 1 + 1 + 1 + 5
    assert not nesting_exceeds(value, 9)


def test_far_deeper_than_the_interpreter_stack_does_not_recurse():
    depth = sys.getrecursionlimit() * 20
    deep = nested(depth, kind="list")
    assert nesting_exceeds(deep, 32)
    assert not nesting_exceeds(deep, depth)
    assert contains_unstorable_text(nested(depth, "a\x00b", kind="list"))
    assert not contains_unstorable_text(deep)


def test_a_cycle_counts_as_too_deep_instead_of_looping():
    cycle: dict = {}
    cycle["self"] = cycle
    assert nesting_exceeds(cycle, 32)


@pytest.mark.parametrize(
    "value",
    [{"a\x00": 1}, {"a": "\ud800"}, ["ok", ("t", "x\x00")], {"k": [{"j": "\udfff"}]}],
)
def test_nul_and_lone_surrogates_are_found_in_keys_values_and_tuples(value):
    assert contains_unstorable_text(value)


def test_ordinary_text_is_storable():
    assert not contains_unstorable_text({"name": "Zoë ✓ 💼", "list": ["a", 1, None, 2.5]})
