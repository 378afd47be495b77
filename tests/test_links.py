"""Every relative link of the READMEs, CONTRIBUTING.md and CHANGELOG.md reaches a file
(and, for a Markdown page, its anchor). The docs site's own links are checked by
`mkdocs build --strict` (validation settings in mkdocs.yml)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "CHANGELOG.md",
    *sorted(ROOT.glob("packages/*/README.md")),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
EXPLICIT_ID = re.compile(r"\{\s*#([\w-]+)\s*\}\s*$")


def outside_fences(text: str) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(title: str) -> str:
    """Python-Markdown's toc slug, as mkdocs builds heading anchors."""
    value = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def anchors(page: Path) -> set[str]:
    found = set()
    for line in outside_fences(page.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        explicit = EXPLICIT_ID.search(heading.group(1))
        found.add(explicit.group(1) if explicit else slug(heading.group(1)))
    return found


def relative_links(page: Path) -> list[str]:
    return [
        target
        for line in outside_fences(page.read_text(encoding="utf-8"))
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page):
    links = relative_links(page)
    assert links or page.name == "CHANGELOG.md", f"{page} links nowhere"
    for link in links:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.relative_to(ROOT)}: {link} does not exist"
        assert ROOT in target.parents or target == ROOT, f"{link} points outside the repository"
        if anchor:
            assert target.suffix == ".md", f"{link}: an anchor into a file that is not Markdown"
            assert anchor in anchors(target), f"{page.relative_to(ROOT)}: {link} has no such anchor"


def test_slugs_follow_mkdocs():
    assert slug("Expiry on S3") == "expiry-on-s3"
    assert slug("Chords without polling") == "chords-without-polling"
    assert slug("The `s3` preset: what it sets") == "the-s3-preset-what-it-sets"
