"""Per-student feedback and the class summary (the `autograder report` verb's library side).

Reports are built from stored results only: they never see hidden tests. The answer
key of the theory questions reaches a student report only when the spec's
`[feedback] show_answers` allows it ("always", or "after_deadline" once the cutoff, else
the due time, has passed); by default ("never") it is never passed to a template.
Everything a student controls (answers, output, error and test messages, even the
student id) is treated as hostile text: autoescaped in HTML, put in code spans or
fenced blocks in Markdown.

The class summary embeds its charts (`plots.py`) as PNG data URIs: one file, no scripts,
no external resources (the pages' Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import functools
import os
import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from autograder import plots
from autograder.course import Course
from autograder.deadline import describe_minutes
from autograder.errors import AutograderError
from autograder.filenames import student_stem
from autograder.gradebook import Gradebook, StoredResult
from autograder.mdsafe import md_block, md_code, md_text
from autograder.results import Outcome, QuestionResult, Status, TestResult, format_points
from autograder.roster import Roster, find_roster, with_missing
from autograder.spec import AssignmentSpec, Question, QuestionKind

__all__ = [
    "ReportPaths",
    "md_block",
    "md_code",
    "md_text",
    "report",
    "student_stem",
    "write_reports",
]

OUTPUT_LIMIT = 2_000  # characters of stdout / stderr shown
ANSWER_LIMIT = 5_000  # characters of a theory answer shown
MESSAGE_LIMIT = 1_000  # characters of one test message or status message shown
ERROR_LINE_LIMIT = 300
TRACEBACK_LIMIT = 3_000  # characters of a notebook cell's traceback shown

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
    right_answer: str | None  # the answer key, only where the spec lets students see it
    graded_by: str  # who set the score by hand ("" for the autograder)


@dataclass(frozen=True)
class CellView:
    index: int
    error: str  # first line
    traceback: Excerpt | None  # the notebook's own frames, with the line that raised


@dataclass(frozen=True)
class LateView:
    submitted_at: str
    late_text: str  # "1 d 2 h late" or "on time"
    penalty_text: str  # "10% (-1.1 points)" or ""
    raw_text: str
    final_text: str


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
    cells: list[CellView]
    stdout: Excerpt | None
    stderr: Excerpt | None
    late: LateView | None  # None: no late policy and no time known
    final_text: str  # the score after any late penalty
    penalty: bool
    answers_shown: bool  # the answer key is on this page


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
class Plot:
    title: str
    uri: str  # data:image/png;base64,...
    alt: str


@dataclass(frozen=True)
class SummaryView:
    counts: list[tuple[str, int]]
    submitted: int
    score_stats: list[tuple[str, str]]  # (mean|median|min|max, value)
    questions: list[QuestionStats]
    students: list[StudentView]
    attention: list[AttentionItem]
    plots: list[Plot]
    late_policy: bool  # show raw / penalty / final columns
    late: int  # submissions with a penalty


def report(
    course: Course,
    assignment: str,
    out_dir: Path | None = None,
    roster_path: Path | None = None,
    now: datetime | None = None,
    charts: bool = True,
) -> ReportPaths:
    """The `report` verb: reports of ASSIGNMENT's current grades (default: reports/<name>/).

    With a roster (`roster_path`, else the course's `roster.csv`), students without a
    submission are listed as missing in the summary.
    """
    spec = course.assignment(assignment).spec
    roster = find_roster(course.root, roster_path)
    with Gradebook.open(course.gradebook) as book:
        rows = book.current(assignment)
    if not rows:
        raise AutograderError(f"nothing graded yet for {assignment}; run `autograder grade` first")
    return write_reports(
        spec, rows, out_dir or course.reports_dir(assignment), roster=roster, now=now, charts=charts
    )


def write_reports(
    spec: AssignmentSpec,
    rows: list[StoredResult],
    out_dir: Path,
    *,
    roster: Roster | None = None,
    now: datetime | None = None,
    charts: bool = True,
) -> ReportPaths:
    """Write `<student>.md`/`.html` for every row plus `summary.md`/`.html` into `out_dir`.

    `now` decides whether `show_answers = "after_deadline"` shows the answer key yet
    (default: the current time). Roster students without a row appear in the summary.
    `charts=False` leaves the summary's charts out (they take about a second).
    """
    html_env, md_env = _environments()
    show = answers_visible(spec, now or datetime.now(UTC))
    students = [_student_view(spec, row, show) for row in rows]
    written: list[Path] = []
    for view in students:
        context = {"spec": spec, "title": _title(spec), "s": view}
        for env, suffix in ((md_env, "md"), (html_env, "html")):
            path = out_dir / f"{view.stem}.{suffix}"
            _write(path, env.get_template(f"student.{suffix}.j2").render(context))
            written.append(path)
    everyone = with_missing(rows, roster, spec.max_score)
    listed = {row.result.student_id: view for row, view in zip(rows, students, strict=True)}
    summary = _summary_view(
        spec,
        everyone,
        [listed.get(r.result.student_id) or _student_view(spec, r, False) for r in everyone],
        charts,
    )
    context = {"spec": spec, "title": _title(spec), "summary": summary}
    summary_md = out_dir / "summary.md"
    summary_html = out_dir / "summary.html"
    _write(summary_md, md_env.get_template("summary.md.j2").render(context))
    _write(summary_html, html_env.get_template("summary.html.j2").render(context))
    return ReportPaths(written, summary_md, summary_html)


def answers_visible(spec: AssignmentSpec, now: datetime) -> bool:
    """Whether student reports may show the answer key now (`[feedback] show_answers`)."""
    policy = spec.feedback.show_answers
    if policy == "always":
        return True
    if policy == "after_deadline" and spec.deadline is not None:
        return now > spec.deadline.closes
    return False


def _title(spec: AssignmentSpec) -> str:
    return spec.title or spec.name


def _student_view(spec: AssignmentSpec, row: StoredResult, show_answers: bool) -> StudentView:
    result = row.result
    by_id = {q.question_id: q for q in result.questions}
    spec_ids = [q.id for q in spec.questions]
    questions = [
        _question_view(spec, qid, by_id.get(qid), result.tests, show_answers) for qid in spec_ids
    ]
    questions += [  # graded under an older spec: still the student's score, so show it
        _question_view(spec, q.question_id, q, result.tests, False)
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
        cells=[
            CellView(
                c.index,
                _first_line(c.error),
                _excerpt(c.traceback, TRACEBACK_LIMIT, keep_end=True),
            )
            for c in result.cells
        ],
        stdout=_excerpt(result.stdout, OUTPUT_LIMIT),
        stderr=_excerpt(result.stderr, OUTPUT_LIMIT, keep_end=True),
        late=_late_view(spec, row),
        final_text=format_points(result.final_score),
        penalty=result.penalty_percent > 0,
        answers_shown=show_answers and any(q.right_answer is not None for q in questions),
    )


def _late_view(spec: AssignmentSpec, row: StoredResult) -> LateView | None:
    r = row.result
    if spec.deadline is None and not r.penalty_percent:
        return None
    if r.submitted_at is None and not r.penalty_percent:
        return None
    penalty = ""
    if r.penalty_percent:
        penalty = f"{format_points(r.penalty_percent)}% (−{format_points(r.penalty_points)} points)"
    return LateView(
        submitted_at=r.submitted_at or "unknown",
        late_text=f"{describe_minutes(r.late_minutes)} late" if r.late_minutes else "on time",
        penalty_text=penalty,
        raw_text=format_points(r.score),
        final_text=format_points(r.final_score),
    )


def _right_answer(question: Question) -> str | None:
    answer = question.answer
    if question.kind is QuestionKind.CODE or answer is None:
        return None
    if question.kind is QuestionKind.BOOL:
        return "True" if answer else "False"
    if question.kind is QuestionKind.NUMERIC and isinstance(answer, float):
        if answer.is_integer():
            return str(int(answer))
        return f"{answer:g} (within a relative tolerance of {question.rtol:g})"
    return str(answer)


def _question_view(
    spec: AssignmentSpec,
    qid: str,
    qr: QuestionResult | None,
    tests: Sequence[TestResult],
    show_answers: bool,
) -> QuestionView:
    right = None
    try:
        question = spec.question(qid)
        title, kind = question.title, question.kind.value
        if show_answers:
            right = _right_answer(question)
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
        right_answer=right,
        graded_by=(qr.graded_by or "") if qr else "",
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
    spec: AssignmentSpec, rows: list[StoredResult], students: list[StudentView], charts: bool
) -> SummaryView:
    counts = {status: 0 for status in Status}
    for row in rows:
        counts[row.result.status] += 1
    # A missing submission is no measure of the class; it is counted above, not averaged.
    submitted = [row for row in rows if row.result.status is not Status.MISSING]
    late_policy = spec.deadline is not None or any(r.result.penalty_percent for r in rows)
    scores = [row.result.final_score if late_policy else row.result.score for row in submitted]
    questions = [_question_stats(q.id, q.title, q.points, submitted) for q in spec.questions]
    return SummaryView(
        counts=[(STATUS_LABELS[s], n) for s, n in counts.items()],
        submitted=len(submitted),
        score_stats=_score_stats(scores),
        questions=questions,
        students=students,
        attention=[
            item
            for row, view in zip(rows, students, strict=True)
            if (item := _attention(row, view)) is not None
        ],
        plots=_plots(spec, submitted, scores, counts, late_policy) if charts else [],
        late_policy=late_policy,
        late=sum(1 for r in submitted if r.result.penalty_percent),
    )


def _plots(
    spec: AssignmentSpec,
    submitted: list[StoredResult],
    scores: list[float],
    counts: dict[Status, int],
    late_policy: bool,
) -> list[Plot]:
    if not submitted:
        return []
    means, fulls = [], []
    for q in spec.questions:
        answers = [
            a
            for row in submitted
            for a in row.result.questions
            if a.question_id == q.id and a.score is not None
        ]
        points = q.points or 1.0
        means.append(statistics.fmean(a.score or 0.0 for a in answers) / points if answers else 0)
        full = [a for a in answers if (a.score or 0.0) >= a.max_score - 1e-9]
        fulls.append(len(full) / len(answers) if answers else 0)
    ran = [r.result.duration_s for r in submitted if r.result.status is not Status.ERROR]
    which = "final scores (after late penalties)" if late_policy else "scores"
    return [
        Plot(
            "Score distribution",
            plots.score_histogram(scores, spec.max_score),
            f"Histogram of the {which} of {len(scores)} submissions",
        ),
        Plot(
            "Questions",
            plots.question_bars([q.id for q in spec.questions], means, fulls),
            "Per question: mean score as a share of its points, and share at full marks",
        ),
        Plot(
            "Submissions by status",
            plots.status_bars([(s.value, n) for s, n in counts.items()]),
            ", ".join(f"{s.value}: {n}" for s, n in counts.items()),
        ),
        Plot(
            "Grading time",
            plots.runtime_histogram(ran),
            f"Histogram of the grading time of {len(ran)} notebooks",
        ),
    ]


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
    if result.status is Status.MISSING:
        return None  # listed in the counts; nothing in the gradebook to look at
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
