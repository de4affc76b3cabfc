"""Code submissions: a notebook defining `predict(X)`, run in the sandbox on the inputs.

The notebook runs top to bottom in a fresh sandbox (the competition's `data/` mounted
read-only as ./data, for training), exactly like a graded assignment. Then the grader
calls `predict` through the student proxy with the hidden inputs as data, a batch of rows
at a time, and gets the predictions back as data. The labels never enter the sandbox:
the predictions are checked and scored here, on the trusted side, like an uploaded CSV.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.competition.errors import SubmissionRejected
from autograder.competition.metrics import MetricKind
from autograder.competition.solution import Inputs, Solution
from autograder.competition.spec import Competition
from autograder.errors import NotebookError
from autograder.grader.proxy import Handle, MissingName, StudentCodeError, StudentProxy
from autograder.grader.session import StudentSession
from autograder.notebook import read_notebook
from autograder.results import CellRecord
from autograder.sandbox.base import LaunchConfig, Sandbox
from autograder.spec import Limits

if TYPE_CHECKING:
    import numpy.typing as npt

PREDICT = "predict"


@dataclass
class CodeRun:
    """What running a notebook's `predict` gave: a table of cells (as text) or a problem."""

    rows: list[list[str]] = field(default_factory=list)  # one per input row, in input order
    cells: list[CellRecord] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    sandbox: str = ""


def launch_config(competition: Competition, limits: Limits, batches: int) -> LaunchConfig:
    """The sandbox settings of a code submission (the `[code.limits]` of the spec)."""
    return LaunchConfig(
        memory_mb=limits.memory_mb,
        max_processes=limits.max_processes,
        scratch_mb=limits.scratch_mb,
        output_bytes=limits.output_bytes,
        max_open_files=limits.max_open_files,
        message_bytes=limits.message_mb * 2**20,
        threads=limits.threads,
        # CPU seconds of the whole run: generous, the wall clock is the real limit.
        cpu_seconds=int(limits.notebook_timeout + limits.call_timeout * (batches + 1))
        * limits.threads,
        data_dir=competition.data_dir,
    )


def run_predict(
    notebook: Path,
    competition: Competition,
    solution: Solution,
    inputs: Inputs,
    sandbox: Sandbox,
) -> CodeRun:
    """Run `notebook` in `sandbox` and collect `predict(X)` on every input row.

    Raises SubmissionRejected when the notebook cannot be read, does not define
    `predict`, or `predict` fails or returns something unusable; SandboxError when the
    sandbox itself fails (not the team's fault).
    """
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    code = competition.spec.code
    assert code is not None  # the caller checked that the competition takes code
    name = notebook.name
    try:
        cells = read_notebook(notebook).runnable()
    except NotebookError as exc:
        raise SubmissionRejected(name, [str(exc)]) from None
    X = inputs.X.astype(code.dtype)
    starts = range(0, len(X), code.batch_size)
    config = launch_config(competition, code.limits, len(starts))
    session = StudentSession(sandbox, cells, config, code.limits, code.seed)
    run = CodeRun(sandbox=sandbox.name)
    outputs: list[npt.NDArray[Any]] = []
    try:
        session.start()
        student = StudentProxy(session)
        predict = getattr(student, PREDICT)
        if not isinstance(predict, Handle):
            raise SubmissionRejected(
                name, [f"`{PREDICT}` is a {type(predict).__name__}, not a function"]
            )
        for start in starts:
            batch = X[start : start + code.batch_size]
            outputs.append(_as_array(predict(batch), len(batch), name))
    except MissingName:
        raise SubmissionRejected(name, [_missing(session)]) from None
    except StudentCodeError as exc:
        problem = f"{exc}{_first_cell(session)}"  # e.g. "predict() raised ValueError: ..."
        raise SubmissionRejected(name, [problem]) from None
    finally:
        session.close()
        run.cells = sorted(session.cell_records.values(), key=lambda c: c.index)
        run.stdout, run.stderr = session.stdout_stderr()
    run.rows = _rows(np.concatenate(outputs), competition, solution, name)
    return run


def _missing(session: StudentSession) -> str:
    return (
        f"the notebook does not define {PREDICT}(X); define a function {PREDICT}(X) that "
        f"returns one prediction per row of X{_first_cell(session)}"
    )


def _first_cell(session: StudentSession) -> str:
    if not session.cell_records:
        return ""
    first = session.cell_records[min(session.cell_records)]
    return f" (cell {first.index} raised {first.error[:200]})"


def _as_array(value: Any, rows: int, name: str) -> npt.NDArray[Any]:
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    torch = sys.modules.get("torch")  # loaded by the wire decoder when a tensor came back
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().float().numpy() if value.is_floating_point() else value.numpy()
    if isinstance(value, Handle):
        raise SubmissionRejected(
            name,
            [
                f"{PREDICT}(X) returned {value!r}, which cannot leave the sandbox; "
                "return a numpy array, a torch tensor or a list"
            ],
        )
    array = np.asarray(value) if isinstance(value, list | tuple | np.ndarray) else None
    if array is None or array.dtype == object or array.ndim not in (1, 2):
        raise SubmissionRejected(
            name,
            [
                f"{PREDICT}(X) returned {type(value).__name__}; return a 1-D or 2-D numpy "
                "array, torch tensor or list of numbers (or of labels)"
            ],
        )
    if len(array) != rows:
        raise SubmissionRejected(
            name, [f"{PREDICT}(X) returned {len(array)} predictions for {rows} rows of X"]
        )
    return array


def _rows(
    predictions: npt.NDArray[Any], competition: Competition, solution: Solution, name: str
) -> list[list[str]]:
    """The predictions as CSV cells, one list per row, in the submission's columns."""
    kind = competition.spec.metric.kind
    if kind is MetricKind.PROBABILITY and solution.positive is not None:
        # Binary: P(positive), or predict_proba's two columns in class order.
        if predictions.ndim == 2 and predictions.shape[1] == 2:
            assert solution.classes is not None
            predictions = predictions[:, solution.classes.index(solution.positive)]
        elif predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
    if predictions.ndim == 1:
        predictions = predictions[:, None]
    width = 1 if kind is MetricKind.LABEL else _width(competition, solution)
    if predictions.shape[1] != width:
        raise SubmissionRejected(
            name,
            [
                f"{PREDICT}(X) returned {predictions.shape[1]} value(s) per row; "
                f"this competition needs {width}"
                + (
                    f" (one probability per class, in the order {solution.class_list()})"
                    if width > 1 and kind is MetricKind.PROBABILITY
                    else ""
                )
            ],
        )
    return [[_cell(v) for v in row] for row in predictions.tolist()]


def _width(competition: Competition, solution: Solution) -> int:
    if competition.spec.metric.kind is MetricKind.PROBABILITY and solution.positive is None:
        return len(solution.classes or [])
    if competition.spec.metric.kind is MetricKind.PROBABILITY:
        return 1
    return len(competition.spec.target_columns)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else repr(value)
    return repr(value) if isinstance(value, float) else str(value)
