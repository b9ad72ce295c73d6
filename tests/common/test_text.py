"""Counts with the noun that agrees with them (common/text.py)."""

import pytest

from common.text import count_of, model_label, plural_of
from integrations.models import Integration, OAuthState
from webhooks.models import Delivery


@pytest.mark.parametrize(
    ("noun", "plural"),
    [
        ("delivery", "deliveries"),
        ("key", "keys"),
        ("day", "days"),
        ("health check", "health checks"),
        ("integration", "integrations"),
        ("value", "values"),
        ("batch", "batches"),
    ],
)
def test_regular_plurals(noun, plural):
    assert plural_of(noun) == plural


def test_counts_agree_with_their_noun():
    assert count_of(1, "delivery") == "1 delivery"
    assert count_of(2, "delivery") == "2 deliveries"
    assert count_of(0, "integration") == "0 integrations"
    assert count_of(3, "person", "people") == "3 people"


def test_model_labels_read_as_words():
    assert model_label(OAuthState) == "OAuth states"
    assert model_label(Integration) == "integrations"
    assert model_label(Delivery) == "deliveries"
