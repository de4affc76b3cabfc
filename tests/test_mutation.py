"""Mutation testing: the mutator on small sources, mutants.toml, attribution, the CLI."""

from __future__ import annotations

import ast
import functools
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.course import Course
from autograder.errors import CourseError
from autograder.mutation import (
    MutationOptions,
    Verdict,
    derive,
    knockout,
    load_equivalents,
    mutants_of,
    reference_cells,
    run_mutants,
    select,
)
from autograder.notebook import to_python
from autograder.sandbox import LocalSandbox
from tests.conftest import write_notebook

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''\
import torch

LIMIT = 3 + 4


@torch.no_grad()
def f(a: int, b, scale=2.0, flag=True):
    """doc: 1 + 1"""
    total = a + b
    total -= a * b
    if total > 0 and not a:
        return -total
    return torch.cat(a, b) @ b ** 2 / scale


class Model:
    size = 1

    def step(self, x):
        self.x = x
        return x != None


answer_q = 1 + 1
'''

# Every mutant of SOURCE: id -> (line before, line after). Lines count from the `def` (L1),
# columns (1-based) point at the operator, or at the node that changes.
EXPECTED = {
    "f:L1:C24:const-2.0-4.0": (
        "def f(a: int, b, scale=2.0, flag=True):",
        "def f(a: int, b, scale=4.0, flag=True):",
    ),
    "f:L1:C34:const-True-False": (
        "def f(a: int, b, scale=2.0, flag=True):",
        "def f(a: int, b, scale=2.0, flag=False):",
    ),
    "f:L3:C5:delete-Assign": ("total = a + b", "pass"),
    "f:L3:C15:binop-Add-Sub": ("total = a + b", "total = a - b"),
    "f:L3:C15:drop-Add-right": ("total = a + b", "total = a"),
    "f:L3:C15:drop-Add-left": ("total = a + b", "total = b"),
    "f:L4:C5:delete-AugAssign": ("total -= a * b", "pass"),
    "f:L4:C11:augassign-Sub-Add": ("total -= a * b", "total += a * b"),
    "f:L4:C16:binop-Mult-Div": ("total -= a * b", "total -= a / b"),
    "f:L5:C5:delete-If": ("if total > 0 and (not a): ...", "pass"),
    "f:L5:C14:compare-Gt-GtE": ("if total > 0 and (not a):", "if total >= 0 and (not a):"),
    "f:L5:C14:compare-Gt-Lt": ("if total > 0 and (not a):", "if total < 0 and (not a):"),
    "f:L5:C16:const-0-1": ("if total > 0 and (not a):", "if total > 1 and (not a):"),
    "f:L5:C18:boolop-And-Or": ("if total > 0 and (not a):", "if total > 0 or not a:"),
    "f:L5:C22:unary-Not-removed": ("if total > 0 and (not a):", "if total > 0 and a:"),
    "f:L6:C9:delete-Return": ("return -total", "pass"),
    "f:L6:C16:unary-USub-removed": ("return -total", "return total"),
    "f:L7:C12:swap-args-1-2": (
        "return torch.cat(a, b) @ b ** 2 / scale",
        "return torch.cat(b, a) @ b ** 2 / scale",
    ),
    "f:L7:C28:binop-MatMult-Mult": (
        "return torch.cat(a, b) @ b ** 2 / scale",
        "return torch.cat(a, b) * b ** 2 / scale",
    ),
    "f:L7:C32:binop-Pow-Mult": (
        "return torch.cat(a, b) @ b ** 2 / scale",
        "return torch.cat(a, b) @ (b * 2) / scale",
    ),
    "f:L7:C35:const-2-3": (
        "return torch.cat(a, b) @ b ** 2 / scale",
        "return torch.cat(a, b) @ b ** 3 / scale",
    ),
    "f:L7:C37:binop-Div-Mult": (
        "return torch.cat(a, b) @ b ** 2 / scale",
        "return torch.cat(a, b) @ b ** 2 * scale",
    ),
    "Model.step:L2:C9:delete-Assign": ("self.x = x", "pass"),
    "Model.step:L3:C18:compare-NotEq-Eq": ("return x != None", "return x == None"),
}


def by_id(source: str) -> dict[str, tuple[str, str]]:
    return {m.id: (m.before, m.after) for m in mutants_of(source)}


# --------------------------------------------------------------------------- the mutator
def test_each_operator_makes_the_expected_mutants() -> None:
    assert by_id(SOURCE) == EXPECTED


def test_ids_are_stable_under_edits_elsewhere() -> None:
    edited = "import math\n\n\ndef helper(v):\n    return v * 3\n\n\n" + SOURCE
    edited = edited.replace("class Model:\n", "class Model:\n    '''A model.'''\n\n")
    found = by_id(edited)
    assert {k: v for k, v in found.items() if not k.startswith("helper:")} == EXPECTED
    assert by_id(SOURCE) == by_id(SOURCE)


def test_one_change_per_mutant_and_each_compiles() -> None:
    original = ast.unparse(ast.parse(SOURCE))
    for m in mutants_of(SOURCE):
        compile(m.source, m.id, "exec")
        assert m.source != original, m.id
        # One node of f or Model.step changed; the rest of the cell is as it was.
        old, new = ast.parse(original).body, ast.parse(m.source).body
        changed = [
            i for i, (a, b) in enumerate(zip(old, new, strict=True)) if ast.dump(a) != ast.dump(b)
        ]
        assert len(changed) == 1 and isinstance(old[changed[0]], ast.FunctionDef | ast.ClassDef)


def test_only_function_bodies_are_mutated() -> None:
    mutants = mutants_of(SOURCE)
    assert {m.function for m in mutants} == {"f", "Model.step"}
    assert {m.unit for m in mutants} == {"f", "Model"}
    for m in mutants:
        tree = ast.parse(m.source)
        top = {
            ast.unparse(s) for s in tree.body if not isinstance(s, ast.FunctionDef | ast.ClassDef)
        }
        assert top == {"import torch", "LIMIT = 3 + 4", "answer_q = 1 + 1"}, m.id
        assert "@torch.no_grad()" in m.source and "a: int" in m.source, m.id
        assert "doc: 1 + 1" in m.source and "size = 1" in m.source, m.id
    assert by_id("x = 1 + 2\nanswer_a = 3 > 2\nfor i in range(3):\n    print(i - 1)\n") == {}


def test_the_result_of_a_function_is_never_deleted() -> None:
    source = textwrap.dedent("""\
        def one(x):
            y = x + 1
            return y

        def only_inside(x):
            if x:
                return 1

        def two(x):
            if x:
                return 1
            return 2
    """)
    deletions = {i for i in by_id(source) if "delete-Return" in i}
    assert deletions == {"two:L3:C9:delete-Return"}
    assert "one:L2:C5:delete-Assign" in by_id(source)


def test_no_op_and_identical_mutants_are_left_out() -> None:
    found = by_id("def g(a):\n    return h(a, a) + a + a\n")
    assert not any("swap-args" in i for i in found)  # h(a, a) swapped is h(a, a)
    afters = [after for _, after in found.values()]
    assert len(afters) == len(set(afters))


def test_cap_spreads_the_choice_over_the_function_deterministically() -> None:
    body = "\n".join(f"    x{i} = x + {i + 2}" for i in range(20))
    mutants = mutants_of(
        f"def big(x):\n{body}\n    return x\n\n\ndef small(x):\n    return x + 1\n"
    )
    big = [m for m in mutants if m.function == "big"]
    assert len(big) == 20 * 5  # delete, binop, drop x2, const per line
    chosen = select(mutants, 10)
    assert chosen == select(mutants, 10)
    picked = [m for m in chosen if m.function == "big"]
    assert len(picked) == 10
    assert picked[0] is big[0] and picked[-1].line >= 18  # from the first line to the last
    assert [m for m in chosen if m.function == "small"] == [
        m for m in mutants if m.function == "small"
    ]
    assert select(mutants, 0) == mutants


def test_knockout_replaces_a_function_or_every_method() -> None:
    out = ast.parse(knockout(SOURCE, "f"))
    f = next(s for s in out.body if isinstance(s, ast.FunctionDef))
    assert ast.unparse(f.body) == "raise NotImplementedError"
    assert "self.x = x" in knockout(SOURCE, "f")
    model = knockout(SOURCE, "Model")
    assert "self.x = x" not in model and "size = 1" in model and "total = a + b" in model


def test_notebook_magics_are_plain_python_before_mutation() -> None:
    # the reference's cells go through notebook.to_python first; a shell line becomes a call
    code = to_python("!ls\ndef f(x):\n    return x + 1\n")
    assert "f:L2:C14:binop-Add-Sub" in by_id(code)


# --------------------------------------------------------------------------- mutants.toml
def test_equivalents_file(tmp_path: Path) -> None:
    path = tmp_path / "mutants.toml"
    assert load_equivalents(path) == {}
    path.write_text(
        '[[equivalent]]\nid = "f:L3:C5:delete-Assign"\nreason = "x is never read"\n'
        '[[equivalent]]\nid = "g:L2:C9:const-0-1"\nreason = " 0 and 1 are both falsy here "\n'
    )
    found = load_equivalents(path)
    assert list(found) == ["f:L3:C5:delete-Assign", "g:L2:C9:const-0-1"]
    assert found["g:L2:C9:const-0-1"].reason == "0 and 1 are both falsy here"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[equivalent]]\nid = "f:L1:C1:x"\n', "equivalent mutant #1 needs exactly `id` and"),
        ('[[equivalent]]\nid = "f:L1:C1:x"\nreason = ""\n', "a non-empty `reason`"),
        ('[[mutant]]\nid = "f"\n', "expected only [[equivalent]] tables"),
        ("[[equivalent]\n", "not valid TOML"),
    ],
)
def test_equivalents_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mutants.toml"
    path.write_text(text)
    with pytest.raises(CourseError, match=re.escape(message)):
        load_equivalents(path)


def test_perceptron_equivalents_name_existing_mutants() -> None:
    assignment = Course.at(ROOT).assignment("perceptron")
    equivalents = load_equivalents(assignment.folder / "mutants.toml")
    known = {m.id for m in derive(reference_cells(assignment)[1], 0).mutants}
    assert set(equivalents) <= known, set(equivalents) - known


# --------------------------------------------------------------------------- a graded run
MINI_SPEC = """\
name = "mini"
notebook = "mini.ipynb"

[limits]
notebook_timeout = 30
call_timeout = 5
test_timeout = 10
memory_mb = 1024
max_processes = 64

[[questions]]
id = "add"
kind = "code"
tests = ["test_add_*"]

[[questions]]
id = "scale"
kind = "code"
tests = ["test_scale_*"]

[[questions]]
id = "pick"
kind = "choice"
choices = ["a", "b"]
answer = "a"
"""

MINI_TESTS = '''\
def test_add_values(student):
    """add() adds"""
    assert student.add(2, 3) == 5, "add(2, 3) should be 5"
    assert student.add(-4, 1) == -3, "add(-4, 1) should be -3"


def test_scale_apply(student):
    """Scaler(k).apply(x) is k * x"""
    assert student.Scaler(3).apply(2) == 6, "Scaler(3).apply(2) should be 6"
'''

MINI_REFERENCE = [
    "import math",
    "def _half(x):\n    return x / 2\n\n\ndef add(a, b):\n    return _half(2 * a) + b\n",
    "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n"
    "    def apply(self, x):\n        if x > 100:\n            return 0\n"
    "        return self.k * x\n",
    "def unused(x):\n    return x - 1\n",
    "answer_pick = 'a'",
]

MINI_EQUIVALENTS = """\
[[equivalent]]
id = "Scaler.apply:L2:C14:compare-Gt-GtE"
reason = "x is never 100 in the tests"

[[equivalent]]
id = "gone:L2:C5:delete-Assign"
reason = "a function that no longer exists"
"""


def make_mini_course(root: Path) -> Course:
    folder = root / "assignments" / "mini"
    (folder / "hidden_tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(MINI_SPEC)
    (folder / "hidden_tests" / "test_mini.py").write_text(MINI_TESTS)
    (folder / "mutants.toml").write_text(MINI_EQUIVALENTS)
    write_notebook(folder / "mini.ipynb", ["def add(a, b):\n    raise NotImplementedError"])
    write_notebook(root / "reference_solutions" / "mini" / "mini.ipynb", MINI_REFERENCE)
    return Course.at(root)


def test_attribution_exclusions_and_scores(tmp_path: Path) -> None:
    course = make_mini_course(tmp_path)
    options = MutationOptions(
        functools.partial(LocalSandbox, mask=(course.root,)), jobs=2, max_per_function=4
    )
    report = run_mutants(course.assignment("mini"), options)
    # Knock-outs: the helper belongs to the question whose function calls it; nobody
    # depends on `unused`, so it is not mutated.
    assert report.owners == {
        "_half": ("add",),
        "add": ("add",),
        "Scaler": ("scale",),
        "unused": (),
    }
    assert report.unowned == ["unused"]
    assert {r.mutant.function for r in report.results} == {
        "_half",
        "add",
        "Scaler.__init__",
        "Scaler.apply",
    }
    assert report.derived["add"] == (4, 5) and report.derived["_half"] == (2, 2)
    verdicts = {r.mutant.id: r.verdict for r in report.results}
    assert verdicts["_half:L2:C14:binop-Div-Mult"] is Verdict.CAUGHT
    assert verdicts["Scaler.__init__:L2:C9:delete-Assign"] is Verdict.CAUGHT
    assert verdicts["Scaler.apply:L2:C14:compare-Gt-GtE"] is Verdict.EXCLUDED
    assert verdicts["Scaler.apply:L2:C16:const-100-101"] is Verdict.SURVIVED
    (excluded,) = report.excluded
    assert excluded.note == "x is never 100 in the tests"
    assert [e.id for e in report.stale] == ["gone:L2:C5:delete-Assign"]
    assert {r.mutant.id for r in report.survivors} == {
        i for i, v in verdicts.items() if v is Verdict.SURVIVED
    }
    scores = {q.question_id: q for q in report.questions}
    assert list(scores) == ["add", "scale"]  # code questions; `pick` owns no mutant
    assert scores["add"].score == 1.0 and scores["add"].passed
    scale = scores["scale"]
    assert scale.mutants == 5 and scale.excluded == 1  # __init__: 1, apply: 4 of 5
    assert scale.caught == sum(
        1 for r in report.results if "scale" in r.questions and r.verdict is Verdict.CAUGHT
    )
    assert scale.score is not None and scale.score < 0.9 and not report.passed
    assert report.problems == [
        f"mutation testing: the hidden tests of 'scale' catch {scale.caught} of 4 mutants "
        f"({scale.score:.0%}, below 90%); strengthen them (`autograder validate mini` lists "
        "the survivors) or record equivalent mutants in mutants.toml"
    ]
    assert report.graded == 1 + 4 + len(report.results) - 1  # reference, knock-outs, mutants


# --------------------------------------------------------------------------- the CLI
def test_validate_options_are_checked() -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["validate", "perceptron", "--threshold", "1.5"])
    assert done.exit_code == 2 and "less than or equal to 1" in done.output, done.output
    done = runner.invoke(app, ["publish", "--help"])
    assert "--no-mutants" in done.output


def test_validate_skips_mutants_when_the_reference_fails(tmp_path: Path) -> None:
    course = make_mini_course(tmp_path)
    broken = [c.replace("+ b", "- b") for c in MINI_REFERENCE]
    write_notebook(course.root / "reference_solutions" / "mini" / "mini.ipynb", broken)
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "validate", "mini", "--course", str(course.root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "reference: 2/3; template: 0/3" in done.stdout, done.stdout
    assert "problem: the reference scores 0.0/1.0 on 'add'" in done.stdout
    assert "mutation testing skipped: fix the problems above first" in done.stdout


@pytest.mark.slow
def test_validate_perceptron_prints_the_table_and_exit_code(tmp_path: Path) -> None:
    for part in ("assignments/perceptron", "reference_solutions/perceptron"):
        shutil.copytree(ROOT / part, tmp_path / part)
    command = ["validate", "perceptron", "--course", str(tmp_path), "--jobs", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "autograder", *command],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    out = done.stdout
    assert "reference: 11/13; template: 0/13" in out, out + done.stderr
    assert "Mutation testing of perceptron" in out, out + done.stderr
    rows = {
        m["question"]: m
        for m in re.finditer(
            r"│ (?P<question>\w+)\s+│\s+(?P<mutants>\d+) │\s+(?P<caught>\d+) │\s+(?P<excluded>\d+) "
            r"│\s+(?P<score>\d+%|n/a) │\s+(?P<result>PASS|FAIL|n/a) │",
            out,
        )
    }
    assert set(rows) == {"predict", "train", "and_weights"}, out
    for row in rows.values():
        if row["score"] != "n/a":
            counted = int(row["mutants"]) - int(row["excluded"])
            assert row["score"] == f"{int(row['caught']) / counted:.0%}"
            wanted = "PASS" if int(row["caught"]) >= 0.9 * counted - 1e-9 else "FAIL"
            assert row["result"] == wanted, row.group(0)
    failing = any(row["result"] == "FAIL" for row in rows.values())
    assert done.returncode == (1 if failing else 0), out + done.stderr
    assert ("Survivors" in out) == bool(re.search(r"\n  perceptron_\w+:L\d+:C\d+:", out))
