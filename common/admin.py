"""Small pieces shared by the apps' admin pages."""

from django.utils.html import format_html

GREY = "#57606a"


def colour_badge(text: str, colour: str = GREY):
    """A coloured pill, e.g. for a status in a changelist."""
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px;'
        'white-space:nowrap">{}</span>',
        colour,
        text,
    )
