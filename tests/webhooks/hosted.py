"""A real local HTTPS receiver reachable under a test's host name (`https://hooks.acme.test/in`).

For tests whose webhooks have public-looking URLs (tenants, secrets): inside `hosted(...)`
that name resolves to the local receiver (socket.getaddrinfo, whatever the port asked),
which serves TLS with a certificate for the name issued by a CA of its own, and the engine
verifies receivers with that CA (`WEBHOOKS_CA_BUNDLE`). Everything else is real: the
delivery's request goes over TLS to a real server and its answer is read back."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.test import override_settings

from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.subscriber_servers import Issued, make_ca


def _server_certificate(ca: Issued, names: tuple[str, ...]) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=12))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(certificate, key)


@contextmanager
def hosted(*names: str, reply: Reply | None = None) -> Iterator[Receiver]:
    """A receiver answering `reply` (default 200 "thanks") as each of `names`, over HTTPS."""
    ca = make_ca()
    server = _server_certificate(ca, names)
    with tempfile.TemporaryDirectory(prefix="hosted-") as directory:
        (Path(directory) / "server.pem").write_text(server.pem)
        (Path(directory) / "ca.pem").write_text(ca.cert_pem())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(Path(directory) / "server.pem")
        receiver = Receiver()
        receiver.default = reply or Reply(body=b"thanks")
        receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
        receiver.start()
        port = receiver.server.server_address[1]
        real = socket.getaddrinfo

        def resolve(host, *args, **kwargs):
            if host in names:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real(host, *args, **kwargs)

        try:
            with (
                mock.patch.object(socket, "getaddrinfo", resolve),
                override_settings(WEBHOOKS_CA_BUNDLE=str(Path(directory) / "ca.pem")),
            ):
                yield receiver
        finally:
            receiver.stop()
