"""Paths under an API base URL, and query strings fit for the call log.

A caller names a path *relative to the provider's API base*; it can never name another
host or climb out of the base. Refused (`PathRefused`): a scheme or `//host`, backslashes,
control characters (CR/LF header injection), `?`/`#` (the query goes in `params=`), and
`.`/`..` segments, also when percent-encoded once or several times (`%2e%2e`,
`%252e%252e`, `..%2f`). Links the provider itself sends (next pages) are followed only on
the base's own scheme, host and port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import PathRefused

SECRET_PARAMS = frozenset(
    {"access_token", "key", "api_key", "apikey", "token", "signature", "sig", "code", "client_secret", "password"}
)
MASK = "***"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_SAFE = "/:@!$&'()*+,;=-._~%"


def _decoded_forms(path: str) -> Iterable[str]:
    seen = path
    for _ in range(4):  # enough for any sane double encoding; more is refused below
        yield seen
        decoded = unquote(seen)
        if decoded == seen:
            return
        seen = decoded
    raise PathRefused("The path is encoded too many times.")


def check_relative_path(path: Any) -> str:
    """`path` without its leading slash, if it is a safe relative path; else PathRefused."""
    if not isinstance(path, str):
        raise PathRefused("The path must be a string.")
    for form in _decoded_forms(path):
        if _CONTROL.search(form):
            raise PathRefused("The path may not contain control characters.")
        if "\\" in form:
            raise PathRefused("The path may not contain backslashes.")
        if "?" in form or "#" in form:
            raise PathRefused("Pass query parameters separately (params=), not in the path.")
        if form.startswith("//") or "://" in form or urlsplit(form).scheme:
            raise PathRefused("The path must be relative to the provider's API base URL, not a URL.")
        if any(segment in {".", ".."} for segment in form.split("/")):
            raise PathRefused("The path may not contain '.' or '..' segments.")
    return path.lstrip("/")


def fill_path(path: str, values: Mapping[str, str]) -> str:
    """Fill `{name}` placeholders the provider allows (`Provider.path_params`) with
    URL-quoted values; an unknown or unset placeholder is refused."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values or not values[name]:
            raise PathRefused(f"The path names {{{name}}}, which this integration does not define.")
        return quote(str(values[name]), safe="")

    return _PLACEHOLDER.sub(value, path)


def join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + quote(path, safe=_SAFE)


def same_origin(url: str, base: str) -> bool:
    """A link the provider sent may be followed: same scheme, host and port as the base."""
    try:
        link, root = urlsplit(url), urlsplit(base)
        return (
            link.scheme == root.scheme
            and (link.hostname or "") == (root.hostname or "")
            and link.port == root.port
            and link.username is None
            and link.password is None
            and not _CONTROL.search(url)
        )
    except ValueError:
        return False


def masked_query(params: Any) -> str:
    """A query string for the log, with secret-named parameters masked."""
    if not params:
        return ""
    items = params.items() if isinstance(params, Mapping) else params
    pairs = []
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        for one in values:
            pairs.append((name, MASK if str(name).lower() in SECRET_PARAMS else one))
    return urlencode(pairs, doseq=False)


def loggable_path(path: str, params: Any = None) -> str:
    """The path and its (masked) query as the call log keeps it."""
    parts = urlsplit(path)
    query = masked_query(params)
    if parts.query:
        own = masked_query(parse_qsl(parts.query, keep_blank_values=True))
        query = "&".join(q for q in (own, query) if q)
    return parts.path + (f"?{query}" if query else "")
