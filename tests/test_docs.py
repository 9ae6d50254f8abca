"""The documentation stays true to the tree: every relative link in README.md, CHANGELOG.md and
docs/ resolves (a ``#anchor`` into a Markdown file to one of its headings, slugged as GitHub
does), every repository path or module the README and docs name exists, and the README opens
with the two setup commands."""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))
LINKED_FILES = [README, ROOT / "CHANGELOG.md", *DOC_PAGES]

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target), with an optional "title"; <target> may hold spaces.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")

# Paths and modules of the code, as the docs name them in prose or in commands.
TOP_FOLDERS = "assistant|evaluation|finetune|ui|tests|benchmarks|datasets"
PATH_TOKEN = re.compile(rf"(?<![\w./-])(?:{TOP_FOLDERS})/[\w./-]*")
MODULE_TOKEN = re.compile(r"(?<![\w./-])(?:assistant|evaluation|finetune|ui)(?:\.[A-Za-z_]\w*)+")
# A dotted name ending in one of these is a file (a link to evaluation.md), not a module.
FILE_SUFFIXES = {"md", "py", "yaml", "yml", "json", "jsonl", "csv", "txt", "toml", "html"}


def text_lines(path: Path, keep_code: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks; inline code spans blanked out unless
    ``keep_code`` (headings render their code as text)."""
    fence = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1) == fence:
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        yield number, line if keep_code else INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


def links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in text_lines(path):
        for pattern in (INLINE_LINK, REFERENCE_LINK):
            for match in pattern.finditer(line):
                yield number, match.group(1).strip("<>")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text (links, code and emphasis marks
    dropped) lower-cased, every character but letters, marks, digits, ``_``, ``-`` and spaces
    removed, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    kept = (ch for ch in text.lower() if ch in "_- " or unicodedata.category(ch)[0] in "LMN")
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    for _, line in text_lines(path, keep_code=True):
        match = ATX_HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, target in links(path):
        if SCHEME.match(target):
            continue  # a web address: not checked offline
        file_part, _, anchor = target.partition("#")
        where = f"{path.relative_to(root)}:{number}: {target}"
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
        elif not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {linked.relative_to(root)}")
    return problems


def generated_folders(root: Path) -> list[str]:
    """Output folders that .gitignore names (``tests/ui/screenshots/``): the docs may name them,
    but a fresh clone has them only after a run."""
    lines = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [line for line in map(str.strip, lines) if line.endswith("/") and "/" in line[:-1]]


def module_exists(dotted: str, root: Path = ROOT) -> bool:
    """``a.b.c`` names a module or package, or an attribute of one at least two levels deep
    (``assistant.service.build_strategy``)."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        base = root.joinpath(*parts[:end])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def missing_code_names(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    generated = generated_folders(root)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.relative_to(root)}:{number}"
        for token in PATH_TOKEN.findall(line):
            token = token.rstrip(".")
            if not (root / token).exists() and not any(token.startswith(folder) for folder in generated):
                problems.append(f"{where}: no such path: {token}")
        for token in MODULE_TOKEN.findall(line):
            if token.rpartition(".")[2] not in FILE_SUFFIXES and not module_exists(token, root):
                problems.append(f"{where}: no such module: {token}")
    return problems


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


# The changelog is left out: it names files as they were before a change.
@pytest.mark.parametrize("path", [README, *DOC_PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_and_module_the_docs_name_exists(path: Path) -> None:
    problems = missing_code_names(path)
    assert not problems, "\n".join(problems)


def test_the_readme_opens_with_the_two_setup_commands() -> None:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    assert FENCE.match(lines[1]), "the first thing after the title is a code block"
    end = next(i for i in range(2, len(lines)) if FENCE.match(lines[i]))
    commands = [line.split("#", 1)[0].strip() for line in lines[2:end]]
    assert commands == ["make demo", "make test"]


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in links(README)}
    assert [str(page.relative_to(ROOT)) for page in DOC_PAGES if page not in linked] == []


def test_github_slugs() -> None:
    assert github_slug("The demo: `ladder demo`") == "the-demo-ladder-demo"
    assert github_slug("Serving (OpenAI-compatible API)") == "serving-openai-compatible-api"
    assert github_slug("Add a `server_models` file") == "add-a-server_models-file"
    assert github_slug("[Linked](x.md) **bold** heading") == "linked-bold-heading"
    assert github_slug("决策：阶梯 1.0") == "决策阶梯-10"


def test_the_checks_report_what_is_broken(tmp_path: Path) -> None:
    """In a small tree: a missing file, a missing anchor, a link out of the tree, a missing path
    and a stale module are reported; web links, code and good names are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "ui" / "cli").mkdir(parents=True)
    for name in ("ui/__init__.py", "ui/cli/__init__.py", "ui/cli/app.py"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / ".gitignore").write_text(".venv/\ntests/ui/screenshots/\n", encoding="utf-8")
    shutil.copy(ROOT / "docs" / "architecture.md", tmp_path / "docs" / "architecture.md")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n## Twice\n\n## Twice\n\n"
        "[gone](nowhere.md) [anchor](architecture.md#no-such-heading) [ok](architecture.md#one-code-path)\n"
        "[out](../../elsewhere.md) [web](https://example.com/x.md) `[code](not-a-link.md)` [self](#twice-1)\n"
        "```\n[fenced](not-a-link-either.md)\n```\n"
        "See `ui/cli/kb.py` and ui.cli_kb; `ui/cli/app.py`, ui.cli.app.main and\n"
        "tests/ui/screenshots/x.png are fine.\n",
        encoding="utf-8",
    )
    assert [problem.split(": ", 2)[-1] for problem in broken_links(page, tmp_path)] == [
        "no such file",
        "no heading with the anchor #no-such-heading in docs/architecture.md",
        "points outside the repository",
    ]
    assert [problem.split(": ", 1)[1] for problem in missing_code_names(page, tmp_path)] == [
        "no such path: ui/cli/kb.py",
        "no such module: ui.cli_kb",
    ]
