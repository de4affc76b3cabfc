"""Per-student feedback and the class summary (the `autograder report` verb's library side).

Reports are built from stored results only: they never see hidden tests or the answer
key, so neither can leak into them. Everything a student controls (answers, output,
error and test messages, even the student id) is treated as hostile text: autoescaped
in HTML, put in code spans or fenced blocks in Markdown.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from autograder.errors import AutograderError
from autograder.gradebook import StoredResult
from autograder.results import Outcome, QuestionResult, Status, TestResult, format_points
from autograder.spec import AssignmentSpec, QuestionKind

OUTPUT_LIMIT = 2_000  # characters of stdout / stderr shown
ANSWER_LIMIT = 5_000  # characters of a theory answer shown
MESSAGE_LIMIT = 1_000  # characters of one test message or status message shown
ERROR_LINE_LIMIT = 300

STATUS_LABELS = {
    Status.GRADED: "graded",
    Status.ERROR: "could not be graded",
    Status.TIMEOUT: "timed out",
    Status.MISSING: "no submission",
    Status.PENDING: "waiting for manual grading",
}
OUTCOME_LABELS = {
    Outcome.PASSED: "passed",
    Outcome.FAILED: "failed",
    Outcome.ERROR: "could not run (a problem on our side, not in your code)",
    Outcome.TIMEOUT: "timed out",
    Outcome.SKIPPED: "skipped",
    Outcome.FORBIDDEN: "used an API this question forbids",
}

_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_RESERVED_STEMS = {"summary"}  # would overwrite summary.md / summary.html


@dataclass(frozen=True)
class ReportPaths:
    """What `write_reports` wrote."""

    students: list[Path]  # <stem>.md and <stem>.html per student, in student order
    summary_md: Path
    summary_html: Path


@dataclass(frozen=True)
class Excerpt:
    text: str
    note: str = ""  # says what was cut, e.g. "first 2,000 of 9,120 characters"


@dataclass(frozen=True)
class CheckView:
    label: str  # first line of the test's docstring; may be empty
    test_id: str
    outcome: str
    passed: bool
    message: Excerpt | None


@dataclass(frozen=True)
class QuestionView:
    id: str
    title: str
    kind: str
    score_text: str
    pending: bool
    is_code: bool
    checks: list[CheckView]
    answer: Excerpt | None  # theory questions only; None there means "no answer given"
    feedback: str


@dataclass(frozen=True)
class StudentView:
    student_id: str
    stem: str
    status: str
    status_label: str
    message: Excerpt | None
    score_text: str
    max_text: str
    pending_text: str
    attempt: int
    graded_at: str
    questions: list[QuestionView]
    other_checks: list[CheckView]  # tests the spec maps to no question
    cells: list[tuple[int, str]]  # (cell index, error line)
    stdout: Excerpt | None
    stderr: Excerpt | None


@dataclass(frozen=True)
class QuestionStats:
    id: str
    title: str
    max_text: str
    mean_text: str
    full_text: str
    scored: int
    pending: int


@dataclass(frozen=True)
class AttentionItem:
    student_id: str
    stem: str
    status: str
    reasons: list[str]
    message: Excerpt | None


@dataclass(frozen=True)
class SummaryView:
    counts: list[tuple[str, int]]
    submitted: int
    score_stats: list[tuple[str, str]]  # (mean|median|min|max, value)
    questions: list[QuestionStats]
    students: list[StudentView]
    attention: list[AttentionItem]


def write_reports(spec: AssignmentSpec, rows: list[StoredResult], out_dir: Path) -> ReportPaths:
    """Write `<student>.md`/`.html` for every row plus `summary.md`/`.html` into `out_dir`."""
    html_env, md_env = _environments()
    students = [_student_view(spec, row) for row in rows]
    written: list[Path] = []
    for view in students:
        context = {"spec": spec, "title": _title(spec), "s": view}
        for env, suffix in ((md_env, "md"), (html_env, "html")):
            path = out_dir / f"{view.stem}.{suffix}"
            _write(path, env.get_template(f"student.{suffix}.j2").render(context))
            written.append(path)
    summary = _summary_view(spec, rows, students)
    context = {"spec": spec, "title": _title(spec), "summary": summary}
    summary_md = out_dir / "summary.md"
    summary_html = out_dir / "summary.html"
    _write(summary_md, md_env.get_template("summary.md.j2").render(context))
    _write(summary_html, html_env.get_template("summary.html.j2").render(context))
    return ReportPaths(written, summary_md, summary_html)


def student_stem(student_id: str) -> str:
    """The file name (without suffix) of a student's report: the id itself when it is safe."""
    if _SAFE_STEM.fullmatch(student_id) and student_id.lower() not in _RESERVED_STEMS:
        return student_id
    # Odd ids (path separators, leading dots, "summary") get a cleaned name plus a hash,
    # so they can neither escape out_dir nor collide with another report.
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", student_id).lstrip("._-+@")[:60]
    digest = hashlib.sha256(student_id.encode()).hexdigest()[:8]
    return f"{cleaned or 'student'}-{digest}"


def _title(spec: AssignmentSpec) -> str:
    return spec.title or spec.name


def _student_view(spec: AssignmentSpec, row: StoredResult) -> StudentView:
    result = row.result
    by_id = {q.question_id: q for q in result.questions}
    spec_ids = [q.id for q in spec.questions]
    questions = [_question_view(spec, qid, by_id.get(qid), result.tests) for qid in spec_ids]
    questions += [  # graded under an older spec: still the student's score, so show it
        _question_view(spec, q.question_id, q, result.tests)
        for q in result.questions
        if q.question_id not in spec_ids
    ]
    pending = sum(q.max_score for q in result.questions if q.score is None)
    return StudentView(
        student_id=result.student_id,
        stem=student_stem(result.student_id),
        status=result.status.value,
        status_label=STATUS_LABELS[result.status],
        message=_excerpt(result.message, MESSAGE_LIMIT),
        score_text=format_points(result.score),
        max_text=format_points(row.max_score),
        pending_text=format_points(pending) if pending else "",
        attempt=row.attempt,
        graded_at=row.graded_at,
        questions=questions,
        other_checks=[_check_view(t) for t in result.tests if t.question_id not in spec_ids],
        cells=[(c.index, _first_line(c.error)) for c in result.cells],
        stdout=_excerpt(result.stdout, OUTPUT_LIMIT),
        stderr=_excerpt(result.stderr, OUTPUT_LIMIT, keep_end=True),
    )


def _question_view(
    spec: AssignmentSpec, qid: str, qr: QuestionResult | None, tests: Sequence[TestResult]
) -> QuestionView:
    try:
        question = spec.question(qid)
        title, kind = question.title, question.kind.value
    except KeyError:
        title, kind = "", qr.kind if qr else ""
    if qr is None:
        score_text = "not graded"
    elif qr.score is None:
        score_text = "pending manual grading"
    else:
        score_text = f"{format_points(qr.score)} / {format_points(qr.max_score)}"
    is_code = kind == QuestionKind.CODE.value
    answer = None
    if not is_code and qr is not None:
        # Only the student's own answer: the answer key is never passed to a template.
        answer = _excerpt(qr.answer or "", ANSWER_LIMIT)
    return QuestionView(
        id=qid,
        title=title,
        kind=kind,
        score_text=score_text,
        pending=qr is not None and qr.score is None,
        is_code=is_code,
        checks=[_check_view(t) for t in tests if t.question_id == qid] if is_code else [],
        answer=answer,
        feedback=qr.feedback if qr else "",
    )


def _check_view(test: TestResult) -> CheckView:
    return CheckView(
        label=_first_line(test.description),
        test_id=test.test_id,
        outcome=OUTCOME_LABELS[test.outcome],
        passed=test.outcome is Outcome.PASSED,
        message=_excerpt(test.message, MESSAGE_LIMIT),
    )


def _summary_view(
    spec: AssignmentSpec, rows: list[StoredResult], students: list[StudentView]
) -> SummaryView:
    counts = {status: 0 for status in Status}
    for row in rows:
        counts[row.result.status] += 1
    # A missing submission is no measure of the class; it is counted above, not averaged.
    submitted = [row for row in rows if row.result.status is not Status.MISSING]
    scores = [row.result.score for row in submitted]
    return SummaryView(
        counts=[(STATUS_LABELS[s], n) for s, n in counts.items()],
        submitted=len(submitted),
        score_stats=_score_stats(scores),
        questions=[_question_stats(q.id, q.title, q.points, submitted) for q in spec.questions],
        students=students,
        attention=[
            item
            for row, view in zip(rows, students, strict=True)
            if (item := _attention(row, view)) is not None
        ],
    )


def _score_stats(scores: list[float]) -> list[tuple[str, str]]:
    if not scores:
        return [(name, "–") for name in ("mean", "median", "min", "max")]
    return [
        ("mean", format_points(statistics.fmean(scores))),
        ("median", format_points(statistics.median(scores))),
        ("min", format_points(min(scores))),
        ("max", format_points(max(scores))),
    ]


def _question_stats(qid: str, title: str, points: float, rows: list[StoredResult]) -> QuestionStats:
    answers = [q for row in rows for q in row.result.questions if q.question_id == qid]
    scored = [q for q in answers if q.score is not None]
    values = [q.score for q in scored if q.score is not None]
    full = [q for q in scored if q.score is not None and q.score >= q.max_score - 1e-9]
    return QuestionStats(
        id=qid,
        title=title,
        max_text=format_points(points),
        mean_text=format_points(statistics.fmean(values)) if values else "–",
        full_text=f"{100 * len(full) / len(scored):.0f}%" if scored else "–",
        scored=len(scored),
        pending=len(answers) - len(scored),
    )


def _attention(row: StoredResult, view: StudentView) -> AttentionItem | None:
    result = row.result
    reasons: list[str] = []
    if result.status in (Status.ERROR, Status.TIMEOUT):
        reasons.append(STATUS_LABELS[result.status])
    if result.cells:
        reasons.append(f"{len(result.cells)} notebook cell(s) raised an error")
    pending = [q.question_id for q in result.questions if q.score is None]
    if pending:
        reasons.append("waiting for manual grading: " + ", ".join(pending))
    broken = [t.test_id for t in result.tests if t.outcome is Outcome.ERROR]
    if broken:  # the hidden test itself failed: the instructor must look, not the student
        reasons.append("hidden test(s) broke: " + ", ".join(broken))
    if not reasons:
        return None
    return AttentionItem(result.student_id, view.stem, result.status.value, reasons, view.message)


def _excerpt(text: str, limit: int, keep_end: bool = False) -> Excerpt | None:
    if not text.strip():
        return None
    if len(text) <= limit:
        return Excerpt(text)
    if keep_end:  # the end of stderr holds the final traceback
        return Excerpt(text[-limit:], f"last {limit:,} of {len(text):,} characters")
    return Excerpt(text[:limit], f"first {limit:,} of {len(text):,} characters")


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= ERROR_LINE_LIMIT else line[:ERROR_LINE_LIMIT] + "…"


# --- Markdown: student text must stay text -------------------------------------------------

# Enough to stop emphasis, links, images, code, tables and strikethrough mid-line; the
# templates never start a line with this text, so block markers (#, -, 1.) cannot trigger.
_MD_INLINE = re.compile(r"([\\`*\[\]|~])")
# `_` between two letters or digits (snake_case) can never emphasise; leave it readable.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def md_text(text: str) -> str:
    """Inline Markdown that shows `text` literally (one line, no HTML, no markup)."""
    flat = " ".join(str(text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_UNDERSCORE.sub(r"\\_", _MD_INLINE.sub(r"\\\1", flat))


def md_code(text: str, in_table: bool = False) -> str:
    """An inline code span showing `text` literally (one line); `|` escaped inside tables."""
    flat = " ".join(str(text).split())
    if not flat:
        return ""
    ticks = "`" * (_longest_run(flat, "`") + 1)
    # A backtick at either end needs a space between it and the fence (stripped on render).
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    span = f"{ticks}{pad}{flat}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span


def md_block(text: str, indent: int = 0) -> str:
    """A fenced code block no line of `text` can close (its fence is longer than any run)."""
    # A lone \r is a line end to Markdown: left in, it would start an unindented line that
    # ends the enclosing list item, and the fence with it.
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    pad = " " * indent
    lines = [fence, *text.rstrip("\n").split("\n"), fence]
    return "\n".join(pad + line if line else line for line in lines)


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(run) for run in runs), default=0)


# --- Rendering and writing -----------------------------------------------------------------


@functools.cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    """(HTML environment, Markdown environment), built once."""
    html = _environment(autoescape=True)
    md = _environment(autoescape=False)  # Markdown is neutralised by the md_* filters instead
    md.filters.update(md_text=md_text, md_code=md_code, md_block=md_block)
    return html, md


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("autograder", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly, not as ""
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["points"] = format_points
    return env


def _write(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AutograderError(
            f"cannot write report {path}: {exc.strerror}; check that {path.parent} is writable "
            "and the disk is not full"
        ) from None
