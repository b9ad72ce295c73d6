"""Signing keys for the JWT bearer grant tests, made once per test process."""

from __future__ import annotations

import functools
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SA_EMAIL = "hiring-bot@acme-hiring.iam.gserviceaccount.com"
SA_CLIENT_ID = "109876543210987654321"
SA_KEY_ID = "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b4c5d6e7f"


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@functools.cache
def rsa_pem(name: str = "main") -> str:
    """An RSA-2048 private key (PEM); another `name`, another key."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@functools.cache
def ec_pem(name: str = "main") -> str:
    """An EC P-256 private key (PEM)."""
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def service_account(**overrides) -> dict:
    """A Google service-account JSON key as Google issues it (the private key is ours)."""
    key = {
        "type": "service_account",
        "project_id": "acme-hiring",
        "private_key_id": SA_KEY_ID,
        "private_key": rsa_pem("google"),
        "client_email": SA_EMAIL,
        "client_id": SA_CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": GOOGLE_TOKEN_URL,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{SA_EMAIL}",
        "universe_domain": "googleapis.com",
    }
    key.update(overrides)
    return {name: value for name, value in key.items() if value is not None}


def service_account_text(**overrides) -> str:
    return json.dumps(service_account(**overrides))
