"""Bounds every API input shares (docs/API.md "Limits"): one number per kind of value."""

from __future__ import annotations

#: the longest URL any field accepts: webhook `url`, config URLs (`health_check_url`,
#: `token_url`, `redirect_uri`...), OAuth redirect URIs
MAX_URL_LENGTH = 2048
#: a config string (`str` and `text` kinds) unless its catalogue entry says otherwise
MAX_CONFIG_STRING_LENGTH = 2048
#: items of a config list (`scopes`), each at most `MAX_CONFIG_STRING_LENGTH`
MAX_CONFIG_LIST_ITEMS = 100
#: a config object (`extra_claims`), as compact JSON
MAX_CONFIG_OBJECT_CHARS = 10_000
