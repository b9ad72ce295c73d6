"""Validation of an integration's provider, auth type, config and credentials.

Errors are collected per field (`{"config": {"tenant": ["..."]}}`) and raised as one
`IntegrationInvalid` (400 with field errors in the API, form errors in the admin).
Messages never contain credential values.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from common.exceptions import ApplicationError
from common.limits import MAX_CONFIG_LIST_ITEMS, MAX_CONFIG_OBJECT_CHARS
from common.ssrf import validate_public_url
from common.text import quoted

from . import app_settings, providers, saml
from .grants import saml_bearer
from .grants.jwt_keys import jwt_config_errors, jwt_credential_errors, normalized_credentials
from .providers import ConfigField, Provider
from .providers.hosts import shared_app_refusal

MAX_CREDENTIAL_KEYS = 50
MAX_CREDENTIAL_VALUE_LENGTH = 20_000
#: keys the OAuth flow writes; a client replacing credentials keeps them (see services)
OAUTH_TOKEN_KEYS = ("access_token", "refresh_token", "token_type", "scope", "id_token")


class IntegrationInvalid(ApplicationError):
    error_type = "validation_error"

    def __init__(self, errors: dict[str, Any]):
        super().__init__("Invalid integration.", errors=errors)


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _check_value(spec: ConfigField, value: Any) -> str | None:
    if spec.kind == providers.RATE_LIMIT:
        try:
            providers.parse_rate_limits(value)
        except ValueError as error:
            return str(error)
        return None
    limit = spec.length_limit
    if spec.kind == providers.BOOL:
        return None if isinstance(value, bool) else "Must be true or false."
    if spec.kind == providers.OBJECT:
        if not isinstance(value, dict):
            return "Must be a JSON object."
        if len(json.dumps(value, separators=(",", ":"), default=str)) > MAX_CONFIG_OBJECT_CHARS:
            return f"At most {MAX_CONFIG_OBJECT_CHARS} characters as JSON."
        return None
    if spec.kind == providers.INT:
        return None if type(value) is int and value > 0 else "Must be a positive integer."
    if spec.kind == providers.LIST:
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            return "Must be a list of non-empty strings."
        if len(value) > MAX_CONFIG_LIST_ITEMS:
            return f"At most {MAX_CONFIG_LIST_ITEMS} items."
        if limit and any(len(item) > limit for item in value):
            return f"Each item at most {limit} characters."
        return None
    if not isinstance(value, str) or not value.strip():
        return "Must be a non-empty string."
    if limit and len(value) > limit:
        return f"At most {limit} characters."
    if spec.kind == providers.URL and not _is_url(value):
        return "Must be an http(s) URL."
    if spec.choices and value not in spec.choices:
        return f"Must be one of: {', '.join(spec.choices)}."
    if spec.kind == providers.STR and any(char in value for char in "/?#@ ") and spec.name != "client_id":
        # Values interpolated into endpoint URLs (tenant, domains) must not change the URL's shape.
        return "Must not contain '/', '?', '#', '@' or spaces."
    return None


def validate_provider_and_auth_type(provider_name: Any, auth_type: Any) -> Provider:
    provider = providers.get_provider(provider_name) if isinstance(provider_name, str) else None
    if provider is None:
        raise IntegrationInvalid({"provider": [f"Unknown provider {quoted(provider_name)}."]})
    if auth_type not in provider.auth_types:
        raise IntegrationInvalid(
            {"auth_type": [f"{provider.name} supports: {', '.join(provider.auth_types)}; not {quoted(auth_type)}."]}
        )
    return provider


def validate_config(provider: Provider, auth_type: str, config: Any, *, endpoints: bool = True) -> dict[str, Any]:
    """The config with defaults applied; raises IntegrationInvalid on unknown/missing/bad keys.
    `endpoints=False` skips the endpoint addresses check (DNS; connect time checks them too)."""
    if not isinstance(config, dict):
        raise IntegrationInvalid({"config": ["Must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    specs = {spec.name: spec for spec in provider.all_config_fields()}
    for key in config:
        if key not in specs:
            allowed = ", ".join(specs) or "none"
            errors[key] = [f"Unknown key for {provider.name} (allowed: {allowed})."]
    cleaned: dict[str, Any] = {}
    for name, spec in specs.items():
        value = config.get(name)
        if value is None:
            if auth_type in spec.required_for:
                errors[name] = [f"Required for {provider.name} with {auth_type}."]
            elif spec.default is not None:
                cleaned[name] = spec.default
            continue
        problem = _check_value(spec, value)
        if problem:
            errors[name] = [problem]
        else:
            cleaned[name] = value.strip() if isinstance(value, str) else value
    if not errors and endpoints:
        errors = _endpoint_errors(provider, cleaned)
    if not errors and auth_type == providers.SAML:
        errors = saml.config_errors(cleaned)
    if not errors:
        refusal = shared_app_refusal(provider, auth_type, cleaned)
        if refusal:
            errors = {"client_id": [refusal]}
    if not errors and auth_type == providers.JWT:
        errors = jwt_config_errors(provider, cleaned, allow_private=app_settings.allow_private_urls())
    if errors:
        raise IntegrationInvalid({"config": errors})
    return cleaned


def stored_config_errors(provider_name: Any, auth_type: Any, config: Any) -> dict[str, Any]:
    """Why a stored provider, auth type and config would be refused if saved today (`{}`
    when they validate): a key the catalogue no longer has, a value no longer accepted.
    Without network access (endpoint addresses are checked again at connect time)."""
    try:
        provider = validate_provider_and_auth_type(provider_name, auth_type)
        validate_config(provider, auth_type, config, endpoints=False)
    except IntegrationInvalid as error:
        return error.errors
    return {}


def describe_errors(errors: dict[str, Any], prefix: str = "") -> str:
    """Field errors as one line: `config.tenant: Required ...; auth_type: ...`."""
    parts = []
    for name, problems in errors.items():
        if isinstance(problems, dict):
            parts.append(describe_errors(problems, f"{prefix}{name}."))
        else:
            parts.append(f"{prefix}{name}: {' '.join(map(str, problems))}")
    return "; ".join(parts)


def endpoint_templates(provider: Provider) -> list[str]:
    """The provider's endpoint URLs that the config fills in (`{token_domain}`, `{token_url}`...)."""
    return [template for template in provider.endpoint_templates() if _placeholders(template)]


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _endpoint_errors(provider: Provider, config: dict[str, Any]) -> dict[str, list[str]]:
    """SSRF protection: every endpoint this integration makes us fetch must be public.

    The catalogue's fixed URLs are trusted; a URL the config supplies (custom `token_url`,
    `health_check_url`) or shapes (Workday `token_domain`, DocuSign `account_domain`) is
    checked like a webhook target, unless `ALLOW_PRIVATE_URLS` is true; it must also be
    https unless `ALLOW_PRIVATE_URLS` is true.
    """
    errors: dict[str, list[str]] = {}
    allow_private = app_settings.allow_private_urls()
    for template in endpoint_templates(provider):
        names = _placeholders(template)
        if not all(isinstance(config.get(name), str) for name in names):
            continue  # not configured (optional, or required only for another auth type)
        url = template.format_map({name: config[name] for name in names})
        try:
            validate_public_url(url, allow_private=allow_private)
        except ValidationError as error:
            errors.setdefault(names[0], error.messages)
            continue
        # Tokens, codes, client secrets and API keys travel to these endpoints: never in clear
        # text, except to a local service in development (ALLOW_PRIVATE_URLS).
        if not allow_private and url.lower().startswith("http://"):
            errors.setdefault(names[0], ["The URL must be https:// (credentials are sent to it)."])
    return errors


def validate_credentials(provider: Provider, auth_type: str, credentials: Any, *, config: dict) -> dict[str, str]:
    """Credentials must be a flat object of strings, with what the auth type needs."""
    if not isinstance(credentials, dict):
        raise IntegrationInvalid({"credentials": ["Must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    if len(credentials) > MAX_CREDENTIAL_KEYS:
        raise IntegrationInvalid({"credentials": [f"At most {MAX_CREDENTIAL_KEYS} keys."]})
    if auth_type == providers.JWT:  # a service-account JSON key may come as the object
        credentials = normalized_credentials(provider, credentials)
    for key, value in credentials.items():
        if not isinstance(value, str):
            errors[key] = ["Must be a string."]
        elif len(value) > MAX_CREDENTIAL_VALUE_LENGTH:
            errors[key] = [f"At most {MAX_CREDENTIAL_VALUE_LENGTH} characters."]
    present = {key for key, value in credentials.items() if isinstance(value, str) and value.strip()}

    def need(*keys: str) -> None:
        for key in keys:
            if key not in present and key not in errors:
                errors[key] = [f"Required for {auth_type} integrations."]

    if auth_type == providers.API_KEY:
        need(*provider.api_key_credentials)
        alternatives = provider.api_key_alternatives
        if alternatives and not present & set(alternatives):
            errors[alternatives[0]] = [f"Provide {' or '.join(f'`{key}`' for key in alternatives)}."]
    elif auth_type == providers.JWT:
        if not errors:  # the keys are read only from well-formed values
            allow_private = app_settings.allow_private_urls()
            errors.update(jwt_credential_errors(provider, credentials, config=config, allow_private=allow_private))
    elif auth_type == providers.SAML:  # the metadata is config; older integrations keep it here
        missing = saml.metadata_missing(config, credentials)
        if missing:
            raise IntegrationInvalid({"config": {"idp_metadata_url": [missing]}})
        if "idp_metadata_url" in present and not _is_url(credentials["idp_metadata_url"]):
            errors["idp_metadata_url"] = ["Must be an http(s) URL."]
        if saml.bearer_configured(config):
            for key, problem in saml_bearer.key_pair_errors(credentials).items():
                errors.setdefault(key, problem)
    elif auth_type == providers.OAUTH2 and provider.has_shared_oauth_app and config.get("client_id"):
        # The integration brings its own app instead of the deployment's: it needs that app's
        # secret. (Without a shared app, a public PKCE client may have none.)
        need("client_secret")
    if errors:
        raise IntegrationInvalid({"credentials": errors})
    return dict(credentials)


def credentials_complete(auth_type: str, credentials: dict[str, str]) -> bool:
    """Whether the integration can be used as is (OAuth needs an authorization first)."""
    if auth_type == providers.OAUTH2:
        return bool(credentials.get("access_token"))
    return True
