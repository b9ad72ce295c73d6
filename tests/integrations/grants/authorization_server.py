"""A real authorization server implementing the JWT bearer grant (RFC 7523), with Authlib.

It runs on 127.0.0.1 in a thread (the HTTP server of tests/webhooks/receiver.py):

- `POST /token` is Authlib's `JWTBearerGrant` behind a minimal `AuthorizationServer`: it
  finds the client by the assertion's `iss`, verifies the signature with that client's
  registered public key and the claims (`aud` = this token URL, `exp`, `iat`) with joserfc,
  checks `sub` against its users and the requested `scope`, and issues a Bearer token;
- `GET /me` answers 200 to a token it issued and 401 to anything else (a health check URL).

Nothing of our code runs here: our client must produce what a standard server accepts.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerGrant
from authlib.oauth2.rfc7523.jwt_bearer import JWT_BEARER_GRANT_TYPE
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey

from tests.webhooks.receiver import Received, Receiver, Reply


@dataclass
class RegisteredClient(ClientMixin):
    """A client that may use the JWT bearer grant, identified by the assertion's `iss`."""

    issuer: str
    public_key: str
    scopes: tuple[str, ...] = ()

    def get_client_id(self):
        return self.issuer

    def check_grant_type(self, grant_type):
        return grant_type == JWT_BEARER_GRANT_TYPE

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope_to_list(scope) if s in self.scopes)


class _TokenRequest(OAuth2Request):
    def __init__(self, uri: str, headers: dict[str, str], form: dict[str, str]):
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self):
        return self._form

    @property
    def args(self):
        return {}


class _Grant(JWTBearerGrant):
    server: LocalAuthorizationServer

    def resolve_issuer_client(self, issuer):
        return self.server.clients.get(issuer)

    def resolve_client_public_key(self, client):
        return public_jwk(client.public_key)

    def authenticate_user(self, subject):
        return subject if subject in self.server.users else None

    def has_granted_permission(self, client, user):
        return True

    def get_audiences(self):
        return [self.server.token_url]


@dataclass
class Issued:
    access_token: str
    issuer: str
    subject: str | None
    scope: str


class LocalAuthorizationServer(AuthorizationServer):
    def __init__(self, *, users=("recruiter@acme.example",), scopes=("calendar", "mail"), expires_in=3600):
        super().__init__(scopes_supported=list(scopes))
        self.users = set(users)
        self.clients: dict[str, RegisteredClient] = {}
        self.expires_in = expires_in
        self.issued: list[Issued] = []
        self.token_requests: list[dict[str, str]] = []
        self.delay = 0.0  # seconds each token answer waits (concurrency tests)
        self._lock = threading.Lock()
        self.receiver = Receiver()
        self.receiver.responder = self._respond
        self.register_grant(_Grant)
        self.register_token_generator("default", self._generate_token)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> LocalAuthorizationServer:
        self.receiver.start()
        return self

    def stop(self) -> None:
        self.receiver.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def check_url(self) -> str:
        return f"{self.base_url}/me"

    def register(self, issuer: str, public_key: str, scopes: tuple[str, ...] = ("calendar", "mail")) -> None:
        self.clients[issuer] = RegisteredClient(issuer, public_key, scopes)

    # --- Authlib's hooks ------------------------------------------------------------

    def query_client(self, client_id):
        return self.clients.get(client_id)

    def save_token(self, token, request):
        with self._lock:
            self.issued.append(
                Issued(token["access_token"], request.client.issuer, request.user, token.get("scope", ""))
            )

    def create_oauth2_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        return Reply(status=status, body=json.dumps(body).encode(), headers=dict(headers), delay=self.delay)

    def send_signal(self, name, *args, **kwargs):
        pass

    def _generate_token(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        token = {"token_type": "Bearer", "access_token": secrets.token_urlsafe(24), "expires_in": self.expires_in}
        if scope:
            token["scope"] = scope
        return token

    # --- HTTP -----------------------------------------------------------------------

    def _respond(self, received: Received) -> Reply:
        path = urlsplit(received.path).path
        if path == "/me":
            token = received.headers.get("authorization", "").removeprefix("Bearer ")
            known = {issued.access_token: issued for issued in self.issued}
            if token in known:
                return Reply(
                    200, json.dumps({"sub": known[token].subject}).encode(), {"Content-Type": "application/json"}
                )
            return Reply(401, b'{"error": "invalid_token"}', {"Content-Type": "application/json"})
        if path != "/token":
            return Reply(404, b"not found")
        form = {key: values[0] for key, values in parse_qs(received.body.decode()).items()}
        self.token_requests.append(form)
        return self.create_token_response(_TokenRequest(self.token_url, received.headers, form))


def public_jwk(public_pem: str) -> RSAKey | ECKey:
    key = serialization.load_pem_public_key(public_pem.encode())
    return RSAKey.import_key(public_pem) if isinstance(key, rsa.RSAPublicKey) else ECKey.import_key(public_pem)


def decoded_claims(assertion: str, public_key: str) -> dict:
    """The assertion's claims, verified with `public_key` (joserfc, as the server does)."""
    from joserfc import jwt

    return dict(jwt.decode(assertion, public_jwk(public_key)).claims)
