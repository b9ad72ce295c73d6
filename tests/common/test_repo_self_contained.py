"""The repository explains itself: no file refers to a document outside it, and every
relative markdown link in the docs points at a file that exists (CONTRIBUTING.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Written in pieces so this file does not match its own patterns.
OUTSIDE_REFERENCES = re.compile(
    "|".join(
        [
            re.escape("../" + "shared"),
            re.escape("SPEC" + ".md"),
            re.escape("QUEUE" + "_NOTES"),
            re.escape("STYLE" + ".md"),
            r"\bSPEC" + " §",
        ]
    )
)
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def repo_files(root: Path) -> list[Path]:
    """Tracked files plus new, not ignored ones; a plain walk when git is not available."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        paths = [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        paths = [path for path in root.rglob("*") if not SKIPPED_DIRS.intersection(path.relative_to(root).parts[:-1])]
    return sorted(path for path in paths if path.is_file() and not path.is_symlink())


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_references(root: Path) -> list[str]:
    found = []
    for path in repo_files(root):
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            match = OUTSIDE_REFERENCES.search(line)
            if match:
                found.append(f"{path.relative_to(root)}:{number}: {match.group(0)!r}")
    return found


def markdown_documents(root: Path) -> list[Path]:
    documents = [root / "README.md", root / "CONTRIBUTING.md", *sorted((root / "docs").glob("*.md"))]
    return [document for document in documents if document.is_file()]


def broken_links(root: Path, documents: list[Path]) -> list[str]:
    broken = []
    for document in documents:
        text = FENCE.sub("", document.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # a URL (http:, mailto:) or an anchor in the same page
            relative = target.split("#", 1)[0]
            resolved = (document.parent / relative).resolve()
            if not resolved.is_relative_to(root) or not resolved.exists():
                broken.append(f"{document.relative_to(root)}: ({target})")
    return broken


def test_no_file_refers_to_a_document_outside_the_repo():
    assert outside_references(ROOT) == []


def test_every_relative_markdown_link_in_the_docs_points_at_an_existing_file():
    documents = markdown_documents(ROOT)
    assert {"README.md", "CONTRIBUTING.md", "docs/API.md", "docs/ARCHITECTURE.md"} <= {
        str(document.relative_to(ROOT)) for document in documents
    }
    assert broken_links(ROOT, documents) == []


# --- the checks themselves catch what they are for ---------------------------------------


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "API.md").write_text("# API\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "line",
    [
        "see ../" + "shared/notes.md",
        "the contract is SPEC" + ".md",
        "as QUEUE" + "_NOTES says",
        "house style: STYLE" + ".md",
        "retries (SPEC" + " §4)",
    ],
)
def test_outside_references_are_found(sample_repo: Path, line: str):
    (sample_repo / "module.py").write_text(f'"""Docstring."""\n# {line}\n', encoding="utf-8")

    assert outside_references(sample_repo) == [f"module.py:2: {OUTSIDE_REFERENCES.search(line).group(0)!r}"]


def test_references_inside_the_repo_are_allowed(sample_repo: Path):
    (sample_repo / "module.py").write_text("# retries (docs/API.md §4), docs/QUEUE.md\n", encoding="utf-8")

    assert outside_references(sample_repo) == []


def test_broken_and_escaping_links_are_found_and_good_ones_pass(sample_repo: Path):
    readme = sample_repo / "README.md"
    readme.write_text(
        "[api](docs/API.md) [anchor](docs/API.md#3-rest-api) [web](https://example.com) [top](#x)\n"
        "[gone](docs/GONE.md) [outside](../elsewhere/README.md)\n"
        "```\n[in a code block](docs/NOT_A_LINK.md)\n```\n",
        encoding="utf-8",
    )

    assert broken_links(sample_repo, [readme]) == [
        "README.md: (docs/GONE.md)",
        "README.md: (../elsewhere/README.md)",
    ]
