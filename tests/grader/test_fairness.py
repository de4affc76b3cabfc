"""Correct notebooks written differently all get full marks (COURSE.md's general rules).

Grading looks at what a notebook defines when run top to bottom: dtype, order of
operations, helper cells, cell order, magics, a failing cell or a cell that hangs must
not cost the points of functions that are right. Every test runs against both
sandboxes (`sandbox_kind` in tests/conftest.py: local, then docker).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.grader.toy import CORRECT, assert_full_marks, cell, graded, make_toy_course

IMPORT, DOUBLE, LIN, MEAN, POSITIVE, ANSWERS = CORRECT

FLOAT64 = [
    IMPORT,
    cell("""
        def double(x):
            return x.to(torch.float64) * 2.0
    """),
    cell("""
        class Lin:
            def __init__(self, n):
                self.w = torch.linspace(-1, 1, n, dtype=torch.float64)

            def forward(self, x):
                return x.to(torch.float64) @ self.w
    """),
    cell("""
        def mean(xs):
            return torch.tensor(xs, dtype=torch.float64).mean().item()
    """),
    cell("""
        def positive(x):
            return (x > 0).to(torch.float64)
    """),
    ANSWERS,
]

OTHER_ORDER = [
    IMPORT,
    cell("""
        def double(x):
            return x + x
    """),
    cell("""
        class Lin:
            def __init__(self, n):
                step = 2.0 / (n - 1)
                self.w = torch.tensor([-1.0 + i * step for i in range(n)])

            def forward(self, x):
                return (x * self.w).sum(dim=1)
    """),
    cell("""
        import numpy as np

        def mean(xs):
            total = 0.0
            for value in reversed(xs):
                total += value
            return np.float64(total) / len(xs)
    """),
    cell("""
        def positive(x):
            return torch.where(x > 0, 1, 0)
    """),
    ANSWERS,
]

HELPERS = [
    cell("""
        import torch
        import numpy as np

        def _scale(x, k):
            return x * k

        def _weights(n):
            return torch.linspace(-1, 1, n)
    """),
    cell("""
        def double(x):
            return _scale(x, 2)

        class Lin:
            def __init__(self, n):
                self.w = _weights(n)

            def forward(self, x):
                return torch.matmul(x, self.w)
    """),
    cell("""
        # a self-test, as students write them
        assert torch.equal(double(torch.tensor([1, 2])), torch.tensor([2, 4]))
        print("self-test ok")
    """),
    cell("""
        def mean(xs):
            return float(np.mean(np.asarray(xs, dtype=np.float64)))

        def positive(x):
            return x.gt(0).int()
    """),
    ANSWERS,
]

ANSWERS_FIRST = [ANSWERS, POSITIVE, MEAN, IMPORT, LIN, DOUBLE]

MAGICS = [
    cell("""
        %matplotlib inline
        %load_ext autoreload
        %autoreload 2
        !pip install some-package-that-does-not-exist
        import torch
    """),
    cell("""
        %%time
        def double(x):
            return x * 2
    """),
    cell("""
        %time k = 2
        def mean(xs):
            return sum(xs) / len(xs) * (k / 2)
    """),
    cell("""
        files = !ls /
        class Lin:
            def __init__(self, n):
                self.w = torch.linspace(-1, 1, n)

            def forward(self, x):
                return x @ self.w
    """),
    cell("""
        %%bash
        echo "this never runs in the sandbox"
        exit 1
    """),
    cell("""
        %%capture
        def positive(x):
            return x > 0
        print("captured")
    """),
    cell("""
        torch.zeros?
        %timeit double(torch.ones(3))
    """),
    ANSWERS,
]

FAILING_LAST = [*CORRECT, cell("raise RuntimeError('the last cell fails')")]

SYNTAX_ERROR_INDEX = 3
SYNTAX_ERROR = [
    *CORRECT[:SYNTAX_ERROR_INDEX],
    cell("""
        def broken(:
            return 1
    """),
    *CORRECT[SYNTAX_ERROR_INDEX:],
]

REDEFINED = [
    IMPORT,
    cell("""
        def double(x):
            return x * 3

        class Lin:
            def __init__(self, n):
                self.w = torch.zeros(n)

            def forward(self, x):
                return x.sum(1)

        answer_q = "a"
    """),
    DOUBLE,
    MEAN,
    POSITIVE,
    ANSWERS,
    LIN,
]

LOOP_INDEX = 3
LOOPS_FOREVER = [
    *CORRECT[:LOOP_INDEX],
    cell("""
        import time
        while True:  # a training loop with a bug
            time.sleep(0.1)
    """),
    *CORRECT[LOOP_INDEX:],
]


def colab_json() -> str:
    """Colab's export: list-of-lines sources, no cell ids, outputs, odd metadata, nbformat 4.2."""
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "metadata": {"id": "intro"}, "source": ["# Toy\n", "hello"]},
    ]
    for source in [POSITIVE, IMPORT, LIN, DOUBLE, MEAN, ANSWERS]:
        cells.append(
            {
                "cell_type": "code",
                "execution_count": 7,
                "metadata": {"colab": {"base_uri": "https://localhost/"}, "tags": ["graded"]},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["PASSED\n"]}],
                "source": source.splitlines(keepends=True),
            }
        )
    cells.append({"cell_type": "raw", "metadata": {}, "source": "raw text"})
    notebook = {
        "cells": cells,
        "metadata": {"colab": {"provenance": []}, "kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 2,
    }
    return json.dumps(notebook, indent=1)


FAIR = {
    "float64": FLOAT64,
    "other_order": OTHER_ORDER,
    "helpers": HELPERS,
    "answers_first": ANSWERS_FIRST,
    "magics": MAGICS,
    "failing_last": FAILING_LAST,
    "syntax_error": SYNTAX_ERROR,
    "redefined": REDEFINED,
    "colab": None,  # raw JSON, see colab_json
}


@pytest.fixture(scope="module")
def batch(
    sandbox_kind: str, tmp_path_factory: pytest.TempPathFactory, grade_notebooks: Any
) -> dict[str, Any]:
    course = make_toy_course(tmp_path_factory.mktemp(f"course-{sandbox_kind}"))
    notebooks = dict(FAIR)
    notebooks["colab"] = colab_json()
    # The notebook that hangs takes the notebook timeout; it gets a grader of its own.
    return grade_notebooks(
        course, "toy", notebooks, {"loops_forever": LOOPS_FOREVER}, sandbox=sandbox_kind
    )


@pytest.mark.parametrize("name", list(FAIR))
def test_correct_notebook_written_differently_gets_full_marks(
    batch: dict[str, Any], name: str
) -> None:
    result = graded(batch, name)
    assert result["status"] == "graded", result["message"]
    assert_full_marks(result)


@pytest.mark.parametrize(
    "name", ["float64", "other_order", "helpers", "answers_first", "magics", "redefined", "colab"]
)
def test_clean_notebooks_record_no_cell_errors(batch: dict[str, Any], name: str) -> None:
    assert graded(batch, name)["cells"] == []


def test_shell_cells_do_not_run_but_python_magic_bodies_do(batch: dict[str, Any]) -> None:
    result = graded(batch, "magics")
    assert "this never runs" not in result["stdout"]
    assert "captured" in result["stdout"]  # the %%capture body ran (it defines `positive`)


def test_a_failing_last_cell_is_recorded_and_costs_nothing(batch: dict[str, Any]) -> None:
    result = graded(batch, "failing_last")
    assert [(c["index"], c["error"]) for c in result["cells"]] == [
        (len(CORRECT), "RuntimeError: the last cell fails")
    ]


def test_a_syntax_error_loses_only_its_own_cell(batch: dict[str, Any]) -> None:
    result = graded(batch, "syntax_error")
    assert [c["index"] for c in result["cells"]] == [SYNTAX_ERROR_INDEX]
    assert result["cells"][0]["error"].startswith("SyntaxError")


def test_a_cell_that_hangs_is_skipped_and_other_functions_still_score(
    batch: dict[str, Any],
) -> None:
    result = graded(batch, "loops_forever")
    assert result["status"] == "timeout"
    assert [c["index"] for c in result["cells"]] == [LOOP_INDEX]
    assert "did not finish" in result["cells"][0]["error"]
    assert "did not finish in time" in result["message"]
    assert_full_marks(result)


def test_the_fixture_writes_real_notebooks(batch: dict[str, Any]) -> None:
    path = Path(graded(batch, "colab")["path"])
    assert json.loads(path.read_text())["nbformat_minor"] == 2


def test_results_name_the_sandbox_that_ran_them(sandbox_kind: str, batch: dict[str, Any]) -> None:
    assert {graded(batch, name)["sandbox"] for name in batch} == {sandbox_kind}
