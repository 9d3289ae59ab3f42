"""The contract is in the repository: every "see feeds.md" in the code names a file of docs/spec/
(or a document of the repository), and every relative link of the repository's Markdown resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec"
CODE = [ROOT / "ecredit", ROOT / "dags", ROOT / "jobs", ROOT / "bench", ROOT / "rules", ROOT / "sql"]
NAMED = re.compile(r"(?<![\w/.-])([A-Za-z][\w-]*\.md)\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def resolves(name: str) -> bool:
    return any((where / name).is_file() for where in (SPEC, ROOT, ROOT / "docs"))


def code_files():
    for folder in CODE:
        for p in folder.rglob("*"):
            if p.is_file() and p.suffix in {".py", ".yaml", ".sql"} and "__pycache__" not in p.parts:
                yield p


def test_every_document_the_code_names_is_in_the_repository():
    named = {}
    for p in code_files():
        for name in NAMED.findall(p.read_text("utf-8")):
            named.setdefault(name, p.relative_to(ROOT))
    assert {"feeds.md", "quality.md", "scoring.md", "warehouse.md"} <= set(named)
    missing = {name: str(where) for name, where in named.items() if not resolves(name)}
    assert not missing, missing


def test_the_spec_is_the_projects_copy():
    for name in ("feeds.md", "quality.md", "scoring.md", "lifecycle.md", "warehouse.md", "operations.md"):
        assert (SPEC / name).is_file(), name


def test_every_relative_link_of_the_markdown_resolves():
    broken, checked = [], 0
    for md in [*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md"), *(ROOT / "tests").rglob("*.md")]:
        if "landing" in md.parts:
            continue
        for target in LINK.findall(md.read_text("utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            checked += 1
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert checked > 100, checked  # the decisions index alone links about a hundred files
    assert not broken, broken


PATH = re.compile(
    r"(?<![\w/.-])((?:ecredit|tests|bench|jobs|dags|sql|rules|expectations|docs)/[\w./-]+\.(?:py|md|yaml|sql|json))"
)
LIVING = [
    "README.md",
    "CONTRIBUTING.md",
    "SECURITY.md",
    "BENCHMARKS.md",
    "docs/operations-guide.md",
    "docs/architecture.md",
    "docs/for-departments.md",
    "docs/gx-on-spark.md",
]


def test_every_file_path_the_guides_name_exists():
    """The guides name files by their path (decisions are dated records and may name a file that
    has since moved: they are left out)."""
    missing, named = [], 0
    for doc in LIVING:
        for path in PATH.findall((ROOT / doc).read_text("utf-8")):
            named += 1
            if not (ROOT / path).exists():
                missing.append(f"{doc}: {path}")
    assert named > 50, named
    assert not missing, missing


def test_a_missing_document_would_be_seen():
    assert not resolves("no-such-contract.md")
    assert resolves("feeds.md")
