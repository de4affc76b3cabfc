"""Checking a submitted predictions CSV against the solution, before anything is scored.

A file is rejected, with the first problem lines named, when it is not UTF-8 CSV, has
the wrong columns, a row with the wrong number of fields, an id that is empty, repeated
or not in the test set, a missing id, or a value that does not fit the metric: a label
that is no class, a number that is not one (or NaN, inf), a probability outside [0, 1].
Multi-class probability rows are rescaled to sum to 1 (a row of zeros is rejected).

Pure: bytes in, `Predictions` (aligned with the solution's rows) or `SubmissionRejected` out.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autograder.competition.errors import SubmissionRejected
from autograder.competition.metrics import MetricKind
from autograder.competition.solution import Solution
from autograder.competition.spec import CompetitionSpec
from autograder.display import printable

if TYPE_CHECKING:
    from _csv import _reader

    import numpy as np
    import numpy.typing as npt

MAX_CSV_BYTES = 50 * 2**20
MAX_PROBLEMS = 1000  # problems collected per file; more are only counted
CELL_SHOWN = 40  # characters of a cell quoted in a message


@dataclass(frozen=True)
class Predictions:
    """A valid submission, row i predicting the solution's row i.

    labels: str (n,); numbers: float (n, k); probabilities: float (n,) of the positive
    class (binary) or (n, classes) in the solution's class order, rows summing to 1.
    """

    values: npt.NDArray[np.generic]


def expected_columns(spec: CompetitionSpec, solution: Solution) -> list[str]:
    """The columns a submission must have besides the id: the targets, or for multi-class
    probabilities one column per class."""
    if spec.metric.kind is MetricKind.PROBABILITY and solution.positive is None:
        return list(solution.classes or [])
    return list(spec.target_columns)


def _quote(cell: str) -> str:
    shown = cell if len(cell) <= CELL_SHOWN else cell[:CELL_SHOWN] + "…"
    return repr(printable(shown))


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []
        self.total = 0

    def add(self, line: int, text: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((line, text))

    def sorted(self) -> list[str]:
        return [text for _, text in sorted(self.items, key=lambda item: item[0])]


def read_predictions(
    data: bytes, filename: str, spec: CompetitionSpec, solution: Solution
) -> Predictions:
    """Check a submitted CSV and return its predictions; raises SubmissionRejected."""
    name = printable(filename)
    if len(data) > MAX_CSV_BYTES:
        raise SubmissionRejected(
            name, [f"the file has {len(data):,} bytes; the limit is {MAX_CSV_BYTES:,}"]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionRejected(
            name, [f"not UTF-8 text (byte {exc.start}); save the file as CSV UTF-8"]
        ) from None
    if not text.strip():
        raise SubmissionRejected(name, ["the file is empty"])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise SubmissionRejected(name, [f"line 1: not valid CSV ({exc})"]) from None
    columns = _check_header(header, spec, solution, name)
    return _read_rows(reader, header, columns, spec, solution, name)


def _check_header(
    header: list[str], spec: CompetitionSpec, solution: Solution, name: str
) -> dict[str, int]:
    wanted = [spec.id_column, *expected_columns(spec, solution)]
    expected = ",".join(wanted)
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        sep = next(s for s in (";", "\t", "|") if s in header[0])
        raise SubmissionRejected(
            name,
            [
                f"line 1: the columns are separated by {sep!r}, not commas; save the file "
                f"as comma-separated CSV with the header {expected}"
            ],
        )
    doubled = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in wanted if c not in header]
    extra = [h for h in header if h not in wanted]
    problems = []
    if doubled:
        problems.append(f"line 1: column(s) {', '.join(map(_quote, doubled))} appear twice")
    if missing or extra:
        got = ",".join(printable(h) for h in header)
        detail = []
        if missing:
            detail.append(f"missing {', '.join(map(_quote, missing))}")
        if extra:
            detail.append(f"unexpected {', '.join(map(_quote, extra))}")
        folded = {h.casefold() for h in header}
        hint = (
            " (column names are case-sensitive)"
            if any(c.casefold() in folded for c in missing)
            else ""
        )
        problems.append(
            f"line 1: wrong columns: expected {expected}, got {got} ({'; '.join(detail)}){hint}"
        )
    if problems:
        raise SubmissionRejected(name, problems)
    return {column: header.index(column) for column in wanted}


def _read_rows(
    reader: _reader,
    header: list[str],
    columns: dict[str, int],
    spec: CompetitionSpec,
    solution: Solution,
    name: str,
) -> Predictions:
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    kind = spec.metric.kind
    targets = expected_columns(spec, solution)
    n, k = len(solution), len(targets)
    values: npt.NDArray[np.generic] = (
        np.empty(n, dtype=object) if kind is MetricKind.LABEL else np.zeros((n, k))
    )
    problems = _Problems()
    first_line: dict[str, int] = {}
    rows = 0
    try:
        for row in reader:
            line = reader.line_num
            if not row:
                continue  # a blank line
            rows += 1
            if len(row) != len(header):
                problems.add(line, f"line {line}: {len(row)} fields, the header has {len(header)}")
                continue
            at = _row_index(row[columns[spec.id_column]], line, first_line, solution, problems)
            cells = [row[columns[c]] for c in targets]
            parsed = _parse_cells(cells, targets, kind, solution, line, problems)
            if at is None or parsed is None:
                continue
            if kind is MetricKind.LABEL:
                values[at] = parsed[0]
            else:
                values[at] = parsed
    except csv.Error as exc:
        problems.add(reader.line_num, f"line {reader.line_num}: not valid CSV ({exc})")
    missing = [sid for sid in solution.ids if sid not in first_line]
    summary = []
    if rows != n:
        summary.append(f"the file has {rows} data rows; the test set has {n}")
    if missing:
        shown = ", ".join(_quote(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        # No line to name: sorted after every line's problems.
        problems.add(2**62, f"{len(missing)} id(s) of the test set are missing: {shown}")
    if problems.total or summary:
        raise SubmissionRejected(name, summary + problems.sorted(), problems.total + len(summary))
    if kind is MetricKind.PROBABILITY and k > 1:
        values = values / values.sum(axis=1, keepdims=True)
    elif kind is MetricKind.PROBABILITY:
        values = values[:, 0]
    elif kind is MetricKind.LABEL:
        values = values.astype(str)
    return Predictions(values)


def _row_index(
    cell: str, line: int, first_line: dict[str, int], solution: Solution, problems: _Problems
) -> int | None:
    sid = solution.canonical_id(cell)
    if not sid:
        problems.add(line, f"line {line}: empty id")
        return None
    if sid in first_line:
        problems.add(
            line, f"line {line}: id {_quote(cell.strip())} again (first on line {first_line[sid]})"
        )
        return None
    at = solution.index.get(sid)
    if at is None:
        problems.add(line, f"line {line}: id {_quote(cell.strip())} is not in the test set")
        return None
    first_line[sid] = line
    return at


def _parse_cells(
    cells: list[str],
    columns: list[str],
    kind: MetricKind,
    solution: Solution,
    line: int,
    problems: _Problems,
) -> list[str] | list[float] | None:
    if kind is MetricKind.LABEL:
        label = solution.class_of(cells[0])
        if label is None:
            what = "empty" if not cells[0].strip() else f"{_quote(cells[0].strip())} is no class"
            problems.add(
                line, f"line {line}: {columns[0]}: {what} (classes: {solution.class_list()})"
            )
            return None
        return [label]
    numbers: list[float] = []
    ok = True
    for column, cell in zip(columns, cells, strict=True):
        text = cell.strip()
        try:
            value = float(text)
        except ValueError:
            what = "empty" if not text else f"{_quote(text)} is not a number"
            problems.add(line, f"line {line}: {column}: {what}")
            ok = False
            continue
        if not math.isfinite(value):
            problems.add(line, f"line {line}: {column}: {_quote(text)} (NaN and inf not allowed)")
            ok = False
        elif kind is MetricKind.PROBABILITY and not 0.0 <= value <= 1.0:
            problems.add(line, f"line {line}: {column}: {text} is not a probability in [0, 1]")
            ok = False
        numbers.append(value)
    if ok and kind is MetricKind.PROBABILITY and len(numbers) > 1 and sum(numbers) <= 0:
        problems.add(line, f"line {line}: every class has probability 0")
        ok = False
    return numbers if ok else None


def predictions_csv(ids: list[str], columns: list[str], rows: list[list[str]]) -> bytes:
    """A predictions CSV (what code submissions' outputs become, to be read like a file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for sid, row in zip(ids, rows, strict=True):
        writer.writerow([sid, *row])
    return buffer.getvalue().encode("utf-8")
