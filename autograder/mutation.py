"""Mutation testing of an assignment's hidden tests: do they notice a wrong reference?

Mutants are small, single changes to the reference solution (an operator flipped, a
constant changed, two arguments swapped, a statement deleted, a term dropped), made in
the code of the reference's cells with `ast` and written as mutant notebooks. Each is
graded like a submission; a mutant is *caught* when a question it belongs to loses
points (or the notebook crashes or times out). Only the bodies (and default arguments)
of top-level functions and of the methods of top-level classes are mutated; imports,
top-level code and `answer_*` assignments never are.

Which question does a function belong to? Each top-level function or class is knocked
out once (its body, or every method body, replaced by `raise NotImplementedError`) and
graded: the questions that lose points own it, and its mutants count for them.

A mutant id is stable under edits elsewhere in the notebook:

    perceptron_train:L19:C36:binop-Mult-Div
    └ function       └ line counted from the `def` line (L1), then the 1-based column of
                       the operator (or of the node that changes), then what changed

`assignments/<name>/mutants.toml` lists equivalent mutants (changes nothing observable),
which are excluded from the score, each with a reason:

    [[equivalent]]
    id = "perceptron_train:L21:C9:delete-If"
    reason = "never stops early; after a clean epoch the weights no longer change"
"""

from __future__ import annotations

import ast
import copy
import enum
import io
import os
import tempfile
import time
import tokenize
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from autograder import workers as worker_processes
from autograder.course import Assignment
from autograder.errors import AutograderError, CourseError, SandboxError
from autograder.grader.reference import reference_file
from autograder.grader.run import Grader
from autograder.notebook import read_notebook, to_python
from autograder.results import Outcome, Status, SubmissionResult
from autograder.sandbox.base import Sandbox
from autograder.spec import QuestionKind

MUTANTS_FILE = "mutants.toml"
DEFAULT_THRESHOLD = 0.9
DEFAULT_MAX_PER_FUNCTION = 25
DEFAULT_JOBS = max(1, min(4, (os.cpu_count() or 2) // 2))
MAX_WORKER_CRASHES = 2

# --------------------------------------------------------------------------- operators
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.MatMult: ast.Mult,
    ast.Pow: ast.Mult,
}
COMPARE_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
# The (first) token of each operator, to point a mutant id at it.
# fmt: off
SYMBOLS: dict[type[ast.AST], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.MatMult: "@", ast.Pow: "**", ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=",
    ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is", ast.In: "in",
    ast.NotIn: "not", ast.And: "and", ast.Or: "or",
}
# fmt: on
SKIPPED_FIELDS = {"decorator_list", "returns", "annotation", "type_comment", "type_params"}


@dataclass(frozen=True)
class Mutant:
    """One single change to the reference: where, what, and the cell's mutated source."""

    id: str  # "perceptron_train:L19:C36:binop-Mult-Div"
    function: str  # "perceptron_train", or "Class.method"
    unit: str  # the top-level function or class knocked out to attribute it
    cell: int  # index of the cell among the notebook's cells
    line: int  # line in the cell's code, 1-based
    operator: str  # "binop-Mult-Div"
    before: str  # the source line
    after: str  # the same line, mutated
    source: str  # the whole cell's code, mutated


@dataclass(frozen=True)
class Cell:
    index: int
    code: str  # plain Python (IPython syntax rewritten)


@dataclass(frozen=True)
class Derived:
    """What `derive` finds in a reference: every mutant, and the capped selection."""

    mutants: list[Mutant]  # every candidate, in source order
    selected: list[Mutant]  # at most `max_per_function` per function, spread over it
    units: dict[str, Cell]  # top-level function or class -> its cell
    skipped_cells: list[int]  # cells that are not valid Python (left alone)


@dataclass(frozen=True)
class _Between:
    """The operator token between two operands (where a mutant id points)."""

    left: ast.AST
    right: ast.AST
    symbol: str


@dataclass(frozen=True)
class _Candidate:
    node: ast.AST  # in the original tree; its path is the same in a copy
    path: tuple[tuple[str, int | None], ...]
    make: Callable[[Any], ast.AST | None]  # copy of the node -> replacement (None: `pass`)
    operator: str
    at: _Between | None  # None: the node's own position


def _walk(
    node: ast.AST, path: tuple[tuple[str, int | None], ...] = ()
) -> Iterator[tuple[ast.AST, tuple[tuple[str, int | None], ...]]]:
    """Depth-first, parents before children, skipping annotations, decorators, docstrings."""
    yield node, path
    for name, value in ast.iter_fields(node):
        if name in SKIPPED_FIELDS:
            continue
        if isinstance(value, ast.AST):
            yield from _walk(value, (*path, (name, None)))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, ast.AST) or (
                    name == "body" and i == 0 and _docstring(item)
                ):
                    continue
                yield from _walk(item, (*path, (name, i)))


def _docstring(stmt: ast.AST) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _get(tree: ast.AST, path: tuple[tuple[str, int | None], ...]) -> Any:
    node: Any = tree
    for name, index in path:
        node = getattr(node, name) if index is None else getattr(node, name)[index]
    return node


def _set(tree: ast.AST, path: tuple[tuple[str, int | None], ...], new: ast.AST) -> None:
    parent, (name, index) = _get(tree, path[:-1]), path[-1]
    if index is None:
        setattr(parent, name, new)
    else:
        getattr(parent, name)[index] = new


def _const_changes(value: object) -> list[bool | int | float]:
    """int n -> n+1 (and 0 <-> 1), float x -> 2x (0.0 -> 1.0), True <-> False."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return list(dict.fromkeys([value + 1, *([0] if value == 1 else [])]))
    if isinstance(value, float):
        return [1.0 if value == 0.0 else value * 2]
    return []


Change = tuple[Callable[[Any], ast.AST | None], str, _Between | None]


# Builders: the copy of the original node in, its replacement out.
def _binop(n: ast.BinOp, op: type[ast.operator]) -> ast.AST:
    return ast.BinOp(n.left, op(), n.right)


def _augassign(n: ast.AugAssign, op: type[ast.operator]) -> ast.AST:
    return ast.AugAssign(n.target, op(), n.value)


def _compare(n: ast.Compare, i: int, op: type[ast.cmpop]) -> ast.AST:
    return ast.Compare(n.left, [*n.ops[:i], op(), *n.ops[i + 1 :]], n.comparators)


def _boolop(n: ast.BoolOp, op: type[ast.boolop]) -> ast.AST:
    return ast.BoolOp(op(), n.values)


def _left(n: ast.BinOp) -> ast.AST:
    return n.left


def _right(n: ast.BinOp) -> ast.AST:
    return n.right


def _minus_right(n: ast.BinOp) -> ast.AST:
    return ast.UnaryOp(ast.USub(), n.right)


def _operand(n: ast.UnaryOp) -> ast.AST:
    return n.operand


def _constant(_: ast.Constant, value: bool | int | float) -> ast.AST:
    return ast.Constant(value)


def _swap(n: ast.Call, i: int) -> ast.AST:
    args = [*n.args[:i], n.args[i + 1], n.args[i], *n.args[i + 2 :]]
    return ast.Call(n.func, args, n.keywords)


def _deleted(_: ast.stmt) -> None:
    return None  # the statement becomes `pass`


def _changes(node: ast.AST) -> list[Change]:
    """The single changes the operators make to one node (statement deletion aside)."""
    out: list[Change] = []
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        old, new = type(node.op), BINOP_SWAPS[type(node.op)]
        at = _Between(node.left, node.right, SYMBOLS[old])
        out.append((partial(_binop, op=new), f"binop-{old.__name__}-{new.__name__}", at))
        if old is ast.Add:
            out += [(_left, "drop-Add-right", at), (_right, "drop-Add-left", at)]
        elif old is ast.Sub:
            out += [(_left, "drop-Sub-right", at), (_minus_right, "drop-Sub-left", at)]
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAPS:
        old, new = type(node.op), BINOP_SWAPS[type(node.op)]
        at = _Between(node.target, node.value, SYMBOLS[old] + "=")
        out.append((partial(_augassign, op=new), f"augassign-{old.__name__}-{new.__name__}", at))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            left = node.left if i == 0 else node.comparators[i - 1]
            at = _Between(left, node.comparators[i], SYMBOLS[type(op)])
            for swap in COMPARE_SWAPS.get(type(op), ()):
                name = f"compare-{type(op).__name__}-{swap.__name__}"
                out.append((partial(_compare, i=i, op=swap), name, at))
    elif isinstance(node, ast.BoolOp):
        old_b = type(node.op)
        new_b: type[ast.boolop] = ast.Or if old_b is ast.And else ast.And
        at = _Between(node.values[0], node.values[1], SYMBOLS[old_b])
        out.append((partial(_boolop, op=new_b), f"boolop-{old_b.__name__}-{new_b.__name__}", at))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        out.append((_operand, f"unary-{type(node.op).__name__}-removed", None))
    elif isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
        for value in _const_changes(node.value):
            out.append((partial(_constant, value=value), f"const-{node.value!r}-{value!r}", None))
    elif isinstance(node, ast.Call):
        for i in range(len(node.args) - 1):
            a, b = node.args[i], node.args[i + 1]
            if ast.Starred in (type(a), type(b)) or ast.dump(a) == ast.dump(b):
                continue
            out.append((partial(_swap, i=i), f"swap-args-{i + 1}-{i + 2}", None))
    return out


def _candidates(function: ast.AST, base: tuple[tuple[str, int | None], ...]) -> list[_Candidate]:
    """Every single change inside one function (its body and default arguments)."""
    found: list[_Candidate] = []
    own_returns = [n for n in _own_nodes(function) if isinstance(n, ast.Return)]
    body = getattr(function, "body", [])
    final = body[-1] if body and isinstance(body[-1], ast.Return) else None
    for node, rel in _walk(function):
        if node is function:
            continue
        path = (*base, *rel)
        for make, operator, at in _changes(node):
            found.append(_Candidate(node, path, make, operator, at))
        if isinstance(node, ast.stmt) and not isinstance(node, ast.Pass):
            if isinstance(node, ast.Return) and (node is final or len(own_returns) == 1):
                continue  # deleting the function's result is caught by any test
            found.append(_Candidate(node, path, _deleted, f"delete-{type(node).__name__}", None))
    return found


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function, not those of the functions and classes nested in it."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


_Tokens = list[tokenize.TokenInfo]


def _locate(
    node: ast.AST, at: _Between | None, tokens: _Tokens, lines: list[str]
) -> tuple[int, int]:
    """(line, 0-based character column) of a node, or of the operator between two operands."""
    if at is None:
        line = node.lineno  # type: ignore[attr-defined]
        return line, _chars(lines, line, node.col_offset)  # type: ignore[attr-defined]
    left, right = at.left, at.right
    start = (left.end_lineno, _chars(lines, left.end_lineno, left.end_col_offset))  # type: ignore[attr-defined]
    stop = (right.lineno, _chars(lines, right.lineno, right.col_offset))  # type: ignore[attr-defined]
    for tok in tokens:
        if start <= tok.start < stop and tok.string == at.symbol:
            return tok.start
    return start


def _chars(lines: list[str], line: int, byte_col: int) -> int:
    """ast columns count UTF-8 bytes; editors count characters."""
    return len(lines[line - 1].encode()[:byte_col].decode(errors="replace"))


def _display(tree: ast.AST, mutated: ast.AST, path: tuple[Any, ...]) -> tuple[str, str]:
    """The first line that differs in the statement holding the change, before and after
    (both as `ast.unparse` writes them, so that they compare at a glance)."""
    while not isinstance(_get(tree, path), ast.stmt):
        path = path[:-1]
    old = ast.unparse(_get(tree, path)).splitlines()
    new = ast.unparse(_get(mutated, path)).splitlines()
    for i, line in enumerate(old):
        if i >= len(new) or new[i] != line:
            more = " ..." if new == ["pass"] and len(old) > 1 else ""
            return line.strip() + more, new[i].strip() if i < len(new) else ""
    return old[0].strip(), new[0].strip()


def _functions(tree: ast.Module) -> Iterator[tuple[str, str, ast.AST, tuple[Any, ...]]]:
    """(name, unit, node, path) of every top-level function and top-level class method."""
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield stmt.name, stmt.name, stmt, (("body", i),)
        elif isinstance(stmt, ast.ClassDef):
            for j, item in enumerate(stmt.body):
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{stmt.name}.{item.name}", stmt.name, item, (("body", i), ("body", j))


def mutants_of(code: str, cell: int = 0, seen: dict[str, int] | None = None) -> list[Mutant]:
    """Every mutant of one cell's code, in source order; each compiles, none is a no-op.

    `seen` counts the ids already given (across cells); a repeated id gets `#2`, `#3`, ...
    """
    tree = ast.parse(code)
    lines = code.splitlines() or [""]
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    original = ast.unparse(tree)
    seen = {} if seen is None else seen
    out: list[Mutant] = []
    for name, unit, function, base in _functions(tree):
        sources: set[str] = set()
        def_line = function.lineno  # type: ignore[attr-defined]
        located = [(_locate(c.node, c.at, tokens, lines), c) for c in _candidates(function, base)]
        for (line, col), cand in sorted(located, key=lambda pair: pair[0]):
            mutated = copy.deepcopy(tree)
            new = cand.make(_get(mutated, cand.path))
            _set(mutated, cand.path, ast.Pass() if new is None else new)
            source = ast.unparse(ast.fix_missing_locations(mutated))
            if source == original or source in sources:
                continue
            try:
                compile(source, "<mutant>", "exec")
            except SyntaxError:
                continue
            sources.add(source)
            mid = f"{name}:L{line - def_line + 1}:C{col + 1}:{cand.operator}"
            seen[mid] = seen.get(mid, 0) + 1
            if seen[mid] > 1:
                mid += f"#{seen[mid]}"
            before, after = _display(tree, mutated, cand.path)
            out.append(Mutant(mid, name, unit, cell, line, cand.operator, before, after, source))
    return out


def select(mutants: list[Mutant], max_per_function: int) -> list[Mutant]:
    """At most `max_per_function` per function (0: all), evenly spread over the function."""
    by_function: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_function.setdefault(m.function, []).append(m)
    chosen: set[str] = set()
    for group in by_function.values():
        n = len(group)
        if max_per_function <= 0 or n <= max_per_function:
            chosen.update(m.id for m in group)
        else:
            chosen.update(group[i * n // max_per_function].id for i in range(max_per_function))
    return [m for m in mutants if m.id in chosen]


def knockout(code: str, unit: str) -> str:
    """The cell's code with `unit` (a top-level function, or every method of a top-level
    class) reduced to `raise NotImplementedError`."""
    tree = ast.parse(code)
    for _, owner, function, _ in _functions(tree):
        if owner == unit:
            function.body = [ast.Raise(ast.Name("NotImplementedError", ast.Load()))]  # type: ignore[attr-defined]
    return ast.unparse(ast.fix_missing_locations(tree))


# --------------------------------------------------------------------------- the reference
def reference_cells(assignment: Assignment) -> tuple[Path, list[Cell]]:
    """The reference file and its code cells (a .py reference is one cell)."""
    path = reference_file(assignment.reference_folder)
    if path.suffix == ".py":
        return path, [Cell(0, path.read_text(encoding="utf-8"))]
    return path, [Cell(c.index, to_python(c.source)) for c in read_notebook(path).cells]


def derive(cells: list[Cell], max_per_function: int = DEFAULT_MAX_PER_FUNCTION) -> Derived:
    """Every mutant of the reference's cells, and the selection that will be graded."""
    mutants: list[Mutant] = []
    units: dict[str, Cell] = {}
    skipped: list[int] = []
    seen: dict[str, int] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell.code)
        except SyntaxError:
            skipped.append(cell.index)
            continue
        for _, unit, _, _ in _functions(tree):
            units[unit] = cell
        mutants.extend(mutants_of(cell.code, cell.index, seen))
    return Derived(mutants, select(mutants, max_per_function), units, skipped)


def write_variant(reference: Path, cell: int, code: str, out: Path) -> Path:
    """A copy of the reference notebook with one cell's code replaced."""
    import nbformat  # here: the CLI imports this module for its defaults, and starts faster

    if reference.suffix == ".py":
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code)]
    else:
        nb = nbformat.read(reference, as_version=4)
        nb.cells[cell].source = code
    nbformat.write(nb, out)
    return out


# --------------------------------------------------------------------------- equivalents
@dataclass(frozen=True)
class Equivalent:
    id: str
    reason: str


def load_equivalents(path: Path) -> dict[str, Equivalent]:
    """The `[[equivalent]]` entries of `mutants.toml` (none if the file does not exist)."""
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CourseError(f"{path}: not valid TOML: {exc}") from None
    entries = raw.get("equivalent", [])
    unknown = set(raw) - {"equivalent"}
    if unknown or not isinstance(entries, list):
        raise CourseError(
            f"{path}: expected only [[equivalent]] tables with `id` and `reason`, "
            f"found {', '.join(sorted(unknown)) or 'equivalent = ' + repr(entries)}"
        )
    found: dict[str, Equivalent] = {}
    for n, entry in enumerate(entries, 1):
        ok = isinstance(entry, dict) and set(entry) == {"id", "reason"}
        if not ok or not all(isinstance(v, str) and v.strip() for v in entry.values()):
            raise CourseError(
                f"{path}: equivalent mutant #{n} needs exactly `id` and a non-empty `reason` "
                f"(got {entry!r})"
            )
        found[entry["id"]] = Equivalent(entry["id"], entry["reason"].strip())
    return found


# --------------------------------------------------------------------------- the report
class Verdict(enum.StrEnum):
    CAUGHT = "caught"
    SURVIVED = "survived"
    EXCLUDED = "excluded"  # listed as equivalent in mutants.toml
    FAILED = "failed"  # the grader could not grade it; counted as not caught


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    questions: tuple[str, ...]  # the questions owning its function
    verdict: Verdict
    note: str = ""  # how it was caught, why excluded, why grading failed
    duration_s: float = 0.0
    by_timeout: bool = False  # caught only by a time limit (a busy machine could do that)


@dataclass(frozen=True)
class QuestionScore:
    question_id: str
    mutants: int  # owned by the question, excluded ones included
    caught: int
    excluded: int
    threshold: float

    @property
    def counted(self) -> int:
        return self.mutants - self.excluded

    @property
    def score(self) -> float | None:
        """Share of counted mutants caught; None without any."""
        return self.caught / self.counted if self.counted else None

    @property
    def passed(self) -> bool:
        return self.score is None or self.score >= self.threshold - 1e-9


@dataclass
class MutationReport:
    assignment: str
    threshold: float
    max_per_function: int
    questions: list[QuestionScore] = field(default_factory=list)
    results: list[MutantResult] = field(default_factory=list)
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # unit -> questions
    derived: dict[str, tuple[int, int]] = field(default_factory=dict)  # function: (kept, all)
    stale: list[Equivalent] = field(default_factory=list)  # ids no mutant has any more
    notes: list[str] = field(default_factory=list)
    graded: int = 0  # notebooks graded: the reference, knock-outs, mutants
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(q.passed for q in self.questions)

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if r.verdict in (Verdict.SURVIVED, Verdict.FAILED)]

    @property
    def excluded(self) -> list[MutantResult]:
        return [r for r in self.results if r.verdict is Verdict.EXCLUDED]

    @property
    def by_timeout(self) -> list[MutantResult]:
        return [r for r in self.results if r.by_timeout]

    @property
    def unowned(self) -> list[str]:
        """Top-level functions and classes no graded question depends on (not mutated)."""
        return [unit for unit, qs in self.owners.items() if not qs]

    @property
    def problems(self) -> list[str]:
        out = []
        for q in self.questions:
            if not q.passed and q.score is not None:
                out.append(
                    f"mutation testing: the hidden tests of {q.question_id!r} catch {q.caught} "
                    f"of {q.counted} mutants ({q.score:.0%}, below {self.threshold:.0%}); "
                    f"strengthen them (`autograder validate {self.assignment}` lists the "
                    f"survivors) or record equivalent mutants in {MUTANTS_FILE}"
                )
        return out


@dataclass(frozen=True)
class MutationOptions:
    """How mutation testing runs. `make_sandbox` is called once in every worker process,
    so it must pickle: a module-level function or a `functools.partial` of one."""

    make_sandbox: Callable[[], Sandbox]
    jobs: int = DEFAULT_JOBS
    threshold: float = DEFAULT_THRESHOLD
    max_per_function: int = DEFAULT_MAX_PER_FUNCTION


Progress = Callable[[int, int, str], None]  # (done, total, what was just graded)


# --------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class Graded:
    """What a worker sends back: the scores of one notebook and how its run ended."""

    status: Status
    scores: dict[str, float | None]
    message: str
    duration_s: float
    failures: dict[str, str] = field(default_factory=dict)  # question: its first failed test

    @classmethod
    def of(cls, result: SubmissionResult) -> Graded:
        scores = {q.question_id: q.score for q in result.questions}
        failures: dict[str, str] = {}
        for t in result.tests:
            if t.question_id is not None and t.outcome is not Outcome.PASSED:
                failures.setdefault(t.question_id, f"{t.test_id} {t.outcome.value}")
        return cls(result.status, scores, result.message, result.duration_s, failures)


_grader: Grader | None = None
_grader_error: AutograderError | None = None


def _init_worker(assignment: Assignment, make_sandbox: Callable[[], Sandbox]) -> None:
    global _grader, _grader_error
    try:
        _grader = Grader.hidden(assignment, make_sandbox())
    except AutograderError as exc:  # raised again with the first task
        _grader_error = exc


def _grade_in_worker(key: str, path: str) -> Graded:
    if _grader_error is not None:
        raise _grader_error
    assert _grader is not None, "worker not initialised"
    # A sandbox that fails is tried once more by the grader itself.
    return Graded.of(_grader.grade(key, Path(path), key))


class _Workers:
    """Worker processes (`autograder.workers`), one `Grader` each, rebuilt if one dies."""

    def __init__(self, assignment: Assignment, options: MutationOptions) -> None:
        self.assignment, self.options = assignment, options
        self.pool: ProcessPoolExecutor | None = None

    def grade(self, jobs: dict[str, Path], done: Callable[[str], None]) -> dict[str, Graded | str]:
        """Grade every notebook; a string result says why one could not be graded."""
        results: dict[str, Graded | str] = {}
        crashes: dict[str, int] = {}
        pending = dict(jobs)
        while pending:
            if self.pool is None:
                self.pool = worker_processes.pool(
                    worker_processes.context(),
                    max(1, min(self.options.jobs, len(pending))),
                    _init_worker,
                    (self.assignment, self.options.make_sandbox),
                )
            futures: dict[Future[Graded], str] = {
                self.pool.submit(_grade_in_worker, key, str(path)): key
                for key, path in pending.items()
            }
            retry: dict[str, Path] = {}
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in finished:
                    key = futures[future]
                    try:
                        results[key] = future.result()
                    except BrokenProcessPool:
                        crashes[key] = crashes.get(key, 0) + 1
                        if crashes[key] < MAX_WORKER_CRASHES:
                            retry[key] = pending[key]
                            continue
                        results[key] = "the grader's worker process crashed on it twice"
                    except (CourseError, SandboxError) as exc:
                        raise type(exc)(f"while grading {key}: {exc}") from None
                    except AutograderError:
                        raise
                    except Exception as exc:
                        results[key] = f"internal error ({type(exc).__name__}: {exc})"
                    done(key)
            if retry:
                self.close()
            pending = retry
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


# --------------------------------------------------------------------------- the run
REFERENCE_KEY = "reference"


def _lost(graded: Graded | str, baseline: Graded, questions: tuple[str, ...]) -> list[str]:
    """The questions among `questions` scoring below the reference."""
    if isinstance(graded, str):
        return []
    return [
        q
        for q in questions
        if (baseline.scores.get(q) or 0.0) - (graded.scores.get(q) or 0.0) > 1e-9
    ]


def _judge(
    mutant: Mutant, graded: Graded | str, baseline: Graded, owners: tuple[str, ...]
) -> MutantResult:
    if isinstance(graded, str):
        return MutantResult(mutant, owners, Verdict.FAILED, f"not graded: {graded}")
    took = graded.duration_s
    if graded.status is Status.ERROR:  # a sandbox failure says nothing about the tests
        note = f"the sandbox failed twice: {graded.message[:160]}"
        return MutantResult(mutant, owners, Verdict.FAILED, note, took)
    if graded.status is Status.TIMEOUT:
        return MutantResult(mutant, owners, Verdict.CAUGHT, "the notebook timed out", took, True)
    why = {q: graded.failures.get(q, "lower score") for q in _lost(graded, baseline, owners)}
    if not why:
        return MutantResult(mutant, owners, Verdict.SURVIVED, "full marks", took)
    note = "lost points (" + "; ".join(f"{q}: {w}" for q, w in why.items()) + ")"
    by_timeout = all(w.endswith(Outcome.TIMEOUT.value) for w in why.values())
    return MutantResult(mutant, owners, Verdict.CAUGHT, note, took, by_timeout)


def _usable(graded: Graded | str, what: str) -> Graded:
    """A grade the run can build on: the reference's or a knock-out's (not a mutant's)."""
    if isinstance(graded, str):
        raise CourseError(f"{what} could not be graded: {graded}")
    if graded.status is Status.ERROR:
        raise SandboxError(f"the sandbox failed twice while grading {what}: {graded.message}")
    return graded


def _attribute(
    workers: _Workers,
    reference: tuple[Path, list[Cell]],
    units: dict[str, Cell],
    folder: Path,
    tick: Callable[[str], None],
) -> tuple[Graded, dict[str, tuple[str, ...]]]:
    """Grade the reference (the baseline) and one knock-out per function or class: the
    questions that lose points when a unit is knocked out own it."""
    ref_path, cells = reference
    jobs = {
        REFERENCE_KEY: ref_path
        if ref_path.suffix == ".ipynb"
        else write_variant(ref_path, 0, cells[0].code, folder / "reference.ipynb")
    }
    for n, (unit, cell) in enumerate(units.items()):
        path = folder / f"knockout{n}.ipynb"
        jobs[f"knockout:{unit}"] = write_variant(
            ref_path, cell.index, knockout(cell.code, unit), path
        )
    graded = workers.grade(jobs, tick)
    baseline = _usable(graded[REFERENCE_KEY], "the reference")
    auto = tuple(q for q, score in baseline.scores.items() if score is not None)
    owners = {
        unit: tuple(
            _lost(_usable(graded[f"knockout:{unit}"], f"{unit} knocked out"), baseline, auto)
        )
        for unit in units
    }
    return baseline, owners


def run_mutants(
    assignment: Assignment, options: MutationOptions, progress: Progress | None = None
) -> MutationReport:
    """Knock out each function to attribute it, then grade its mutants; return the report.

    Needs a reference that grades cleanly (publish's `validate`): each mutant is compared
    with the reference's own scores, question by question.
    """
    started = time.monotonic()
    ref_path, cells = reference_cells(assignment)
    derived = derive(cells, options.max_per_function)
    equivalents = load_equivalents(assignment.folder / MUTANTS_FILE)
    report = MutationReport(assignment.name, options.threshold, options.max_per_function)
    selected = {m.id for m in derived.selected}
    for m in derived.mutants:
        kept, total = report.derived.get(m.function, (0, 0))
        report.derived[m.function] = (kept + (m.id in selected), total + 1)
    known = {m.id for m in derived.mutants}
    report.stale = [e for e in equivalents.values() if e.id not in known]
    report.notes = [f"cell {i} is not valid Python: not mutated" for i in derived.skipped_cells]
    planned = [m for m in derived.selected if m.id not in equivalents]
    total, done = 1 + len(derived.units) + len(planned), 0

    def tick(key: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, key)

    workers = _Workers(assignment, options)
    with tempfile.TemporaryDirectory(prefix="autograder-mutants-") as tmp:
        try:
            reference = (ref_path, cells)
            baseline, report.owners = _attribute(workers, reference, derived.units, Path(tmp), tick)
            todo = [m for m in planned if report.owners[m.unit]]
            total -= len(planned) - len(todo)
            paths = {
                m.id: write_variant(ref_path, m.cell, m.source, Path(tmp) / f"mutant{n}.ipynb")
                for n, m in enumerate(todo)
            }
            graded = workers.grade(paths, tick)
        finally:
            workers.close()
    for m in derived.selected:
        owners = report.owners.get(m.unit, ())
        if not owners:
            continue  # no question depends on it: not graded
        if m.id in equivalents:
            note = equivalents[m.id].reason
            report.results.append(MutantResult(m, owners, Verdict.EXCLUDED, note))
        else:
            report.results.append(_judge(m, graded[m.id], baseline, owners))
    report.graded = 1 + len(derived.units) + len(graded)
    report.questions = _scores(assignment, report, options.threshold)
    report.wall_s = round(time.monotonic() - started, 1)
    return report


def _scores(
    assignment: Assignment, report: MutationReport, threshold: float
) -> list[QuestionScore]:
    """One row per question that owns mutants, and per code question (maybe with none)."""
    out = []
    for q in assignment.spec.questions:
        mine = [r for r in report.results if q.id in r.questions]
        if not mine and q.kind is not QuestionKind.CODE:
            continue
        caught = sum(r.verdict is Verdict.CAUGHT for r in mine)
        excluded = sum(r.verdict is Verdict.EXCLUDED for r in mine)
        out.append(QuestionScore(q.id, len(mine), caught, excluded, threshold))
    return out
