"""The hidden tests of an autograder assignment as plain in-process checks.

This file is not imported by the benchmark itself: `equivalent.py` appends a `setup(DATA)`
call (DATA: the hidden test files, `autograder/testing.py`, the reference solution's
definitions and the question table, all as source text) and the result is one
self-contained module. It runs wherever the anchors run the checks (an nbgrader test cell,
an otter test file, the floor's forked child) and needs only torch and numpy: no pytest,
no autograder.

What it reproduces of the autograder's grading, so that every method gives the same scores:
- the test cases pytest would collect (parametrize expanded, `weight` marks), mapped to the
  code questions by the spec's test-name globs; a case is worth
  points x weight / (total weight of its question);
- the `student` fixture: names read from the notebook's namespace, data crossing as copies
  (tensors, arrays, numbers, strings, containers of them), other objects as handles whose
  attribute reads, calls, item reads and iteration go to the real object; a missing name
  raises `MissingName`; `run_helper_code(source)` runs the source in a fresh namespace;
- the `reference` fixture: the reference solution's definitions;
- the seeds set before every test; the theory questions checked as the grader does.

What it does not reproduce: time limits, and the `forbid` rule of a question (the anchors
would need their own monkeypatching for that). The benchmark's class has no submission
that hangs or uses a forbidden API, so this costs no agreement.
"""

from __future__ import annotations

import fnmatch
import inspect
import itertools
import math
import random
import sys
import types
import zlib
from dataclasses import dataclass, field
from typing import Any

DATA: dict[str, Any] = {}
REFERENCE: types.ModuleType | None = None
CASES: list[Case] = []
_BY_KEY: dict[str, Case] = {}
NOT_ANSWERED = object()


# --------------------------------------------------------------------------- the proxy
class StudentCodeError(Exception):
    """The student's code raised, misbehaved or is missing; the test fails."""

    def __init__(self, message: str, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.traceback = traceback


class MissingName(StudentCodeError, AttributeError):
    """The notebook does not define a name a test needs."""


class StudentTimeout(StudentCodeError):
    pass


class SandboxCrashed(StudentCodeError):
    pass


class ForbiddenAPI(StudentCodeError):
    pass


class BadValue(StudentCodeError):
    pass


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _copy(value: Any, inbound: bool) -> Any:
    """A value crossing the boundary: data as a copy, any other object as a handle.

    Outbound (student -> test) objects become handles; inbound (test -> student) handles
    become their objects again. The cases follow the autograder's wire format.
    """
    if isinstance(value, Handle):
        return object.__getattribute__(value, "_obj") if inbound else value
    if value is None or type(value) in (bool, str, int, float, complex):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if _is_tensor(value):
        return value.detach().to("cpu").clone()
    np = _numpy()
    if np is not None and isinstance(value, np.ndarray) and value.dtype != object:
        return np.array(value, copy=True)
    if np is not None and isinstance(value, np.generic):
        item = value.item()
        if type(item) in (bool, int, float, complex, str):
            return item
    if isinstance(value, list | tuple):
        items = [_copy(v, inbound) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {_copy(k, inbound): _copy(v, inbound) for k, v in value.items()}
    return value if inbound else Handle(value)


def _out(value: Any) -> Any:
    return _copy(value, inbound=False)


def _in(value: Any) -> Any:
    return _copy(value, inbound=True)


class Handle:
    """A student object: attribute reads, calls and item reads go to it; data comes back copied."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        object.__setattr__(self, "_obj", obj)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _out(getattr(object.__getattribute__(self, "_obj"), name))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_obj"), name, _in(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj = object.__getattribute__(self, "_obj")
        return _out(obj(*(_in(a) for a in args), **{k: _in(v) for k, v in kwargs.items()}))

    def __getitem__(self, key: Any) -> Any:
        return _out(object.__getattribute__(self, "_obj")[_in(key)])

    def __len__(self) -> int:
        return len(object.__getattribute__(self, "_obj"))

    def __iter__(self) -> Any:
        for item in object.__getattribute__(self, "_obj"):
            yield _out(item)

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Handle) and object.__getattribute__(
            other, "_obj"
        ) is object.__getattribute__(self, "_obj")

    def __hash__(self) -> int:
        return id(object.__getattribute__(self, "_obj"))

    def __repr__(self) -> str:
        return f"<student {type(object.__getattribute__(self, '_obj')).__name__} object>"


class StudentProxy:
    """The `student` fixture over a notebook's namespace (a dict)."""

    __slots__ = ("_ns",)

    def __init__(self, namespace: dict[str, Any]) -> None:
        object.__setattr__(self, "_ns", namespace)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        namespace = object.__getattribute__(self, "_ns")
        if name not in namespace:
            raise MissingName(f"the notebook does not define `{name}`", "NameError")
        return _out(namespace[name])

    def run_helper_code(self, source: str) -> Handle:
        module = types.ModuleType("helpers")
        exec(compile(source, "<helper code>", "exec"), module.__dict__)
        return Handle(module)

    def __contains__(self, name: str) -> bool:
        return name in object.__getattribute__(self, "_ns")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("tests cannot change the notebook's globals")


# --------------------------------------------------------------------------- pytest stand-in
@dataclass
class Mark:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class _MarkDecorator:
    def __init__(self, mark: Mark) -> None:
        self.mark = mark

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]):
            func = args[0]
            func.pytestmark = [*getattr(func, "pytestmark", []), self.mark]
            return func
        return _MarkDecorator(Mark(self.mark.name, args, kwargs))


class _MarkGenerator:
    def __getattr__(self, name: str) -> _MarkDecorator:
        if name.startswith("__"):
            raise AttributeError(name)
        return _MarkDecorator(Mark(name))


@dataclass
class ParameterSet:
    values: tuple[Any, ...]
    marks: list[Mark]
    id: str | None


class Skipped(Exception):
    pass


class _Raises:
    def __init__(self, expected: Any, match: str | None = None) -> None:
        self.expected, self.match = expected, match

    def __enter__(self) -> _Raises:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            raise AssertionError(f"DID NOT RAISE {self.expected}")
        if not issubclass(exc_type, self.expected):
            return False
        if self.match is not None:
            import re

            if not re.search(self.match, str(exc)):
                raise AssertionError(f"the exception message does not match {self.match!r}")
        return True


class _Approx:
    def __init__(self, expected: Any, rel: float | None, abs_: float | None) -> None:
        self.expected, self.rel, self.abs = expected, rel, abs_

    def _close(self, a: Any, b: Any) -> bool:
        if isinstance(b, list | tuple):
            return len(a) == len(b) and all(self._close(x, y) for x, y in zip(a, b, strict=True))
        rel = 1e-6 if self.rel is None else self.rel
        tol = 1e-12 if self.abs is None else self.abs
        return math.isclose(a, b, rel_tol=rel, abs_tol=tol)

    def __eq__(self, other: object) -> bool:
        return self._close(other, self.expected)

    __hash__ = None  # type: ignore[assignment]


def _pytest_module() -> types.ModuleType:
    module = types.ModuleType("pytest")
    module.mark = _MarkGenerator()  # type: ignore[attr-defined]

    def param(*values: Any, marks: Any = (), id: str | None = None) -> ParameterSet:
        if isinstance(marks, _MarkDecorator):
            marks = (marks,)
        return ParameterSet(values, [m.mark for m in marks], id)

    def fail(reason: str = "", pytrace: bool = True) -> None:
        raise AssertionError(reason)

    def skip(reason: str = "") -> None:
        raise Skipped(reason)

    def raises(expected: Any, *, match: str | None = None) -> _Raises:
        return _Raises(expected, match)

    def approx(expected: Any, rel: float | None = None, abs: float | None = None) -> _Approx:
        return _Approx(expected, rel, abs)

    module.param, module.fail, module.skip = param, fail, skip  # type: ignore[attr-defined]
    module.raises, module.approx = raises, approx  # type: ignore[attr-defined]
    return module


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    key: str  # file::name[id]
    name: str  # name[id], what the spec's globs see
    func: Any
    params: dict[str, Any]
    fixtures: list[str]
    weight: float
    skipped: bool
    question: str | None = None
    points: float = 0.0


def _idval(value: Any, argname: str, index: int) -> str:
    if isinstance(value, str):
        return value
    if value is None or type(value) in (bool, int, float, complex):
        return str(value)
    name = getattr(value, "__name__", None)
    if isinstance(name, str) and (inspect.isclass(value) or inspect.isfunction(value)):
        return name
    return f"{argname}{index}"


def _axis(mark: Mark) -> list[tuple[str, dict[str, Any], list[Mark]]]:
    """One parametrize mark as a list of (id, params, marks)."""
    argnames = mark.args[0] if mark.args else mark.kwargs["argnames"]
    argvalues = mark.args[1] if len(mark.args) > 1 else mark.kwargs["argvalues"]
    ids = mark.kwargs.get("ids")
    names = (
        [n.strip() for n in argnames.split(",") if n.strip()]
        if isinstance(argnames, str)
        else list(argnames)
    )
    axis = []
    for i, raw in enumerate(argvalues):
        marks: list[Mark] = []
        given: str | None = None
        if isinstance(raw, ParameterSet):
            marks, given, values = raw.marks, raw.id, tuple(raw.values)
        elif len(names) == 1:
            values = (raw,)
        else:
            values = tuple(raw)
        if given is None and isinstance(ids, list | tuple) and i < len(ids):
            given = None if ids[i] is None else str(ids[i])
        if given is None and callable(ids):
            parts = [ids(v) for v in values]
            given = "-".join(
                _idval(v, n, i) if p is None else str(p)
                for p, v, n in zip(parts, values, names, strict=True)
            )
        if given is None:
            given = "-".join(_idval(v, n, i) for v, n in zip(values, names, strict=True))
        axis.append((given, dict(zip(names, values, strict=True)), marks))
    return axis


def _collect(filename: str, module: types.ModuleType) -> list[Case]:
    cases: list[Case] = []
    for name, func in list(vars(module).items()):
        if not name.startswith("test") or not inspect.isfunction(func):
            continue
        if func.__module__ != module.__name__:
            continue
        marks: list[Mark] = list(getattr(func, "pytestmark", []))
        axes = [_axis(m) for m in marks if m.name == "parametrize"]
        combos = itertools.product(*axes) if axes else [()]
        seen: dict[str, int] = {}
        fixtures = [
            p
            for p in inspect.signature(func).parameters
            if p not in {n for m in marks if m.name == "parametrize" for n in _names(m)}
        ]
        for unknown in set(fixtures) - {"student", "reference"}:
            raise RuntimeError(f"{filename}::{name} uses the fixture {unknown!r}: not supported")
        for combo in combos:
            params: dict[str, Any] = {}
            own: list[Mark] = []
            ids = []
            for given, values, pmarks in combo:
                ids.append(given)
                params.update(values)
                own.extend(pmarks)
            case_id = "-".join(ids)
            if case_id in seen:
                seen[case_id] += 1
                case_id = f"{case_id}{seen[case_id]}"
            else:
                seen[case_id] = 0
            full = f"{name}[{case_id}]" if axes else name
            all_marks = own + marks
            weight = next((m for m in all_marks if m.name == "weight"), None)
            skipped = any(
                m.name == "skip" or (m.name == "skipif" and m.args and bool(m.args[0]))
                for m in all_marks
            )
            cases.append(
                Case(
                    key=f"{filename}::{full}",
                    name=full,
                    func=func,
                    params=params,
                    fixtures=fixtures,
                    weight=float(weight.args[0]) if weight and weight.args else 1.0,
                    skipped=skipped,
                )
            )
    return cases


def _names(mark: Mark) -> list[str]:
    argnames = mark.args[0] if mark.args else mark.kwargs["argnames"]
    if isinstance(argnames, str):
        return [n.strip() for n in argnames.split(",") if n.strip()]
    return list(argnames)


# --------------------------------------------------------------------------- setup
def _module(name: str, source: str, filename: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def setup(data: dict[str, Any]) -> None:
    """Load the reference, the tests and the question table (once per process)."""
    global REFERENCE
    DATA.update(data)
    saved = {k: sys.modules.get(k) for k in data["fake_modules"]}
    fakes: dict[str, types.ModuleType] = {
        "pytest": _pytest_module(),
        "autograder": types.ModuleType("autograder"),
        "autograder.grader": types.ModuleType("autograder.grader"),
        "autograder.grader.proxy": types.ModuleType("autograder.grader.proxy"),
    }
    proxy = fakes["autograder.grader.proxy"]
    for cls in (StudentCodeError, MissingName, StudentTimeout, SandboxCrashed, ForbiddenAPI):
        setattr(proxy, cls.__name__, cls)
    proxy.BadValue, proxy.Handle, proxy.StudentProxy = BadValue, Handle, StudentProxy  # type: ignore[attr-defined]
    try:
        sys.modules.update(fakes)
        testing = _module("autograder.testing", data["testing"], "<autograder.testing>")
        fakes["autograder"].testing = testing  # type: ignore[attr-defined]
        fakes["autograder"].grader = fakes["autograder.grader"]  # type: ignore[attr-defined]
        fakes["autograder.grader"].proxy = proxy  # type: ignore[attr-defined]
        _seed(data["seed"])
        REFERENCE = types.ModuleType(f"bench_reference_{data['name']}")
        REFERENCE.__dict__["display"] = lambda *a, **k: None
        exec(compile(data["reference"], "<reference>", "exec"), REFERENCE.__dict__)
        for filename, source in data["tests"]:
            stem = filename.removesuffix(".py")
            module = _module(f"bench_tests_{data['name']}_{stem}", source, f"<{filename}>")
            CASES.extend(_collect(filename, module))
    finally:
        for key, old in saved.items():
            if old is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = old
    totals: dict[str, float] = {}
    for case in CASES:
        case.question = _question_for(case.name)
        if case.question is not None:
            totals[case.question] = totals.get(case.question, 0.0) + case.weight
    for case in CASES:
        if case.question is not None and totals[case.question] > 0:
            q = _question(case.question)
            case.points = q["points"] * case.weight / totals[case.question]
        _BY_KEY[case.key] = case
    CASES[:] = [c for c in CASES if c.question is not None]


def _question(qid: str) -> dict[str, Any]:
    return next(q for q in DATA["questions"] if q["id"] == qid)


def _question_for(test_name: str) -> str | None:
    base = test_name.split("[", 1)[0]
    for q in DATA["questions"]:
        if q["kind"] == "code" and any(fnmatch.fnmatchcase(base, p) for p in q["tests"]):
            return q["id"]
    return None


def _seed(value: int) -> None:
    random.seed(value)
    np = _numpy()
    if np is not None:
        np.random.seed(value % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(value)


def test_seed(key: str) -> int:
    return (DATA["seed"] * 1_000_003 + zlib.crc32(key.encode())) % 2**31


# --------------------------------------------------------------------------- running
def cases() -> list[dict[str, Any]]:
    """The graded checks: code cases, then one per auto-graded theory question."""
    out = [{"key": c.key, "question": c.question, "points": c.points} for c in CASES]
    for q in DATA["questions"]:
        if q["kind"] not in ("code", "text"):
            out.append({"key": f"answer::{q['id']}", "question": q["id"], "points": q["points"]})
    return out


def run(key: str, namespace: dict[str, Any]) -> None:
    """Run one check against a notebook namespace; raises AssertionError when it fails."""
    if key.startswith("answer::"):
        q = _question(key.removeprefix("answer::"))
        raw = namespace.get(f"answer_{q['id']}", NOT_ANSWERED)
        value = raw if raw is NOT_ANSWERED else _out(raw)
        ok, feedback = check_answer(q, value)
        if not ok:
            raise AssertionError(f"{q['id']}: {feedback}")
        return
    case = _BY_KEY[key]
    if case.skipped:
        raise AssertionError(f"{case.name} is skipped")
    _seed(test_seed(case.key))
    kwargs = dict(case.params)
    if "student" in case.fixtures:
        kwargs["student"] = StudentProxy(namespace)
    if "reference" in case.fixtures:
        kwargs["reference"] = REFERENCE
    try:
        case.func(**kwargs)
    except Skipped:
        raise AssertionError(f"{case.name} was skipped") from None


def score(namespace: dict[str, Any]) -> dict[str, Any]:
    """Every check against one namespace: total and per-question points, failed checks."""
    questions: dict[str, float] = {}
    failed: list[str] = []
    for check in cases():
        questions.setdefault(check["question"], 0.0)
        try:
            run(check["key"], namespace)
        except BaseException as exc:  # a failing check, whatever it raised
            if isinstance(exc, KeyboardInterrupt):
                raise
            failed.append(check["key"])
        else:
            questions[check["question"]] += check["points"]
    return {"total": sum(questions.values()), "questions": questions, "failed": failed}


def check_answer(q: dict[str, Any], value: Any) -> tuple[bool, str]:
    """A theory answer, judged as autograder/grader/theory.py does."""
    if value is NOT_ANSWERED or value is None:
        return False, "not answered"
    kind = q["kind"]
    if kind == "choice":
        if not isinstance(value, str):
            return False, "expected one letter as a string"
        letter = value.strip().lower().rstrip(").")
        if letter not in q["choices"]:
            return False, f"expected one of {', '.join(q['choices'])}, got {value!r}"
        return letter == q["answer"], "correct" if letter == q["answer"] else "incorrect"
    if kind == "bool":
        if type(value) is not bool:
            return False, f"expected True or False, got {type(value).__name__}"
        return value is q["answer"], "correct" if value is q["answer"] else "incorrect"
    if kind == "numeric":
        if type(value) not in (int, float):
            return False, f"expected a number, got {type(value).__name__}"
        if type(value) is float and not math.isfinite(value):
            return False, "expected a finite number"
        expected = q["answer"]
        if isinstance(expected, int) or float(expected).is_integer():
            if type(value) is int:
                ok = value == int(expected)
            else:
                ok = value.is_integer() and int(value) == int(expected)
        else:
            try:
                ok = math.isclose(value, expected, rel_tol=q["rtol"], abs_tol=q["atol"])
            except OverflowError:
                ok = False
        return ok, "correct" if ok else "incorrect"
    raise AssertionError(f"not an auto-graded theory question: {kind}")
