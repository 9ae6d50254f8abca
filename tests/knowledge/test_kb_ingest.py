"""Which files may be read and how: allowed folders, symlinks, sizes, types, chunk metadata."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.knowledge.ingest import FAILED, SKIPPED, FileProblem, chunk_file, collect, read_file
from assistant.settings import Settings, load_settings


def reasons(problems: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {Path(p.path).name: p.reason for p in problems}


def test_folders_are_walked_and_every_skipped_path_gets_a_row(tmp_path: Path, settings: Settings) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".git").mkdir()
    (docs / "a.txt").write_text("a")
    (docs / "sub" / "b.MD").write_text("b")
    (docs / ".hidden.txt").write_text("h")
    (docs / ".git" / "c.txt").write_text("c")
    (docs / "image.png").write_bytes(b"\x89PNG")
    candidates, problems, ignored = collect([docs, docs / "a.txt"], settings)
    assert [c.source.name for c in candidates] == ["a.txt", "b.MD"]  # the duplicate named path is kept once
    assert candidates[1].suffix == ".md"
    assert [Path(p).name for p in ignored] == ["image.png"]
    assert all(p.status == SKIPPED for p in problems), problems
    got = reasons(problems)
    assert set(got) == {".git", ".hidden.txt", "image.png", "a.txt"}, got
    assert got[".git"] == "hidden folder: not walked (name it directly to ingest it)"
    assert got[".hidden.txt"] == "hidden file (name it directly to ingest it)"
    assert got["image.png"] == "unsupported file type .png"  # the supported types: in the CLI's hint
    assert got["a.txt"] == f"the same file as {docs / 'a.txt'}, already in this run"
    assert not any(p.failed for p in problems)


def test_a_folder_that_cannot_be_listed_is_a_failure(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    real_walk = os.walk

    def walk(top, topdown=True, onerror=None, followlinks=False):  # type: ignore[no-untyped-def]
        assert onerror is not None, "os.walk drops unreadable folders silently without onerror"
        onerror(PermissionError(13, "Permission denied", str(Path(top) / "locked")))
        yield from real_walk(top, topdown, onerror, followlinks)

    monkeypatch.setattr(os, "walk", walk)
    candidates, problems, _ = collect([docs], settings)
    assert candidates == [] and [p.status for p in problems] == [FAILED]
    assert (
        problems[0].path.endswith("locked")
        and "cannot list the folder: Permission denied" in problems[0].reason
    )


def test_paths_outside_the_allowed_roots_are_refused(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("secret")
    link = Path("link.txt")
    link.symlink_to(outside)  # a link inside the allowed folder does not make its target allowed
    candidates, problems, _ = collect([outside, link], settings)
    assert candidates == []
    assert all("outside the allowed folders" in p.reason for p in problems) and len(problems) == 2
    allowed = load_settings({"allowed_roots": os.pathsep.join([str(outside.parent), "/nonexistent"])})
    candidates, problems, _ = collect([outside], allowed)
    assert [c.source for c in candidates] == [outside.resolve()] and problems == []


def test_symlink_loop_and_missing_files(settings: Settings) -> None:
    Path("loop_a.txt").symlink_to("loop_b.txt")
    Path("loop_b.txt").symlink_to("loop_a.txt")
    Path("dangling.txt").symlink_to("nowhere.txt")
    candidates, problems, _ = collect(["loop_a.txt", "dangling.txt", "missing.txt"], settings)
    assert candidates == []
    got = reasons(problems)
    assert "symlink loop" in got["loop_a.txt"]
    assert "broken symlink" in got["dangling.txt"]
    assert got["missing.txt"] == "no such file or folder"


def test_a_symlinked_folder_loop_inside_a_walked_folder_is_not_followed(settings: Settings) -> None:
    Path("tree").mkdir()
    Path("tree/a.txt").write_text("a")
    Path("tree/again").symlink_to(Path("tree").resolve())
    Path("elsewhere").mkdir()
    Path("tree/linked").symlink_to(Path("elsewhere").resolve())
    candidates, problems, _ = collect(["tree"], settings)
    assert [c.source.name for c in candidates] == ["a.txt"]
    assert [p.status for p in problems] == [SKIPPED, SKIPPED]
    got = reasons(problems)
    assert got["again"] == f"symlink loop: points back to {Path('tree').resolve()}; not followed"
    assert got["linked"] == "symlinked folder: not followed (name it directly to ingest it)"


def test_named_file_of_unknown_type_fails(settings: Settings) -> None:
    Path("tool.exe").write_bytes(b"MZ")
    candidates, problems, _ = collect(["tool.exe"], settings)
    assert candidates == [] and "unsupported file type .exe" in problems[0].reason


def test_read_file_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(FileProblem, match=r"too large: 2.0 MB is over the max_file_mb limit of 2 MB"):
        read_file(big, 2)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(FileProblem, match="the file is empty"):
        read_file(empty, 2)
    with pytest.raises(FileProblem, match="not a regular file"):
        read_file(tmp_path, 2)
    assert read_file(big, 3) == b"x" * (2 * 1024 * 1024 + 1)


def test_chunk_metadata_pages_numbers_and_hashes(pdf_bytes: Callable[[list[str]], bytes]) -> None:
    chunks, pages = chunk_file(
        pdf_bytes(["Apples are red.", "Pears are green.", "Apples are red."]), ".pdf", 200, 20
    )
    assert pages == 3
    # The third page repeats the first: identical chunks are kept once.
    assert [(c.number, c.page, c.text) for c in chunks] == [
        (0, 1, "Apples are red."),
        (1, 2, "Pears are green."),
    ]
    assert len({c.content_hash for c in chunks}) == 2 and all(len(c.content_hash) == 16 for c in chunks)


def test_whitespace_only_file_has_no_text() -> None:
    with pytest.raises(FileProblem, match="no text found"):
        chunk_file(b" \n\t\n ", ".txt", 100, 10)
