"""The keys and rules of the JWT bearer grant: reading keys, choosing the algorithm, checks.

Pure functions over an integration's config and credentials: no database, no network.
`integrations.validation` calls `jwt_config_errors` and `jwt_credential_errors` so that
creating or updating a `jwt` integration with an unreadable key, an incomplete
service-account key or a token endpoint off the provider's hosts answers a 400 naming the
field; `jwt_bearer.py` uses the same functions before it signs anything. Messages are
fixed phrases: they never contain key material.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from integrations import providers
from integrations.providers.hosts import confined_host

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

RSA_MIN_BITS = 2048
#: HS256 secrets shorter than this are refused (RFC 7518 section 3.2: a key of the hash's size)
HMAC_MIN_LENGTH = 32
#: the EC curves we sign with, and the one algorithm each signs with (RFC 7518 section 3.4)
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
#: the claims the grant sets itself: `extra_claims` cannot override them
RESERVED_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "nbf", "jti")
#: what a Google service-account JSON key must hold
SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "private_key_id", "token_uri")
SERVICE_ACCOUNT_HINT = "download a new JSON key (Google Cloud console, IAM & Admin > Service accounts > Keys)"


class KeyProblem(ValueError):
    """A key or a claim setting that cannot be used; the message names no key material."""


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a Google service-account JSON key the grant uses."""

    client_email: str
    private_key: str = field(repr=False)
    private_key_id: str
    token_uri: str
    #: the numeric OAuth client id domain-wide delegation is granted to (not secret)
    client_id: str = ""


def load_private_key(pem: str) -> SigningKey:
    """The PEM private key (RSA of 2048+ bits, or EC on P-256/P-384/P-521), unencrypted."""
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise KeyProblem("Must be a PEM-encoded private key (the text from -----BEGIN to -----END).")
    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except TypeError:  # the key is encrypted and we gave no password
        raise KeyProblem("The private key is encrypted: export it without a passphrase.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem("Not a readable PEM private key.") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < RSA_MIN_BITS:
            raise KeyProblem(f"The RSA key has {key.key_size} bits; at least {RSA_MIN_BITS} are needed.")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in EC_ALGORITHMS:
        return key
    raise KeyProblem("Only RSA and EC (P-256, P-384, P-521) private keys are supported.")


def algorithm_for(key: SigningKey, requested: str | None = None) -> str:
    """The JWS algorithm to sign with: `requested` if the key can, else the key's own."""
    if isinstance(key, rsa.RSAPrivateKey):
        if not requested:
            return "RS256"
        if requested[:2] in {"RS", "PS"}:
            return requested
        raise KeyProblem(f"{requested} does not sign with an RSA key: use RS256 (or RS384, RS512, PS256, ...).")
    expected = EC_ALGORITHMS[key.curve.name]
    if requested in (None, "", expected):
        return expected
    raise KeyProblem(f"This EC key ({key.curve.name}) signs with {expected}, not {requested}.")


def parse_service_account(value: Any) -> ServiceAccount:
    """A Google service-account JSON key, as the object or its text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise KeyProblem("Must be the service account's JSON key (the object, or its text).")
    if value.get("type", "service_account") != "service_account":
        raise KeyProblem(f"Must be a key of type service_account: {SERVICE_ACCOUNT_HINT}.")
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not _text(value.get(name))]
    if missing:
        raise KeyProblem(f"The JSON key lacks {', '.join(missing)}: {SERVICE_ACCOUNT_HINT}.")
    try:
        load_private_key(value["private_key"])
    except KeyProblem as problem:
        raise KeyProblem(f"private_key: {problem}") from None
    client_id = value.get("client_id")
    return ServiceAccount(
        client_email=value["client_email"].strip(),
        private_key=value["private_key"],
        private_key_id=value["private_key_id"].strip(),
        token_uri=value["token_uri"].strip(),
        client_id=str(client_id) if isinstance(client_id, (str, int)) else "",
    )


def normalized_credentials(provider: providers.Provider, credentials: dict[str, Any]) -> dict[str, Any]:
    """`credentials` with a service-account key given as an object stored as its JSON text
    (credentials are a flat object of strings)."""
    grant = provider.jwt
    value = credentials.get("service_account")
    if grant is not None and grant.key == "service_account" and isinstance(value, dict):
        return {**credentials, "service_account": json.dumps(value, separators=(",", ":"))}
    return credentials


def token_endpoint_refusal(provider: providers.Provider, url: str, *, allow_private: bool) -> str | None:
    """Why assertions may not be sent to `url`, or None.

    A catalogue provider's token endpoint must be https on its own hosts (`own_hosts`; a
    provider that declares none confines to nothing: fail closed). `custom` has no hosts of
    its own: its token URL must be https, or http under ALLOW_PRIVATE_URLS (development).
    """
    if provider.own_hosts or provider.has_shared_oauth_app:
        host = confined_host(url, provider.own_hosts)
        if host is None:
            return None
        own = ", ".join(provider.own_hosts) or "none declared"
        return f"The token endpoint must be https on {provider.display_name}'s own hosts ({own}), not {host}."
    if not allow_private and not url.lower().startswith("https://"):
        return "The token URL must be https:// (signed assertions and tokens are sent to it)."
    return None


def fill(template: str, config: Mapping[str, Any]) -> str:
    """`template` filled from the config; KeyError names a missing key."""
    values = {key: value for key, value in config.items() if isinstance(value, str) and value}
    return template.format_map(values)


def jwt_config_errors(
    provider: providers.Provider, config: Mapping[str, Any], *, allow_private: bool
) -> dict[str, list[str]]:
    """Errors of a `jwt` integration's (otherwise valid) config, by config key."""
    grant = provider.jwt
    if grant is None:
        return {"auth_type": [f"{provider.name} has no JWT bearer grant."]}
    errors: dict[str, list[str]] = {}
    if grant.token_url:
        try:
            url = fill(grant.token_url, config)
        except KeyError:
            url = ""  # a missing key is reported as required
        refusal = token_endpoint_refusal(provider, url, allow_private=allow_private) if url else None
        if refusal:
            names = _placeholders(grant.token_url) or ["token_url"]
            errors[names[0]] = [refusal]
    extra = config.get("extra_claims")
    if isinstance(extra, dict):
        reserved = [claim for claim in RESERVED_CLAIMS if claim in extra]
        if reserved:
            errors["extra_claims"] = [f"Set by the grant, cannot be overridden: {', '.join(reserved)}."]
    return errors


def jwt_credential_errors(
    provider: providers.Provider, credentials: Mapping[str, Any], *, config: Mapping[str, Any], allow_private: bool
) -> dict[str, list[str]]:
    """Errors of a `jwt` integration's credentials (already flat strings), by credential key."""
    grant = provider.jwt
    if grant is None:
        return {}
    if grant.key == "service_account":
        if not _text(credentials.get("service_account")):
            return {"service_account": ["Required for jwt integrations: the service account's JSON key."]}
        try:
            account = parse_service_account(credentials["service_account"])
        except KeyProblem as problem:
            return {"service_account": [str(problem)]}
        refusal = token_endpoint_refusal(provider, account.token_uri, allow_private=allow_private)
        return {"service_account": [f"token_uri: {refusal}"]} if refusal else {}
    algorithm = config.get("algorithm")
    if isinstance(algorithm, str) and algorithm.startswith("HS"):
        secret = credentials.get("client_secret")
        if not _text(secret):
            return {"client_secret": [f"Required for jwt integrations signing with {algorithm}."]}
        if len(str(secret)) < HMAC_MIN_LENGTH:
            return {"client_secret": [f"At least {HMAC_MIN_LENGTH} characters for {algorithm}."]}
        return {}
    if not _text(credentials.get("private_key")):
        return {"private_key": ["Required for jwt integrations."]}
    try:
        algorithm_for(load_private_key(credentials["private_key"]), algorithm if isinstance(algorithm, str) else None)
    except KeyProblem as problem:
        return {"private_key": [str(problem)]}
    return {}


def key_secrets(credentials: Mapping[str, Any]) -> list[str]:
    """Key material to hide from error texts beyond the credential values themselves: the
    private key inside a service-account JSON key, and each line of every PEM body (a
    provider echoing part of a key must not show it either)."""
    pems = [credentials.get("private_key")]
    account = credentials.get("service_account")
    if isinstance(account, str):
        try:
            data = json.loads(account)
        except ValueError:
            data = None
        if isinstance(data, dict):
            pems.append(data.get("private_key"))
    found: list[str] = []
    for pem in pems:
        if not isinstance(pem, str) or not pem.strip():
            continue
        found.extend({pem, pem.strip()})
        found.extend(line.strip() for line in pem.splitlines() if len(line.strip()) >= 16 and "-----" not in line)
    return found


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]
