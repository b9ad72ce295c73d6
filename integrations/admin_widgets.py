"""Widgets of the integration admin form: config hints from the catalogue, a write-only
credentials textarea, and how validation errors become form messages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from . import providers
from .providers import Provider

HINTS_ID = "config-hints"


def _describe_default(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def provider_config_hint(provider: Provider, *, visible: bool = False) -> SafeString:
    """The provider's config keys as a small table: name, kind, required for, default, help."""
    fields = provider.all_config_fields()
    if not fields:
        body = format_html("<p>{} takes no config keys: leave <code>{{}}</code>.</p>", provider.display_name)
    else:
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    field.name,
                    field.kind + (f" ({' | '.join(field.choices)})" if field.choices else ""),
                    ", ".join(field.required_for) or "optional",
                    _describe_default(field.default),
                    field.help,
                )
                for field in fields
            ),
        )
        body = format_html(
            '<table style="width:100%"><thead><tr><th>Key</th><th>Kind</th><th>Required for</th>'
            "<th>Default</th><th>Help</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
    return format_html(
        '<div data-provider="{}"{}><p><strong>{} config keys</strong> (auth types: {})</p>{}</div>',
        provider.name,
        "" if visible else " hidden",
        provider.display_name,
        ", ".join(provider.auth_types),
        body,
    )


def config_hints(current: str = "") -> SafeString:
    """Every provider's hint, the `current` one visible (`config_hints.js` follows the select)."""
    hints = format_html_join(
        "",
        "{}",
        ((provider_config_hint(p, visible=p.name == current),) for p in providers.provider_list()),
    )
    return format_html(
        '<div id="{}" class="help" style="margin-left:0;padding-left:0" data-current="{}">'
        '<p data-provider=""{}>Choose a provider to see its config keys.</p>{}</div>',
        HINTS_ID,
        current,
        " hidden" if current else "",
        hints,
    )


class ConfigTextarea(forms.Textarea):
    """The config JSON, with the chosen provider's keys listed below it."""

    class Media:
        js = ["integrations/config_hints.js"]

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(attrs={"rows": 6, "cols": 80, "spellcheck": "false", **(attrs or {})})
        self.current_provider = ""

    def render(self, name, value, attrs=None, renderer=None):
        rendered = super().render(name, value, attrs, renderer)
        return format_html(
            '<div style="display:block;max-width:960px">{}{}</div>',
            rendered,
            config_hints(self.current_provider),
        )


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: not the stored one, not what was submitted."""

    def format_value(self, value):
        return None


def error_messages(problems: Any, path: tuple[str, ...] = ()) -> list[str]:
    """`{"tenant": ["Required ..."]}` or `["..."]` as readable lines ("tenant: Required ...")."""
    if isinstance(problems, dict):
        return [line for key, value in problems.items() for line in error_messages(value, (*path, str(key)))]
    if isinstance(problems, (list, tuple)):
        return [line for item in problems for line in error_messages(item, path)]
    return [f"{'.'.join(path)}: {problems}" if path else str(problems)]
