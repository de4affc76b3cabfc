"""LMS intake: Moodle and Canvas downloads, the roster that names their students, and
submission times; end to end, a Moodle zip of the example class grades like the folder."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder.lms import parse_canvas, parse_moodle
from autograder.roster import RosterError, load_roster
from autograder.submissions import discover

ROOT = Path(__file__).resolve().parents[1]
ROSTER = Path(__file__).parent / "data" / "perceptron_roster.csv"
NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


# --------------------------------------------------------------------------- names
def test_moodle_names() -> None:
    folder = parse_moodle("Inès Dubois_5009_assignsubmission_file_")
    assert folder is not None
    assert (folder.name, folder.number, folder.plugin, folder.rest) == (
        "Inès Dubois", "5009", "file", "")
    flat = parse_moodle("Jean_Luc Picard_77_assignsubmission_file_lab 1.ipynb")
    assert flat is not None and (flat.name, flat.number, flat.rest) == (
        "Jean_Luc Picard", "77", "lab 1.ipynb")
    assert parse_moodle("alice.ipynb") is None
    assert parse_moodle("Alice_assignsubmission_file_") is None  # no participant id


def test_canvas_names() -> None:
    plain = parse_canvas("martinalice_4501_99812_perceptron.ipynb")
    assert plain is not None
    assert (plain.name, plain.number, plain.rest, plain.late) == (
        "martinalice", "4501", "perceptron.ipynb", False)
    late = parse_canvas("chenbob_late_4502_99813_my_lab-1.ipynb")
    assert late is not None
    assert (late.name, late.number, late.rest, late.late) == (
        "chenbob", "4502", "my_lab-1.ipynb", True)
    assert parse_canvas("alice.ipynb") is None
    assert parse_canvas("alice_smith.ipynb") is None


# --------------------------------------------------------------------------- the roster
def test_roster_matches_by_number_then_name() -> None:
    roster = load_roster(ROSTER)
    assert len(roster.students) == 20
    assert roster.match("5001", "whoever")[0].id == "alice"  # type: ignore[union-attr]
    # No lms_id on the roster: the name decides, accents, case and spacing aside.
    assert roster.match("9999", "ines  DUBOIS")[0].id == "ines"  # type: ignore[union-attr]
    assert roster.match("", "Hugo Lefevre")[0].id == "hugo"  # type: ignore[union-attr]
    # Canvas runs names together, last name first.
    assert roster.match("", "lindqvistnora")[0].id == "nora"  # type: ignore[union-attr]
    student, why = roster.match("31337", "Mallory Evil")
    assert student is None
    assert "no student named 'Mallory Evil' or LMS id 31337 on the roster" in why


def test_ambiguous_names_match_nobody(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("id,name\nkim1,Kim Lee\nkim2,Kim Lee\n", encoding="utf-8")
    student, why = load_roster(path).match("12", "Kim Lee")
    assert student is None and "matches several students" in why and "kim1, kim2" in why


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,email\nA,a@x\n", "no `id` column"),
        ("id,name\nalice,A\nalice,B\n", "line 3: id 'alice' is also on line 2"),
        ("id,name\n../x,A\n", "not a valid student id"),
        ("", "empty"),
    ],
)
def test_bad_rosters_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RosterError, match=message):
        load_roster(path)


def test_roster_header_aliases_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("\ufeffStudent_ID,Full Name,Email Address,Canvas_ID\ns1,Ann Lee,a@x,77\n",
                    encoding="utf-8")
    [ann] = load_roster(path).students
    assert (ann.id, ann.name, ann.email, ann.lms_id) == ("s1", "Ann Lee", "a@x", "77")


# --------------------------------------------------------------------------- discovery
def moodle_zip(path: Path, entries: dict[str, str], when: tuple[int, ...] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in entries.items():
            info = zipfile.ZipInfo(name, date_time=when or (2025, 3, 14, 22, 30, 0))
            zf.writestr(info, text)
    return path


def test_moodle_zip_is_mapped_through_the_roster(tmp_path: Path) -> None:
    archive = moodle_zip(tmp_path / "moodle.zip", {
        "Alice Martin_5001_assignsubmission_file_/perceptron.ipynb": NB,
        "Alice Martin_5001_assignsubmission_onlinetext_/onlinetext.html": "<p>hi</p>",
        "Ines Dubois_777_assignsubmission_file_/lab.ipynb": NB,
        "Mallory Evil_31337_assignsubmission_file_/perceptron.ipynb": NB,
        "Bob Chen_5002_assignsubmission_file_/a.ipynb": NB,
        "Bob Chen_5002_assignsubmission_file_/b.ipynb": NB,
        "Carol Okafor_5003_assignsubmission_onlinetext_/onlinetext.html": "<p>nb?</p>",
    })
    subs = {s.student_id: s for s in discover([archive], tmp_path / "u", load_roster(ROSTER))}
    assert set(subs) == {"alice", "ines", "moodle-31337", "bob", "carol"}
    assert subs["alice"].error is None and subs["alice"].path.name == "perceptron.ipynb"
    assert subs["alice"].origin == "moodle participant 5001 (Alice Martin)"
    assert subs["ines"].error is None  # matched by name: no lms_id for her on the roster
    assert "no student named 'Mallory Evil'" in (subs["moodle-31337"].error or "")
    assert "2 notebooks" in (subs["bob"].error or "")
    assert "no .ipynb notebook" in (subs["carol"].error or "")
    # The time the zip keeps for each file is the submission time.
    expected = datetime(2025, 3, 14, 22, 30).astimezone(UTC)
    assert subs["alice"].submitted_at == expected


def test_moodle_zip_without_roster_says_what_to_do(tmp_path: Path) -> None:
    archive = moodle_zip(tmp_path / "moodle.zip", {
        "Alice Martin_5001_assignsubmission_file_/perceptron.ipynb": NB,
    })
    [sub] = discover([archive], tmp_path / "u")
    assert sub.student_id == "moodle-5001"
    assert sub.error is not None and "pass --roster ROSTER.csv" in sub.error


def test_moodle_flat_download_inside_a_top_folder(tmp_path: Path) -> None:
    archive = moodle_zip(tmp_path / "moodle.zip", {
        "Lab 1-123/Alice Martin_5001_assignsubmission_file_perceptron.ipynb": NB,
        "Lab 1-123/Bob Chen_5002_assignsubmission_file_perceptron.ipynb": NB,
    })
    subs = {s.student_id: s for s in discover([archive], tmp_path / "u", load_roster(ROSTER))}
    assert set(subs) == {"alice", "bob"} and all(s.error is None for s in subs.values())


def test_canvas_zip_keeps_the_late_mark(tmp_path: Path) -> None:
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("martinalice_4501_99812_perceptron.ipynb", NB)
        zf.writestr("chenbob_late_4502_99813_perceptron-1.ipynb", NB)
        zf.writestr("evilmallory_4666_99814_perceptron.ipynb", NB)
    subs = {s.student_id: s for s in discover([archive], tmp_path / "u", load_roster(ROSTER))}
    assert set(subs) == {"alice", "bob", "canvas-4666"}
    assert subs["bob"].lms_late and not subs["alice"].lms_late
    assert subs["canvas-4666"].error is not None


def test_plain_folders_keep_the_file_time(tmp_path: Path) -> None:
    (tmp_path / "subs").mkdir()
    nb = tmp_path / "subs" / "alice.ipynb"
    nb.write_text(NB)
    os.utime(nb, (1_700_000_000, 1_700_000_000))
    [sub] = discover([tmp_path / "subs"], tmp_path / "u")
    assert sub.submitted_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert sub.origin == "" and not sub.lms_late


def test_zip_extended_timestamp_wins_over_dos_time(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    info = zipfile.ZipInfo("alice.ipynb", date_time=(1999, 1, 1, 0, 0, 0))
    info.extra = b"UT" + (5).to_bytes(2, "little") + b"\x01" + (1_700_000_000).to_bytes(4, "little")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, NB)
    [sub] = discover([archive], tmp_path / "u")
    assert sub.submitted_at == datetime.fromtimestamp(1_700_000_000, UTC)


# --------------------------------------------------------------------------- end to end
def autograder(*args: str, course: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def moodle_download_of(folder: Path, target: Path) -> Path:
    """The example class as Moodle's "Download all submissions" would zip it."""
    roster = {s.id: s for s in load_roster(ROSTER).students}
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.iterdir()):
            student = roster[path.stem]
            # hugo, ines and nora have no lms_id: Moodle's own number, matched by name.
            number = student.lms_id or str(7000 + len(student.name))
            name = student.name.replace("è", "e") if path.stem == "ines" else student.name
            zf.write(path, f"{name}_{number}_assignsubmission_file_/{path.name}")
        zf.writestr("Mallory Evil_31337_assignsubmission_file_/perceptron.ipynb", NB)
    return target


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


@pytest.mark.slow
def test_moodle_zip_grades_like_the_plain_folder(tmp_path: Path) -> None:
    courses = {}
    for kind in ("folder", "moodle"):
        root = tmp_path / kind
        for part in ("assignments/perceptron", "reference_solutions/perceptron"):
            shutil.copytree(ROOT / part, root / part)
        courses[kind] = root
    examples = ROOT / "examples" / "perceptron"
    archive = moodle_download_of(examples, tmp_path / "moodle.zip")
    runs = {
        "folder": autograder("grade", "perceptron", str(examples), "--sandbox", "local",
                             "--jobs", "3", course=courses["folder"]),
        "moodle": autograder("grade", "perceptron", str(archive), "--roster", str(ROSTER),
                             "--sandbox", "local", "--jobs", "3", course=courses["moodle"]),
    }
    for kind, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 1, (kind, stdout, stderr)  # some samples are broken
    exported = {}
    for kind, root in courses.items():
        out = root / "grades.csv"
        done = subprocess.run(
            [sys.executable, "-m", "autograder", "export", "perceptron", "--out", str(out),
             "--roster", str(ROSTER), "--course", str(root)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
        exported[kind] = read_csv(out)
    folder, moodle = exported["folder"], exported["moodle"]
    assert set(moodle) == set(folder) | {"moodle-31337"}
    for student, row in folder.items():
        theirs = moodle[student]
        for column in ("predict", "train", "and_weights", "linear_limit", "xor_single_layer",
                       "xor_explain", "score", "max_score", "status", "name", "email"):
            assert theirs[column] == row[column], (student, column, row, theirs)
    assert folder["uma"]["status"] == "missing"  # on the roster, nothing submitted
    assert moodle["moodle-31337"]["status"] == "error"  # never dropped silently
