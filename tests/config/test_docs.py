"""README and docs/ hold together: every relative link resolves, to a file of the repository and
to a heading of it when it names one, and nothing in the repository points to documents outside
it (a clone has only what is in it)."""

import re
from pathlib import Path

import pytest

from tests.support import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...

# Places outside the repository that documents, code and comments once pointed to.
OUTSIDE_REFERENCES = re.compile(r"\.\./shared|/work/shared|\bAPI\.md\b|\bARCHITECTURE\.md\b")
SCANNED_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini", ".html"}
SCANNED_NAMES = {"Makefile", "Dockerfile", ".dockerignore"}
SKIPPED_DIRECTORIES = {".venv", ".data", ".git", "staticfiles", "node_modules", "__pycache__"}


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans, where links are links."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", markdown))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", path.read_text())):
        name = base = anchor(heading)
        suffix = 0
        while name in found:  # repeated headings get -1, -2, ...
            suffix += 1
            name = f"{base}-{suffix}"
        found.add(name)
    return found


def relative_links(document: Path) -> list[str]:
    return [
        target for target in LINK.findall(prose(document.read_text())) if not EXTERNAL.match(target)
    ]


def link_problem(document: Path, target: str) -> str | None:
    """Why a relative link of ``document`` does not resolve, or None when it does."""
    path_part, _, fragment = target.partition("#")
    linked = (document.parent / path_part).resolve() if path_part else document
    if not linked.is_relative_to(ROOT):
        return "points outside the repository"
    name = linked.relative_to(ROOT).as_posix()
    if not linked.exists():
        return f"{name} does not exist"
    if fragment and fragment not in anchors(linked):
        return f"{name} has no heading #{fragment}"
    return None


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(document):
    problems = [
        f"{target}: {problem}"
        for target in relative_links(document)
        if (problem := link_problem(document, target))
    ]

    assert problems == []


def test_readme_leads_into_each_document():
    linked = {
        (ROOT / target.partition("#")[0]).resolve() for target in relative_links(ROOT / "README.md")
    }
    for document in ("docs/api.md", "docs/operations.md", "docs/security.md", "docs/benchmarks.md"):
        assert (ROOT / document).resolve() in linked, document


def test_the_link_checker_finds_broken_links():
    document = ROOT / "docs" / "api.md"

    assert link_problem(document, "operations.md#configuration") is None
    assert link_problem(document, "#errors") is None
    assert link_problem(document, "operations.md#no-such-heading") is not None
    assert link_problem(document, "no-such-file.md") is not None
    assert link_problem(document, "../../outside.md") is not None
    assert anchor("Local database and `make stop`") == "local-database-and-make-stop"


def scanned_files():
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRECTORIES for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in SCANNED_SUFFIXES or path.name in SCANNED_NAMES:
            yield path


def test_nothing_points_to_documents_outside_the_repository():
    this_file = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in scanned_files()
        if path.resolve() != this_file  # it names what it looks for
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]

    assert offenders == []
