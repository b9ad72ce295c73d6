"""Paths stay under the API base: no other host, no climbing out, no header injection."""

from __future__ import annotations

import pytest
import responses

from integrations.client import PathRefused, integration_client
from integrations.client.paths import check_relative_path, loggable_path, same_origin

from .conftest import api_key

pytestmark = pytest.mark.django_db

REFUSED = [
    "https://evil.example.com/x",
    "//evil.example.com/x",
    "http:evil",
    "a:b",  # a first segment with a colon is a scheme (RFC 3986)
    "../admin",
    "a/../../b",
    "a/./b",
    "%2e%2e/admin",
    "%2E%2E%2Fadmin",
    "a%2f..%2fb",
    "%252e%252e/admin",
    "..\\admin",
    "a\\b",
    "x\r\nHost: evil",
    "x%0d%0aSet-Cookie:%20a=b",
    "x\x00y",
    "x?access_token=1",
    "x#frag",
    "%25252525252e",
]


@pytest.mark.parametrize("path", REFUSED)
def test_refused(path):
    with pytest.raises(PathRefused):
        check_relative_path(path)


@pytest.mark.parametrize("path", ["users/me", "/users/me", "v1/a.b/c..d", "files/%20name", "v1/a:b@c"])
def test_allowed(path):
    assert check_relative_path(path) == path.lstrip("/")


def test_refused_before_anything_is_sent(organization):
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # any request would fail: none registered
        with pytest.raises(PathRefused):
            integration_client(api_key(organization)).get("//169.254.169.254/latest/meta-data")


def test_unknown_placeholder_is_refused(organization):
    with pytest.raises(PathRefused, match="tenant"):
        integration_client(api_key(organization)).get("v1/{tenant}/workers")


def test_same_origin():
    base = "https://graph.microsoft.com/v1.0"
    assert same_origin("https://graph.microsoft.com/v1.0/me?$skip=2", base)
    assert not same_origin("http://graph.microsoft.com/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com:444/v1.0/me", base)
    assert not same_origin("https://user@graph.microsoft.com/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com.evil.io/v1.0", base)


def test_loggable_path_masks_secret_params():
    assert (
        loggable_path("x?code=abc&page=2", {"signature": "s", "key": "k"})
        == "x?code=%2A%2A%2A&page=2&signature=%2A%2A%2A&key=%2A%2A%2A"
    )
