"""End to end through the CLI: the cnn, gan and rnn assignments published and their sample
classes graded on the local sandbox, compared with `<name>_expected.json`.

Each assignment is copied into a course of its own, `publish --sandbox local` must succeed
(the reference earns full marks, the untouched template zero; mutation testing is left to
`autograder validate`, far too slow here: every mutant of a training function trains again),
then the examples are graded with `--jobs 2` and exported. The training questions (cnn's
digits, gan's train) are deterministic: seeds are set identically before every test and torch
runs on one thread, so their expected scores are exact.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("cnn", "gan", "rnn")
COLUMNS = {
    "cnn": ["conv2d", "maxpool", "digits", "conv_output_size", "receptive_field"],
    "gan": ["losses", "train", "mode_collapse"],
    "rnn": ["lstm_cell", "lstm_seq", "lstm_params", "vanishing"],
}


def expected(name: str) -> dict[str, dict]:
    data = json.loads((Path(__file__).parent / f"{name}_expected.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def autograder(*args: str, course: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(name, course, publish run, grade run) with the sample class of `name` graded once."""
    name = request.param
    root = tmp_path_factory.mktemp(f"course-{name}")
    for part in (f"assignments/{name}", f"reference_solutions/{name}", f"examples/{name}"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    published = autograder("publish", name, "--sandbox", "local", "--no-mutants", course=root)
    done = autograder(
        "grade",
        name,
        str(root / "examples" / name),
        "--sandbox",
        "local",
        "--jobs",
        "2",
        course=root,
    )
    return name, root, published, done


@pytest.mark.slow
def test_publish_and_grade_the_sample_class(graded) -> None:
    name, root, published, done = graded
    assert published.returncode == 0, published.stdout + published.stderr
    assert (root / "release" / name / f"{name}.ipynb").is_file()
    want = expected(name)
    some_error = any(w["status"] == "error" for w in want.values())
    # `grade` exits with 1 when some submissions could not be graded (broken on purpose)
    assert done.returncode == (1 if some_error else 0), done.stdout + done.stderr
    out = root / "grades.csv"
    exported = autograder("export", name, "--out", str(out), course=root)
    assert exported.returncode == 0, exported.stderr
    rows = {r["student_id"]: r for r in read_csv(out)}
    assert list(next(iter(rows.values()))) == [
        "student_id",
        *COLUMNS[name],
        "score",
        "max_score",
        "status",
    ]
    assert set(rows) == set(want)
    for student, w in want.items():
        row = rows[student]
        assert row["status"] == w["status"], (student, row, w.get("why"))
        for qid, points in w["questions"].items():
            assert float(row[qid]) == pytest.approx(points, abs=1e-3), (
                student,
                qid,
                row,
                w.get("why"),
            )
