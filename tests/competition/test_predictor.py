"""Code submissions: a notebook defining predict(X) runs in the local sandbox on the
hidden inputs, and its predictions are scored like a CSV. The labels stay outside."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.competition import compete
from autograder.competition.intake import read_predictions
from autograder.competition.predictor import run_predict
from autograder.competition.solution import Split, load_inputs, load_solution
from autograder.competition.spec import load_competition
from autograder.competition.store import CompetitionStore
from autograder.sandbox import LocalSandbox
from tests.competition.conftest import TRUTH, Clock, context, make_course, predictions
from tests.conftest import write_notebook

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("needs_bwrap")]
REPO = Path(__file__).resolve().parents[2]
CODE = """
[code]
inputs = "data/test.csv"
batch_size = 4
dtype = "float64"

[code.limits]
notebook_timeout = 60
call_timeout = 20
max_restarts = 0
"""


@pytest.fixture
def ctx(tmp_path: Path) -> compete.Context:
    course = make_course(tmp_path / "course", tail=CODE)
    data = course.root / "competitions" / "toy" / "data"
    # Feature f0 is the label (so a perfect model is easy), f1 noise.
    (data / "test.csv").write_text(
        "id,f0,f1\n" + "".join(f"{i},{v},{i * 0.5}\n" for i, v in TRUTH.items())
    )
    (data / "train.csv").write_text("f0,f1,label\n0,1,0\n1,2,1\n2,3,2\n")
    return context(course)


def submit_notebook(ctx: compete.Context, tmp_path: Path, cells: list[str]) -> compete.Receipt:
    path = write_notebook(tmp_path / "model.ipynb", cells)
    sandbox = LocalSandbox(mask=(ctx.course.root,))
    return compete.submit_file(ctx, path, "red", sandbox=lambda: sandbox, clock=Clock())


def test_predict_runs_in_the_sandbox_and_scores_like_a_csv(
    ctx: compete.Context, tmp_path: Path
) -> None:
    solution = str(ctx.competition.solution_path)
    receipt = submit_notebook(
        ctx,
        tmp_path,
        [
            "import os\nimport numpy as np",
            # Training data is mounted as ./data; the solution is nowhere to be seen.
            "train = np.loadtxt('data/train.csv', delimiter=',', skiprows=1)",
            f"LEAK = os.path.exists({solution!r}) or 'solution.csv' in os.listdir('data')",
            "def predict(X, *more):\n"
            "    assert len(X) <= 4, 'batches of 4 rows'\n"
            "    assert X.shape[1] == 2 and X.dtype == np.float64 and not more\n"
            "    if LEAK:\n"
            "        return np.zeros(len(X), dtype=int)\n"
            "    return X[:, 0].astype(int)",
        ],
    )
    assert (receipt.status, receipt.public_score) == ("scored", 1.0), receipt.message
    [stored] = compete.submissions(ctx)
    assert (stored.kind, stored.private_score) == ("code", 1.0)
    # The predictions are kept (for rescoring) and read exactly like an uploaded CSV.
    with CompetitionStore.open(ctx.course.gradebook) as store:
        content, text = store.content(stored.id)
    assert content == (tmp_path / "model.ipynb").read_bytes()
    assert text is not None and text.splitlines()[:3] == ["id,label", "1,0", "2,1"]
    as_csv = read_predictions(predictions(TRUTH).encode(), "p", ctx.competition.spec, ctx.solution)
    ours = read_predictions(text.encode(), "p", ctx.competition.spec, ctx.solution)
    assert ours.values.tolist() == as_csv.values.tolist()


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            ["x = 1", "1 / 0"],
            "the notebook does not define predict(X); define a function "
            "predict(X) that returns one prediction per row of X (cell 1 raised "
            "ZeroDivisionError",
        ),
        (
            ["def predict(X):\n    raise ValueError('no model yet')"],
            "model.ipynb: 1 problem: predict() raised ValueError: no model yet",
        ),
        (
            ["import numpy as np\ndef predict(X):\n    return np.zeros(len(X) + 1)"],
            "predict(X) returned 5 predictions for 4 rows of X",
        ),
        (
            ["class Box: pass\ndef predict(X):\n    return Box()"],
            "predict(X) returned <student Box object>, which cannot leave the sandbox",
        ),
        (
            ["import numpy as np\ndef predict(X):\n    return np.full(len(X), 7)"],
            "line 2: label: '7' is no class (classes: 0, 1, 2)",
        ),
    ],
)
def test_broken_notebooks_are_rejected_and_not_counted(
    ctx: compete.Context, tmp_path: Path, cells: list[str], message: str
) -> None:
    receipt = submit_notebook(ctx, tmp_path, cells)
    assert receipt.status == "rejected" and receipt.used_today == 0
    assert message in receipt.message
    assert "not counted against the daily cap" in receipt.message


def test_the_example_starter_notebook_beats_the_baseline() -> None:
    competition = load_competition(REPO, "digits")
    solution = load_solution(competition)
    inputs = load_inputs(competition, solution)
    sandbox = LocalSandbox(mask=(REPO,))
    run = run_predict(competition.folder / "starter.ipynb", competition, solution, inputs, sandbox)
    assert not run.cells, run.cells
    text = "id,label\n" + "".join(
        f"{i},{r[0]}\n" for i, r in zip(inputs.ids, run.rows, strict=True)
    )
    got = read_predictions(text.encode(), "starter", competition.spec, solution)
    baseline = read_predictions(
        (competition.folder / "data" / "baseline.csv").read_bytes(), "b", competition.spec, solution
    )
    mask = solution.mask(Split.PRIVATE)
    truth = solution.targets[mask]
    assert (got.values[mask] == truth).mean() > (baseline.values[mask] == truth).mean() + 0.02
