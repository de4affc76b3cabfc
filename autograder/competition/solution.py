"""The hidden side of a competition: the solution CSV and the inputs of code submissions.

The solution has the id column, the target column(s) and `Usage`: `Public` rows score the
public leaderboard, `Private` rows the private one, `Ignored` rows neither (a submission
must still predict them, so nobody can tell which rows count). It never leaves the
grader: not shipped to students, never mounted into a sandbox.

Ids are compared as text, spaces trimmed; when every solution id is an integer, `0017`,
`17` and `17.0` name the same row (spreadsheets and numpy like to reformat integers).
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.competition.errors import SHOWN_PROBLEMS, CompetitionError
from autograder.competition.metrics import Metric, MetricKind
from autograder.competition.spec import USAGE_COLUMN, Competition

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_INTEGER = re.compile(r"[+-]?\d+")
_INTEGER_LIKE = re.compile(r"[+-]?\d+(?:\.0*)?")


class Split(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Solution:
    """The solution, checked: one row per id, in file order."""

    path: Path
    digest: str  # sha256 of the file: scores remember which solution they came from
    metric: Metric
    ids: list[str]  # canonical ids
    targets: npt.NDArray[np.generic]  # labels: str (n,); numbers: float (n, k)
    usage: npt.NDArray[np.str_]  # Split values
    classes: list[str] | None  # class labels in output order (labels, probabilities)
    positive: str | None  # binary probabilities: the class whose probability is given
    integer_ids: bool
    index: dict[str, int] = field(default_factory=dict)
    _numeric_classes: dict[float, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index.update({sid: i for i, sid in enumerate(self.ids)})
        numbers = {c: _number(c) for c in self.classes or []}
        if numbers and all(v is not None for v in numbers.values()):
            self._numeric_classes.update({v: c for c, v in numbers.items() if v is not None})

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, split: Split) -> npt.NDArray[np.bool_]:
        return self.usage == split.value

    def canonical_id(self, text: str) -> str:
        """The id a submitted cell names (see the module docstring)."""
        text = text.strip()
        if self.integer_ids and _INTEGER_LIKE.fullmatch(text):
            return str(int(text.split(".", 1)[0]))
        return text

    def class_of(self, text: str) -> str | None:
        """The class a submitted label names, or None; `3.0` names class `3`."""
        text = text.strip()
        if self.classes is not None and text in self.classes:
            return text
        number = _number(text)
        return None if number is None else self._numeric_classes.get(number)

    def class_list(self) -> str:
        """The classes, for messages (long lists shortened)."""
        classes = self.classes or []
        shown = classes if len(classes) <= 12 else [*classes[:5], "...", *classes[-3:]]
        return ", ".join(shown)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_table(path: Path, what: str) -> tuple[bytes, list[str], list[tuple[int, list[str]]]]:
    """(raw bytes, header, [(line, cells)]) of an instructor's CSV; blank lines skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CompetitionError(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CompetitionError(
            f"{path}: the {what} is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise CompetitionError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise CompetitionError(f"{path}: the {what} is empty; it needs a header row")
    header = [h.strip() for h in rows[0][1]]
    return data, header, rows[1:]


def _find(header: list[str], name: str, path: Path, casefold: bool = False) -> int:
    names = [h.casefold() for h in header] if casefold else header
    key = name.casefold() if casefold else name
    if key not in names:
        raise CompetitionError(
            f"{path}: no column {name!r} (the header is {', '.join(header)}); "
            "check competition.toml's id_column and target_columns"
        )
    return names.index(key)


def _fail(path: Path, problems: list[str], what: str) -> CompetitionError:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = (
        f"; ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    )
    return CompetitionError(f"{path}: {len(problems)} problem(s) in the {what}: {shown}{more}")


def load_solution(competition: Competition) -> Solution:
    """Read and check the competition's solution; errors name the file and the lines."""
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    spec, path = competition.spec, competition.solution_path
    data, header, rows = read_table(path, "solution")
    id_at = _find(header, spec.id_column, path)
    usage_at = _find(header, USAGE_COLUMN, path, casefold=True)
    target_at = [_find(header, c, path) for c in spec.target_columns]
    raw_ids = [row[id_at].strip() if id_at < len(row) else "" for _, row in rows]
    integer_ids = bool(raw_ids) and all(_INTEGER.fullmatch(i) for i in raw_ids)
    kind = spec.metric.kind
    problems: list[str] = []
    ids: list[str] = []
    seen: dict[str, int] = {}
    usage: list[str] = []
    targets: list[list[str]] = []
    for line, row in rows:
        if len(row) != len(header):
            problems.append(f"line {line}: {len(row)} fields, the header has {len(header)}")
            continue
        raw = row[id_at].strip()
        sid = str(int(raw)) if integer_ids else raw
        split = row[usage_at].strip().casefold()
        if not sid:
            problems.append(f"line {line}: empty id")
        elif sid in seen:
            problems.append(f"line {line}: id {raw!r} again (first on line {seen[sid]})")
        if split not in {s.value for s in Split}:
            problems.append(
                f"line {line}: {USAGE_COLUMN} is {row[usage_at]!r}; use Public, Private or Ignored"
            )
        values = [row[i].strip() for i in target_at]
        for column, value in zip(spec.target_columns, values, strict=True):
            if kind is MetricKind.VALUE and _number(value) is None:
                problems.append(f"line {line}: {column} = {value!r} is not a finite number")
            elif kind is not MetricKind.VALUE and not value:
                problems.append(f"line {line}: {column} is empty")
            elif kind is not MetricKind.VALUE and spec.classes and value not in spec.classes:
                problems.append(f"line {line}: {column} = {value!r} is not in `classes`")
        seen.setdefault(sid, line)
        ids.append(sid)
        usage.append(split)
        targets.append(values)
    if problems:
        raise _fail(path, problems, "solution")
    usage_array = np.array(usage, dtype=str)
    for split in (Split.PUBLIC, Split.PRIVATE):
        if not (usage_array == split.value).any():
            raise CompetitionError(
                f"{path}: no {split.value.capitalize()} rows; both leaderboards need rows "
                f"(set {USAGE_COLUMN} to Public on some rows and Private on others)"
            )
    classes, positive, target_array = _targets(competition, targets, path)
    solution = Solution(
        path,
        hashlib.sha256(data).hexdigest(),
        spec.metric,
        ids,
        target_array,
        usage_array,
        classes,
        positive,
        integer_ids,
    )
    _check_splits(solution)
    return solution


def _targets(
    competition: Competition, targets: list[list[str]], path: Path
) -> tuple[list[str] | None, str | None, npt.NDArray[np.generic]]:
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    spec = competition.spec
    if spec.metric.kind is MetricKind.VALUE:
        return None, None, np.array([[float(v) for v in row] for row in targets], dtype=np.float64)
    labels = [row[0] for row in targets]
    classes = spec.classes or order_classes(set(labels))
    if len(classes) < 2:
        raise CompetitionError(f"{path}: every row has the class {classes[0]!r}; need two or more")
    positive = None
    if spec.metric.kind is MetricKind.PROBABILITY and len(classes) == 2:
        positive = spec.positive_class or classes[-1]
    return classes, positive, np.array(labels, dtype=str)


def order_classes(labels: set[str]) -> list[str]:
    """Class labels in the order scikit-learn's `classes_` has them: numeric when every
    label is a number, else as text."""
    if all(_number(label) is not None for label in labels):
        return sorted(labels, key=lambda label: (_number(label), label))
    return sorted(labels)


def _check_splits(solution: Solution) -> None:
    if solution.metric is not Metric.ROC_AUC or solution.classes is None:
        return
    for split in (Split.PUBLIC, Split.PRIVATE):
        present = set(solution.targets[solution.mask(split)].tolist())
        absent = [c for c in solution.classes if c not in present]
        if absent:
            raise CompetitionError(
                f"{solution.path}: ROC AUC is undefined on the {split.value} rows: no row of "
                f"class {', '.join(map(repr, absent))}; give each split rows of every class"
            )


@dataclass(frozen=True)
class Inputs:
    """What `predict(X)` of a code submission receives: X's rows, in the inputs file order."""

    ids: list[str]  # canonical, as the solution's
    features: list[str]
    X: npt.NDArray[np.float64]


def load_inputs(competition: Competition, solution: Solution) -> Inputs:
    """Read the code submissions' inputs (id + numeric features), one row per solution id."""
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    path = competition.inputs_path
    if path is None:
        raise CompetitionError(
            f"{competition.spec_path}: this competition takes CSV files only; add a [code] "
            'table with inputs = "data/test.csv" to accept notebooks'
        )
    _, header, rows = read_table(path, "inputs")
    id_at = _find(header, competition.spec.id_column, path)
    features = [h for i, h in enumerate(header) if i != id_at]
    if not features:
        raise CompetitionError(f"{path}: no feature columns besides {header[id_at]!r}")
    problems: list[str] = []
    ids: list[str] = []
    X = np.empty((len(rows), len(features)), dtype=np.float64)
    for n, (line, row) in enumerate(rows):
        if len(row) != len(header):
            problems.append(f"line {line}: {len(row)} fields, the header has {len(header)}")
            continue
        ids.append(solution.canonical_id(row[id_at]))
        cells = [c for i, c in enumerate(row) if i != id_at]
        for j, cell in enumerate(cells):
            try:
                X[n, j] = float(cell)
            except ValueError:
                problems.append(f"line {line}: {features[j]} = {cell!r} is not a number")
    if problems:
        raise _fail(path, problems, "inputs")
    if sorted(ids) != sorted(solution.ids):
        unknown = sorted(set(ids) - set(solution.ids))[:5]
        missing = sorted(set(solution.ids) - set(ids))[:5]
        raise CompetitionError(
            f"{path}: the inputs must have exactly the solution's ids, once each "
            f"(not in the solution: {unknown or 'none'}; missing: {missing or 'none'}; "
            f"{len(ids)} rows for {len(solution)} ids)"
        )
    return Inputs(ids, features, X)
