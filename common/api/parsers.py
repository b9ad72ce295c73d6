"""The API's JSON parser: DRF's, plus a refusal of text no database can store.

JSON may spell a NUL character (`\\u0000`) or a lone UTF-16 surrogate (`\\ud800`) in any
string, keys included. PostgreSQL refuses both in text and jsonb columns, so they used to
surface as 500s (SQLite stored them silently). Refusing them while parsing gives one clear
400 on every endpoint and every database, whatever field they hide in.
"""

from __future__ import annotations

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _has_unstorable_text(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_unstorable_text(data):
            raise ParseError("JSON parse error - strings must not contain NUL characters or lone surrogates.")
        return data
