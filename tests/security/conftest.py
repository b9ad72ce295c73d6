import socket

import pytest

#: names the tests resolve themselves (no DNS in CI): name -> address
FAKE_DNS = {
    "loopback.attacker.test": "127.0.0.1",
    "metadata.attacker.test": "169.254.169.254",
    "public.partner.test": "93.184.216.34",
}


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve FAKE_DNS names to their addresses; everything else as usual. A test may
    change the returned mapping (e.g. DNS rebinding); the next test starts from FAKE_DNS."""
    real = socket.getaddrinfo
    names = dict(FAKE_DNS)

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def strict_urls(settings):
    """Production behaviour: private URLs refused for webhooks, integrations and health checks."""
    settings.ALLOW_PRIVATE_URLS = False
