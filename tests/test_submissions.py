"""Finding submissions: layouts, zips, and everything that must become a clear error."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from autograder.errors import SubmissionError
from autograder.submissions import discover, unpack_zip

NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def by_id(subs: list) -> dict:
    return {s.student_id: s for s in subs}


def test_files_and_folders(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    (root / "bob").mkdir(parents=True)
    (root / "alice.ipynb").write_text(NB)
    (root / "bob" / "lab1 final.ipynb").write_text(NB)
    (root / ".DS_Store").write_text("x")
    (root / "carol.py").write_text("print(1)")
    subs = by_id(discover([root], tmp_path / "unpack"))
    assert set(subs) == {"alice", "bob", "carol"}
    assert subs["alice"].error is None and subs["bob"].error is None
    assert subs["bob"].path.name == "lab1 final.ipynb"
    assert "not a Jupyter notebook" in subs["carol"].error
    assert subs["alice"].content_hash == subs["bob"].content_hash  # same bytes


def test_folder_with_two_notebooks_or_none_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    (root / "dan").mkdir(parents=True)
    (root / "dan" / "a.ipynb").write_text(NB)
    (root / "dan" / "b.ipynb").write_text(NB)
    (root / "eve").mkdir()
    subs = by_id(discover([root], tmp_path / "unpack"))
    assert "2 notebooks" in subs["dan"].error
    assert "no .ipynb" in subs["eve"].error


def test_symlinks_devices_and_bad_ids(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    root.mkdir()
    secret = tmp_path / "secret.ipynb"
    secret.write_text(NB)
    os.symlink(secret, root / "mallory.ipynb")
    os.mkfifo(root / "pipe.ipynb")
    (root / "bad;rm -rf.ipynb").write_text(NB)
    subs = by_id(discover([root], tmp_path / "unpack"))
    assert "symbolic link" in subs["mallory"].error
    assert "not a regular file" in subs["pipe"].error
    bad = [s for s in subs.values() if s.error and "not a valid student id" in s.error]
    assert len(bad) == 1 and "/" not in bad[0].student_id and ";" not in bad[0].student_id


@pytest.mark.parametrize("name", ["-victim", "=victim", " victim", "_victim", "victim~dup"])
def test_invalid_name_cannot_displace_a_valid_student(tmp_path: Path, name: str) -> None:
    root = tmp_path / "subs"
    root.mkdir()
    (root / f"{name}.ipynb").write_text(NB)
    (root / "victim.ipynb").write_text(NB + " ")
    subs = by_id(discover([root], tmp_path / "unpack"))
    assert subs["victim"].error is None
    assert subs["victim"].path.name == "victim.ipynb"
    [bad] = [s for s in subs.values() if s.student_id != "victim"]
    assert "not a valid student id" in bad.error
    assert bad.student_id.endswith("~invalid")


def test_every_duplicate_gets_its_own_id(tmp_path: Path) -> None:
    folders = [tmp_path / c for c in "abc"]
    for i, folder in enumerate(folders):
        folder.mkdir()
        (folder / "zoe.ipynb").write_text(NB + " " * i)
    subs = discover(folders, tmp_path / "unpack")
    assert sorted(s.student_id for s in subs) == ["zoe", "zoe~dup", "zoe~dup2"]
    assert [s.error is None for s in subs].count(True) == 1


def test_escape_sequences_and_undecodable_names_are_shown_escaped(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    root.mkdir()
    (root / "\x1b[2Jeve.ipynb").write_text(NB)
    (root / os.fsdecode(b"r\xe9sum\xe9.py")).write_text("x")
    subs = discover([root], tmp_path / "unpack")
    assert len(subs) == 2
    for sub in subs:
        assert sub.error and "\x1b" not in sub.error and "\x1b" not in sub.student_id
        sub.error.encode("utf-8")  # no lone surrogate: raises if one is left
    assert any("r\\xe9sum\\xe9.py: not a Jupyter notebook" in s.error for s in subs)


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "zoe.ipynb").write_text(NB)
    (b / "zoe.ipynb").write_text(NB + " ")
    subs = discover([a, b], tmp_path / "unpack")
    assert [s.error is None for s in subs].count(True) == 1
    assert any(s.error and "second submission for zoe" in s.error for s in subs)


def test_zip_is_unpacked_like_a_folder(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice.ipynb", NB)
        zf.writestr("bob/work.ipynb", NB)
    subs = by_id(discover([archive], tmp_path / "unpack"))
    assert set(subs) == {"alice", "bob"} and all(s.error is None for s in subs.values())


@pytest.mark.parametrize("name", ["../evil.ipynb", "/abs/evil.ipynb", "a/../../evil.ipynb"])
def test_zip_slip_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, NB)
    with pytest.raises(SubmissionError, match="escapes the zip"):
        unpack_zip(archive, tmp_path / "unpack")
    assert not (tmp_path / "evil.ipynb").exists()
    # In a batch it becomes an error entry, not a crash.
    subs = discover([archive], tmp_path / "unpack2")
    assert len(subs) == 1 and "escapes the zip" in subs[0].error


def test_zip_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import autograder.submissions as subs_mod

    monkeypatch.setattr(subs_mod, "MAX_ZIP_BYTES", 1_000_000)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice.ipynb", b"0" * 2_000_000)
    with pytest.raises(SubmissionError, match="size limit"):
        unpack_zip(archive, tmp_path / "unpack")


def test_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    archive.write_bytes(b"not a zip at all")
    subs = discover([archive], tmp_path / "unpack")
    assert "not a readable zip" in subs[0].error


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="no such file or folder"):
        discover([tmp_path / "nope"], tmp_path / "unpack")
