"""`webhooks.signing.verify`, the helper receivers use: valid, tampered, wrong secret,
old timestamp, rotated secret (two signatures), missing headers; constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from unittest import mock

import pytest
from standardwebhooks import Webhook as ReferenceWebhook

from webhooks import signing
from webhooks.signing import InvalidSignature, generate_secret, secret_key_bytes, sign, verify

BODY = b'{"type":"job.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":1}}'
MSG_ID = "msg_2f1e0d"


def headers_for(*secrets, body=BODY, timestamp=None, msg_id=MSG_ID):
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = sign(msg_id=msg_id, timestamp=timestamp, body=body, keys=[secret_key_bytes(s) for s in secrets])
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


@pytest.fixture
def secret():
    return generate_secret()


def test_valid(secret):
    verify(secret=secret, headers=headers_for(secret), body=BODY)


def test_header_names_are_case_insensitive(secret):
    headers = {name.title(): value for name, value in headers_for(secret).items()}
    verify(secret=secret, headers=headers, body=BODY)


def test_the_raw_algorithm_matches(secret):
    """What docs/RECEIVING_WEBHOOKS.md describes, written out by hand."""
    timestamp = int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{timestamp}.".encode() + BODY, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert headers_for(secret, timestamp=timestamp)["webhook-signature"] == expected


def test_the_reference_implementation_accepts_our_signatures(secret):
    ReferenceWebhook(secret).verify(BODY, headers_for(secret))


@pytest.mark.parametrize(
    "tampered",
    [BODY.replace(b'"id":1', b'"id":2'), BODY + b" ", b"", BODY.replace(b"job.created", b"job.closed")],
)
def test_tampered_body(secret, tampered):
    with pytest.raises(InvalidSignature):
        verify(secret=secret, headers=headers_for(secret), body=tampered)


def test_tampered_id_or_timestamp(secret):
    headers = headers_for(secret)
    with pytest.raises(InvalidSignature):
        verify(secret=secret, headers={**headers, "webhook-id": "msg_other"}, body=BODY)
    with pytest.raises(InvalidSignature):
        verify(secret=secret, headers={**headers, "webhook-timestamp": str(int(time.time()) - 1)}, body=BODY)


def test_wrong_secret(secret):
    with pytest.raises(InvalidSignature):
        verify(secret=generate_secret(), headers=headers_for(secret), body=BODY)


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_old_or_future_timestamp_is_a_replay(secret, age):
    timestamp = int(time.time()) - age
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(secret=secret, headers=headers_for(secret, timestamp=timestamp), body=BODY)


def test_tolerance_is_configurable(secret):
    timestamp = int(time.time()) - 3600
    verify(secret=secret, headers=headers_for(secret, timestamp=timestamp), body=BODY, tolerance_seconds=7200)


def test_rotated_secret_two_signatures_either_verifies():
    old, new = generate_secret(), generate_secret()
    headers = headers_for(new, old)
    assert len(headers["webhook-signature"].split()) == 2
    verify(secret=new, headers=headers, body=BODY)
    verify(secret=old, headers=headers, body=BODY)
    with pytest.raises(InvalidSignature):
        verify(secret=generate_secret(), headers=headers, body=BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers(secret, missing):
    headers = headers_for(secret)
    del headers[missing]
    with pytest.raises(InvalidSignature, match="Missing"):
        verify(secret=secret, headers=headers, body=BODY)


@pytest.mark.parametrize("signature", ["", "v1,", "v2,abc", "garbage", "v1,!!!not-base64"])
def test_malformed_signatures(secret, signature):
    headers = {**headers_for(secret), "webhook-signature": signature}
    with pytest.raises(InvalidSignature):
        verify(secret=secret, headers=headers, body=BODY)


def test_non_numeric_timestamp(secret):
    with pytest.raises(InvalidSignature):
        verify(secret=secret, headers={**headers_for(secret), "webhook-timestamp": "yesterday"}, body=BODY)


def test_comparison_is_constant_time_and_covers_every_candidate():
    old, new = generate_secret(), generate_secret()
    headers = headers_for(old)  # only the old one signed: the new one must try each candidate
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    with mock.patch.object(signing.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        with pytest.raises(InvalidSignature):
            verify(secret=new, headers=headers, body=BODY)
    assert spy.call_count == 2
    with mock.patch.object(signing.hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        verify(secret=old, headers=headers, body=BODY)
    assert spy.call_count == 2
