"""The retry schedule and Retry-After parsing."""

from datetime import timedelta

import pytest

from webhooks.retry import MAX_RETRY_AFTER, parse_retry_after

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),  # in the past
        ("99999999999999999999", MAX_RETRY_AFTER),
        ("²", None),
        ("soon", None),
        ("30", timedelta(seconds=30)),
    ],
)
def test_retry_after_parsing_never_raises(value, expected):
    assert parse_retry_after(value) == expected
