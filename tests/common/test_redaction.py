"""The one redaction helper: plain, URL-encoded and base64 forms, Basic pairs, names."""

import base64
from urllib.parse import quote

from common.redaction import REDACTED, mask_sensitive, redact, sensitive_values

SECRET = "s3cr3t/+value=="


def test_plain_and_encoded_forms_are_redacted():
    forms = [SECRET, quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode()]
    text = " | ".join(forms)
    assert redact(text, [SECRET]) == " | ".join([REDACTED] * 3)


def test_urlsafe_base64_without_padding_is_redacted():
    encoded = base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")
    assert SECRET not in redact(f"token={encoded}", [SECRET]) and encoded not in redact(f"x{encoded}", [SECRET])


def test_basic_pairs_hide_an_echoed_authorization_header():
    echoed = "Authorization: Basic " + base64.b64encode(b"client-id:the-client-secret").decode()
    redacted = redact(echoed, ["the-client-secret"], basic_pairs=[("client-id", "the-client-secret")])
    assert redacted == f"Authorization: Basic {REDACTED}"


def test_short_values_and_non_strings_are_left_alone():
    assert redact("abc 123", ["abc", None, 123]) == "abc 123"


def test_longest_secret_first():
    assert redact("abcdefgh", ["abcd", "abcdefgh"]) == REDACTED


def test_sensitive_names():
    headers = {"Authorization": "Bearer x", "X-Api-Key": "k", "X-Tenant": "acme"}
    assert mask_sensitive(headers) == {"Authorization": REDACTED, "X-Api-Key": REDACTED, "X-Tenant": "acme"}
    assert sorted(sensitive_values(headers)) == ["Bearer x", "k"]
