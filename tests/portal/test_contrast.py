"""The portal's colours meet WCAG 2.1 AA contrast (4.5:1 for text) in every pairing its
stylesheet uses: text on the page, links, status words, and white text on buttons and
health dots."""

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "portal" / "static" / "portal" / "portal.css").read_text()


def _variables() -> dict[str, str]:
    return dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{3,6})", CSS))


def _luminance(colour: str) -> float:
    hex_digits = colour.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(d * 2 for d in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_ratio_is_computed_as_wcag_defines_it():
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777", "#fff") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey


def _pairs() -> list[tuple[str, str, str]]:
    v = _variables()
    pairs = [(f"--{name} text on the page", v[name], v["bg"]) for name in ("fg", "muted", "accent", "ok", "bad")]
    pairs.append(("white on buttons (--accent)", "#fff", v["accent"]))
    for state, background in re.findall(r"\.dot\.(\w+)\s*\{\s*background:\s*([^;]+);", CSS):
        background = background.strip()
        colour = v[background[6:-1]] if background.startswith("var(--") else background
        pairs.append((f"white on the {state} dot", "#fff", colour))
    for name, background in re.findall(r"\.(error|notice)\s*\{[^}]*background:\s*(#[0-9a-fA-F]{3,6})", CSS):
        pairs.append((f"text on .{name}", v["fg"], background))
    return pairs


def test_every_colour_pairing_meets_aa():
    pairs = _pairs()
    assert len(pairs) >= 10  # the stylesheet's pairings were found
    failing = [(what, round(contrast(fg, bg), 2)) for what, fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert failing == []
