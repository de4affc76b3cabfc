"""The reports as a browser shows them: headless Chromium renders the class summary (charts
included) and a student page to PNG, and the pictures must show the page, not a blank.

Needs Chromium (`apt-get install chromium`); skipped without it, except under
`AUTOGRADER_REQUIRE_CHROMIUM=1` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from autograder.gradebook import StoredResult
from autograder.report import write_reports
from autograder.results import (
    CellRecord,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    TestResult,
)
from autograder.spec import AssignmentSpec

CHROMIUM = Path(os.environ.get("AUTOGRADER_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_ENV = "AUTOGRADER_REQUIRE_CHROMIUM"
CHART_BLUE = (0x09, 0x69, 0xDA)  # plots.BLUE: only the charts use it

SPEC = AssignmentSpec.model_validate(
    {
        "name": "hw1",
        "title": "Lab 1: the perceptron",
        "notebook": "hw1.ipynb",
        "deadline": {"due": "2025-03-14T23:59:00+00:00", "percent_per_day": 10},
        "feedback": {"show_answers": "always"},
        "questions": [
            {"id": "predict", "kind": "code", "points": 3, "tests": ["test_predict*"]},
            {"id": "pick", "kind": "choice", "points": 1, "choices": ["a", "b"], "answer": "b"},
            {"id": "why", "kind": "text", "points": 2},
        ],
    }
)


def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} not found: install it with `apt-get install chromium`"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}, but {REQUIRE_ENV}=1 requires it", pytrace=False)
    pytest.skip(message)


def screenshot(page: Path, png: Path, tmp_path: Path) -> Image.Image:
    command = [
        str(chromium()), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
        "--window-size=1280,2000", page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert png.is_file(), f"chromium wrote no screenshot ({done.returncode}): {done.stderr[-2000:]}"
    image = Image.open(png).convert("RGB")
    image.load()
    return image


def class_rows() -> list[StoredResult]:
    rows = []
    for n in range(12):
        predict = [3.0, 2.0, 1.5, 0.0][n % 4]
        result = SubmissionResult(
            f"s{n:02d}", f"s{n:02d}.ipynb", "h",
            Status.PENDING if n % 3 == 0 else Status.GRADED,
            questions=[
                QuestionResult("predict", "code", predict, 3.0),
                QuestionResult("pick", "choice", float(n % 2), 1.0, answer="ab"[n % 2]),
                QuestionResult("why", "text", None if n % 3 == 0 else 1.0, 2.0,
                               answer="XOR is not linearly separable"),
            ],
            tests=[TestResult("test_predict_random", "predict",
                              Outcome.PASSED if predict == 3 else Outcome.FAILED,
                              "" if predict == 3 else "expected 1 at [4], got 0",
                              "predicts 1 where w0 + X @ w[1:] > 0")],
            duration_s=1.5 + n,
            penalty_percent=10.0 if n == 5 else 0.0,
            late_minutes=600.0 if n == 5 else 0.0,
            submitted_at="2025-03-15T10:00:00+00:00" if n == 5 else "2025-03-14T20:00:00+00:00",
        )
        if n == 7:
            result.status = Status.ERROR
            result.cells = [CellRecord(4, "NameError: name 'w' is not defined",
                                       'File "<cell 4>", line 1, in <module>\n    w.sum()\n')]
        rows.append(StoredResult(result, n + 1, 1, "2025-03-16T09:00:00+00:00", 6.0))
    return rows


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    write_reports(SPEC, class_rows(), out)
    return out


def distinct_colours(image: Image.Image) -> int:
    colours = image.getcolors(maxcolors=1 << 20) or []
    return sum(1 for count, _ in colours if count >= 20)  # ignore antialiasing specks


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True))


def test_summary_renders_with_its_charts(pages: Path, tmp_path: Path) -> None:
    png = tmp_path / "summary.png"
    image = screenshot(pages / "summary.html", png, tmp_path)
    assert image.size == (1280, 2000)
    assert png.stat().st_size > 20_000  # a blank page compresses to a few kB
    assert distinct_colours(image) >= 8
    # The charts' bars are there: the CSP let the embedded PNGs load and they were drawn.
    colours = image.getcolors(maxcolors=1 << 20) or []
    blue = sum(count for count, rgb in colours if near(rgb, CHART_BLUE))
    assert blue > 2_000, f"only {blue} chart-blue pixels: the charts did not render"


def test_student_page_renders(pages: Path, tmp_path: Path) -> None:
    image = screenshot(pages / "s05.html", tmp_path / "s05.png", tmp_path)
    assert distinct_colours(image) >= 4
    # Mostly page background, but the top (title, scores, late note) holds text.
    top = image.crop((0, 0, 1280, 600))
    assert len(top.getcolors(maxcolors=1 << 20) or []) > 30

