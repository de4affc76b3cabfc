"""Per-student reports and the class summary: content, escaping, what must never appear."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from autograder.gradebook import StoredResult
from autograder.report import ReportPaths, md_block, md_code, md_text, student_stem, write_reports
from autograder.results import (
    CellRecord,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    TestResult,
)
from autograder.roster import load_roster
from autograder.spec import AssignmentSpec

SECRET_CHOICE = "sigmoid_saturates_secret"  # the answer key: must never reach a report
SCRIPT = "<script>alert('pwned')</script>"

SPEC = AssignmentSpec.model_validate(
    {
        "name": "hw1",
        "title": "Backprop from scratch",
        "notebook": "hw1.ipynb",
        "questions": [
            {"id": "linear", "kind": "code", "points": 3, "title": "A linear layer",
             "tests": ["test_linear*"]},
            {"id": "why_relu", "kind": "text", "points": 2, "title": "Why ReLU?"},
            {"id": "pick", "kind": "choice", "points": 1, "title": "Pick one",
             "choices": ["relu_is_cheap", SECRET_CHOICE], "answer": SECRET_CHOICE},
        ],
    }
)


def stored(result: SubmissionResult, attempt: int = 1) -> StoredResult:
    return StoredResult(result, attempt_id=attempt, attempt=attempt,
                        graded_at="2024-05-01T10:00:00+00:00", max_score=SPEC.max_score)


def alice() -> SubmissionResult:
    """A graded submission full of hostile text."""
    return SubmissionResult(
        student_id="alice",
        path="alice.ipynb",
        content_hash="h",
        status=Status.GRADED,
        questions=[
            QuestionResult("linear", "code", 2.5, 3.0),
            QuestionResult("why_relu", "text", None, 2.0,
                           answer=f"{SCRIPT}\n```\n[click me](http://evil.example)\n<img src=x>"),
            QuestionResult("pick", "choice", 0.0, 1.0, answer="relu_is_cheap"),
        ],
        tests=[
            TestResult("test_linear_shape", "linear", Outcome.PASSED,
                       description="The output has shape (batch, out_features)"),
            TestResult("test_linear_values[2]", "linear", Outcome.FAILED,
                       message=f"expected 1.0 at [0, 1], got 2.0 {SCRIPT}\r[x](http://evil)",
                       description="Values match the reference"),
            TestResult("test_linear_backward", "linear", Outcome.TIMEOUT, message="took over 60 s"),
        ],
        cells=[CellRecord(7, f"NameError: name 'foo' is not defined {SCRIPT}", "Traceback ...")],
        stdout=f"epoch 1 {SCRIPT}\n" + "x" * 5000,
        stderr="",
    )


def classmates() -> list[SubmissionResult]:
    full = [
        QuestionResult("linear", "code", 3.0, 3.0),
        QuestionResult("why_relu", "text", 2.0, 2.0),
        QuestionResult("pick", "choice", 1.0, 1.0, answer=SECRET_CHOICE),
    ]
    return [
        SubmissionResult("bob", "bob.ipynb", "h", Status.GRADED, questions=full),
        SubmissionResult("carol", "carol.ipynb", "h", Status.ERROR,
                         f"not a notebook: invalid JSON at line 3 {SCRIPT}"),
        SubmissionResult("dave", "dave.ipynb", "h", Status.TIMEOUT, "the notebook ran past 120 s",
                         questions=[QuestionResult(q.question_id, q.kind, 0.0, q.max_score)
                                    for q in full]),
    ]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    # Module-wide: rendering the summary's charts takes a second; tests only read the files.
    rows = [stored(alice(), attempt=2)] + [stored(r) for r in classmates()]
    return write_reports(SPEC, rows, tmp_path_factory.mktemp("class") / "reports")


def all_text(paths: list[Path]) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def test_files_exist(reports: ReportPaths) -> None:
    out = reports.summary_md.parent
    students = ("alice", "bob", "carol", "dave")
    expected = [out / f"{s}.{ext}" for s in students for ext in ("md", "html")]
    assert reports.students == expected
    assert reports.summary_md == out / "summary.md"
    assert reports.summary_html == out / "summary.html"
    assert sorted(out.iterdir()) == sorted([*expected, out / "summary.md", out / "summary.html"])


def test_scores_and_messages_appear(reports: ReportPaths) -> None:
    out = reports.summary_md.parent
    for path in (out / "alice.md", out / "alice.html"):
        text = path.read_text(encoding="utf-8")
        assert "Backprop from scratch" in text
        assert "2.5 / 6" in text  # total
        assert "2.5 / 3" in text  # the code question
        assert "0 / 1" in text
        assert "pending manual grading" in text
        assert "up to 2 more points pending manual grading" in text
        assert "A linear layer" in text
        assert "The output has shape (batch, out_features)" in text
        assert "Values match the reference" in text
        assert "expected 1.0 at [0, 1], got 2.0" in text
        assert "took over 60 s" in text
        assert "test_linear_backward" in text  # no description: the test's name stands in
        assert "cell 7" in text
        assert "relu_is_cheap" in text  # the student's own answer
        assert f"first 2,000 of {len(alice().stdout):,} characters" in text
        assert "x" * 2001 not in text
        assert "attempt 2" in text


def test_answer_key_never_appears(reports: ReportPaths) -> None:
    for path in [*reports.students, reports.summary_md, reports.summary_html]:
        if path.stem in ("alice", "carol", "dave", "summary"):
            assert SECRET_CHOICE not in path.read_text(encoding="utf-8"), path


def test_only_results_reach_reports(reports: ReportPaths) -> None:
    # Reports receive results, not tests: what a student sees of a check is its
    # description, outcome and message; a test's source is never part of a result.
    text = all_text([*reports.students, reports.summary_md, reports.summary_html])
    assert "def test_" not in text
    assert "assert " not in text


def test_html_escapes_student_text(reports: ReportPaths) -> None:
    for path in [*reports.students, reports.summary_html]:
        if path.suffix != ".html":
            continue
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text, path
        # The only images are the summary's charts, embedded as PNG data URIs.
        assert not re.search(r'<img(?! src="data:image/png;base64,[A-Za-z0-9+/=]+")', text), path
    alice_html = reports.students[1].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in alice_html
    assert 'href="http://evil.example"' not in alice_html


def test_html_is_self_contained(reports: ReportPaths) -> None:
    for path in [*reports.students, reports.summary_html]:
        if path.suffix == ".html":
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
            assert "<link" not in text
            assert "<style>" in text


def render_markdown(path: Path) -> str:
    # CommonMark with raw HTML enabled: whatever a student smuggles past us would show here.
    return MarkdownIt("commonmark").enable("table").render(path.read_text(encoding="utf-8"))


def test_markdown_neutralises_student_text(reports: ReportPaths) -> None:
    for path in [*reports.students, reports.summary_md]:
        if path.suffix != ".md":
            continue
        html = render_markdown(path)
        assert "<script" not in html, path
        assert "<img" not in html, path
        assert "<a href" not in html, path
    html = render_markdown(reports.students[0])
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in html
    assert "[click me](http://evil.example)" in html  # shown as text, not a link


def test_summary_counts_and_stats(reports: ReportPaths) -> None:
    md = reports.summary_md.read_text(encoding="utf-8")
    assert "| graded | 2 |" in md
    assert "| could not be graded | 1 |" in md
    assert "| timed out | 1 |" in md
    assert "| no submission | 0 |" in md
    assert "4 student(s); maximum score 6." in md
    # scores 2.5, 6, 0, 0: mean 2.125, median 1.25, min 0, max 6
    assert "| 2.125 | 1.25 | 0 | 6 |" in md
    # linear: 2.5, 3, 0 -> mean 1.8333, one full mark in three
    assert "| `linear` | A linear layer | 3 | 1.8333 | 33% | 3 | 0 |" in md
    assert "| `why_relu` | Why ReLU? | 2 | 1 | 50% | 2 | 1 |" in md
    html = reports.summary_html.read_text(encoding="utf-8")
    assert '<a href="alice.html"><code>alice</code></a>' in html


def test_summary_lists_who_needs_attention(reports: ReportPaths) -> None:
    md = reports.summary_md.read_text(encoding="utf-8")
    attention = md.split("## Needing attention", 1)[1].split("## Students", 1)[0]
    assert "`alice`" in attention  # failed cell, pending manual question
    assert "1 notebook cell(s) raised an error" in attention
    assert "waiting for manual grading: why_relu" in attention
    assert "`carol` (error): could not be graded" in attention
    assert "not a notebook: invalid JSON at line 3" in attention
    assert "`dave` (timeout): timed out" in attention
    assert "`bob`" not in attention


def test_odd_student_ids_stay_inside_and_do_not_clobber_summary(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    rows = [
        stored(SubmissionResult("summary", "s.ipynb", "h", Status.GRADED)),
        stored(SubmissionResult("../escape", "e.ipynb", "h", Status.GRADED)),
    ]
    paths = write_reports(SPEC, rows, out, charts=False)
    assert all(p.parent == out for p in paths.students)
    assert len({p.name for p in [*paths.students, paths.summary_md, paths.summary_html]}) == 6
    assert "class summary" in paths.summary_md.read_text(encoding="utf-8")
    assert not (tmp_path / "escape.md").exists()


def test_student_stem() -> None:
    assert student_stem("s1234567") == "s1234567"
    assert student_stem("jane.doe@uni.edu") == "jane.doe@uni.edu"
    assert student_stem("Summary") != "Summary"
    assert "/" not in student_stem("a/b") and not student_stem("..").startswith(".")
    assert student_stem("a/b") != student_stem("a_b")


def test_markdown_helpers() -> None:
    block = md_block("a\n````\nb")
    assert block.startswith("`````\n") and block.endswith("\n`````")
    assert md_block("x\ry", indent=2) == "  ```\n  x\n  y\n  ```"
    assert md_code("a ` b") == "``a ` b``"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_text("*bold* [x](y) <b>") == "\\*bold\\* \\[x\\](y) &lt;b&gt;"


# --- charts, answer keys, late penalties, tracebacks, the roster --------------------------

def with_policy(**extra: object) -> AssignmentSpec:
    data = SPEC.model_dump(mode="json")
    data.update(extra)
    return AssignmentSpec.model_validate(data)


def png_sizes(html: str) -> list[tuple[int, int]]:
    import base64
    import struct

    sizes = []
    for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        raw = base64.b64decode(data)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        sizes.append(struct.unpack(">II", raw[16:24]))
    return sizes


def test_summary_embeds_four_charts(reports: ReportPaths) -> None:
    html = reports.summary_html.read_text(encoding="utf-8")
    assert png_sizes(html) == [(640, 320)] * 4
    for title in ("Score distribution", "Questions", "Submissions by status", "Grading time"):
        assert f"<figcaption>{title}:" in html
    assert "img-src data:" in html  # the page's policy lets exactly these images load
    assert "The charts are in summary.html." in reports.summary_md.read_text(encoding="utf-8")


def test_answer_key_is_shown_only_when_the_spec_allows(tmp_path: Path) -> None:
    rows = [stored(alice())]
    always = write_reports(with_policy(feedback={"show_answers": "always"}), rows, tmp_path / "a",
                           charts=False)
    for path in always.students:
        text = path.read_text(encoding="utf-8")
        assert SECRET_CHOICE in text and "Right answer" in text
    deadline = {"due": "2025-03-14T23:59:00+00:00", "cutoff": "2025-03-20T23:59:00+00:00"}
    spec = with_policy(feedback={"show_answers": "after_deadline"}, deadline=deadline)
    before = datetime(2025, 3, 18, tzinfo=UTC)  # past due, but late work is still accepted
    after = datetime(2025, 3, 21, tzinfo=UTC)
    for when, shown in ((before, False), (after, True)):
        out = write_reports(spec, rows, tmp_path / str(shown), now=when, charts=False)
        for path in out.students:
            assert (SECRET_CHOICE in path.read_text(encoding="utf-8")) is shown, (when, path)
    never = write_reports(with_policy(feedback={"show_answers": "after_deadline"}), rows,
                          tmp_path / "n", now=after, charts=False)  # no deadline: never
    assert all(SECRET_CHOICE not in p.read_text(encoding="utf-8") for p in never.students)


def test_late_penalty_is_shown_with_raw_and_final_score(tmp_path: Path) -> None:
    late = classmates()[0]  # bob: 6 / 6
    late.submitted_at, late.late_minutes, late.penalty_percent = (
        "2025-03-16T10:00:00+00:00", 2041.0, 20.0)
    spec = with_policy(deadline={"due": "2025-03-14T23:59:00+00:00", "percent_per_day": 10})
    out = write_reports(spec, [stored(late)], tmp_path / "r", charts=False)
    for path in out.students:
        text = path.read_text(encoding="utf-8")
        assert "Submitted 2025-03-16T10:00:00+00:00" in text
        assert "1 d 10 h 1 min late" in text
        assert "20% (−1.2 points)" in text
        assert "4.8 / 6" in text  # the total is the final score
    md = out.summary_md.read_text(encoding="utf-8")
    assert "| `bob` | 6 | 20% (−1.2 points) | 4.8 | 6 | graded |" in md


def test_cell_errors_show_the_line_that_raised(tmp_path: Path) -> None:
    result = alice()
    result.cells = [CellRecord(3, "ZeroDivisionError: division by zero",
                               'File "<cell 3>", line 2, in <module>\n    loss = 1 / 0\n'
                               "ZeroDivisionError: division by zero\n")]
    out = write_reports(SPEC, [stored(result)], tmp_path / "r", charts=False)
    for path in out.students:
        text = path.read_text(encoding="utf-8")
        assert "cell 3" in text and "loss = 1 / 0" in text


def test_roster_students_without_submission_are_listed(tmp_path: Path) -> None:
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("id,name\nalice,Alice\nzoe,Zoe\n", encoding="utf-8")
    out = write_reports(SPEC, [stored(alice())], tmp_path / "r",
                        roster=load_roster(roster_file), charts=False)
    md = out.summary_md.read_text(encoding="utf-8")
    assert "| no submission | 1 |" in md and "| `zoe` | 0 | 6 | missing |" in md
    assert [p.stem for p in out.students] == ["alice", "alice"]  # no page for zoe
    assert "waiting for manual grading" in md  # alice's pending text question


def test_pending_and_forbidden_have_words(tmp_path: Path) -> None:
    result = alice()
    result.status = Status.PENDING
    result.tests.append(TestResult("test_linear_no_torch", "linear", Outcome.FORBIDDEN,
                                   "used torch.nn.Linear"))
    out = write_reports(SPEC, [stored(result)], tmp_path / "r", charts=False)
    text = out.students[0].read_text(encoding="utf-8")
    assert "waiting for manual grading" in text
    assert "used an API this question forbids" in text
