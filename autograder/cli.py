"""The `autograder` command line: thin wrappers around the verbs' library functions."""

from __future__ import annotations

import contextlib
import functools
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# course_grade, publish, report, scaffold and image are imported in their commands: their
# imports (the competition, nbformat, jinja2) would slow every other command's start.
from autograder import check as check_verb
from autograder import export as export_verb
from autograder import grade as grade_verb
from autograder import manual as manual_verb
from autograder.cli_compete import compete_app
from autograder.course import Course
from autograder.display import safe
from autograder.errors import AutograderError, ExitCode
from autograder.export import FORMATS
from autograder.mutation import (
    DEFAULT_JOBS,
    DEFAULT_MAX_PER_FUNCTION,
    DEFAULT_THRESHOLD,
    MutationOptions,
    MutationReport,
)
from autograder.mutation import Progress as MutationProgress
from autograder.results import Outcome, Status, SubmissionResult, format_points
from autograder.roster import find_roster

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Grade Jupyter notebooks of a PyTorch course with hidden tests, in sandboxes.",
)
out = Console()
err = Console(stderr=True)


CourseOpt = Annotated[Path, typer.Option("--course", help="The course folder.", file_okay=False)]
RosterOpt = Annotated[
    Path | None,
    typer.Option(
        "--roster",
        dir_okay=False,
        help="Roster CSV (id, name, email, team; lms_id, login, section optional). "
        "Default: roster.csv in the course, if there is one.",
    ),
]


def _course(path: Path) -> Course:
    return Course.at(path)


def _warn_isolation(sandbox: str, course: Course) -> None:
    box = grade_verb.make_sandbox(sandbox, course)
    for gap in box.missing():
        err.print(f"[bold red]WARNING: sandbox isolation incomplete:[/] {safe(gap)}")


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder for the new course.")]) -> None:
    """Create a new course folder with one example assignment."""
    from autograder import scaffold

    created = scaffold.create_course(directory)
    out.print(f"Created course in {created}. Next: `autograder publish hello --course {created}`")


JobsOpt = Annotated[int, typer.Option(min=1, help="Notebooks graded in parallel.")]


@app.command()
def publish(
    assignment: str,
    course: CourseOpt = Path("."),
    sandbox: Annotated[str, typer.Option(help="auto, local or docker.")] = "auto",
    mutants: Annotated[
        bool, typer.Option(help="Run mutation testing (--no-mutants: quick iteration).")
    ] = True,
    jobs: JobsOpt = DEFAULT_JOBS,
) -> None:
    """Validate ASSIGNMENT (reference = full marks, template = zero, hidden tests catch
    mutants of the reference) and write the release."""
    from autograder import publish as publish_verb

    c = _course(course)
    _warn_isolation(sandbox, c)
    options = _mutation_options(sandbox, c, jobs) if mutants else None
    with _validation_progress(assignment) as progress:
        validation, folder = publish_verb.publish(
            c, assignment, grade_verb.make_sandbox(sandbox, c), options, progress
        )
    ref, tpl = validation.reference, validation.template
    out.print(
        f"reference: {format_points(ref.score)}/{format_points(ref.max_score)} "
        f"(auto-graded questions at full marks); template: {format_points(tpl.score)}"
    )
    if validation.mutation is not None:
        out.print(_mutation_table(validation.mutation))
    out.print(f"[green]Published[/] {assignment} to {folder}")


# --------------------------------------------------------------------------- validate
@app.command()
def validate(
    assignment: str,
    course: CourseOpt = Path("."),
    jobs: JobsOpt = DEFAULT_JOBS,
    sandbox: Annotated[
        str, typer.Option(help="Where the notebooks run: local (default), docker or auto.")
    ] = "local",
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of mutants each question must catch.")
    ] = DEFAULT_THRESHOLD,
    max_per_function: Annotated[
        int, typer.Option(min=0, help="Mutants graded per function (0: all of them).")
    ] = DEFAULT_MAX_PER_FUNCTION,
) -> None:
    """Check ASSIGNMENT: reference = full marks, template = zero, and mutation testing
    (mutants of the reference graded; each question's hidden tests must catch enough)."""
    from autograder import publish as publish_verb

    c = _course(course)
    _warn_isolation(sandbox, c)
    options = _mutation_options(sandbox, c, jobs, threshold, max_per_function)
    with _validation_progress(assignment) as progress:
        validation = publish_verb.validate_with_mutants(
            c.assignment(assignment), grade_verb.make_sandbox(sandbox, c), options, progress
        )
    ref, tpl = validation.reference, validation.template
    out.print(
        f"reference: {format_points(ref.score)}/{format_points(ref.max_score)}; "
        f"template: {format_points(tpl.score)}/{format_points(tpl.max_score)}"
    )
    report = validation.mutation
    others = [p for p in validation.problems if report is None or p not in report.problems]
    for problem in others:
        out.print(f"[red]problem:[/] {safe(problem)}")
    if report is None:
        out.print("[yellow]mutation testing skipped: fix the problems above first[/]")
    else:
        _print_mutation(report, jobs)
    if validation.problems:
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


def _mutation_options(
    sandbox: str,
    course: Course,
    jobs: int,
    threshold: float = DEFAULT_THRESHOLD,
    max_per_function: int = DEFAULT_MAX_PER_FUNCTION,
) -> MutationOptions:
    # Workers build their own sandbox: a picklable factory, resolved once here.
    factory = functools.partial(
        grade_verb.make_sandbox, grade_verb.resolve_sandbox(sandbox), course
    )
    return MutationOptions(factory, jobs, threshold, max_per_function)


@contextlib.contextmanager
def _validation_progress(assignment: str) -> Iterator[MutationProgress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"{assignment}: grading the reference and the template", total=None)

        def progress(done: int, total: int, what: str) -> None:
            label = f"{assignment}: mutation testing ({safe(what[:60])})"
            bar.update(task, completed=done, total=total, description=label)

        yield progress


def _mutation_table(report: MutationReport) -> Table:
    table = Table(title=f"Mutation testing of {report.assignment} (pass: {report.threshold:.0%})")
    for col in ("question", "mutants", "caught", "excluded", "score", "result"):
        table.add_column(col, justify="left" if col == "question" else "right")
    for q in report.questions:
        score = "n/a" if q.score is None else f"{q.score:.0%}"
        result = "n/a" if q.score is None else "[green]PASS[/]" if q.passed else "[red]FAIL[/]"
        table.add_row(q.question_id, str(q.mutants), str(q.caught), str(q.excluded), score, result)
    return table


def _print_mutation(report: MutationReport, jobs: int) -> None:
    out.print(_mutation_table(report))
    if report.survivors:
        out.print("[bold]Survivors[/] (the hidden tests did not notice these changes):")
    for r in report.survivors:
        note = f"; {r.note}" if r.note != "full marks" else ""
        out.print(
            f"  {safe(r.mutant.id)}  ({', '.join(r.questions)}{safe(note)})",
            highlight=False,
            soft_wrap=True,
        )
        out.print(
            f"      - {safe(r.mutant.before)}\n      + {safe(r.mutant.after)}",
            highlight=False,
            soft_wrap=True,
        )
    if report.excluded:
        out.print(f"Excluded as equivalent (assignments/{report.assignment}/mutants.toml):")
    for r in report.excluded:
        out.print(f"  {safe(r.mutant.id)}: {safe(r.note)}", highlight=False, soft_wrap=True)
    for e in report.stale:
        out.print(
            f"[yellow]mutants.toml lists {safe(e.id)}, which is no mutant any more; remove it[/]",
            highlight=False,
            soft_wrap=True,
        )
    for unit in report.unowned:
        out.print(f"[yellow]{safe(unit)}: no graded question depends on it; not mutated[/]")
    for function, (kept, total) in report.derived.items():
        if kept < total:
            out.print(
                f"{safe(function)}: {kept} of its {total} mutants graded "
                "(--max-per-function 0 grades all)"
            )
    if report.by_timeout:
        out.print(
            f"[yellow]{len(report.by_timeout)} mutant(s) caught only by a time limit: "
            "on a busy machine that may not be the tests; rerun with fewer --jobs to be sure[/]"
        )
    for note in report.notes:
        out.print(f"[yellow]{safe(note)}[/]")
    out.print(
        f"{report.graded} notebooks graded (reference, knock-outs, mutants) "
        f"in {report.wall_s:.0f} s with --jobs {jobs}."
    )


@app.command()
def grade(
    assignment: str,
    paths: Annotated[list[Path], typer.Argument(help="Notebooks, folders or zips.")],
    course: CourseOpt = Path("."),
    sandbox: Annotated[
        str,
        typer.Option(
            help="Where student code runs: auto (docker if its image is built), local, docker."
        ),
    ] = "auto",
    jobs: Annotated[int, typer.Option(min=1, help="Submissions graded in parallel.")] = 1,
    gpus: Annotated[
        str | None, typer.Option(help="GPUs for the sandboxes: all, 0,2 or GPU/MIG UUIDs.")
    ] = None,
    per_gpu: Annotated[int, typer.Option(min=1, help="Sandboxes sharing one GPU.")] = 1,
    timeout: Annotated[float | None, typer.Option(help="Seconds per notebook run.")] = None,
    regrade: Annotated[bool, typer.Option(help="Grade again even if unchanged.")] = False,
    warm: Annotated[
        bool,
        typer.Option(
            help="Fork local runtimes from one warm sandbox per worker (see SECURITY.md); "
            "--no-warm starts a fresh sandbox per submission."
        ),
    ] = True,
    roster: RosterOpt = None,
    backend: Annotated[
        str,
        typer.Option(
            help="Where the graders run: local (this machine) or ray (a Ray cluster; "
            "pip install 'autograder\\[ray]')."  # "\\[": a bracket, not rich markup
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="--backend ray: the cluster, HOST:PORT, ray://HOST:10001 or auto "
            "(default: RAY_ADDRESS, else auto)."
        ),
    ] = None,
) -> None:
    """Grade every submission under PATHS into the course gradebook.

    PATHS may be Moodle or Canvas submission downloads (zips); the roster maps their
    students to student ids. With --backend ray, --jobs is the number of graders on the
    cluster."""
    c = _course(course)
    class_roster = find_roster(c.root, roster)
    if backend != "ray":  # on a cluster, the nodes' sandboxes are reported after the batch
        _warn_isolation(sandbox, c)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(f"grading {assignment}", total=None)

        def progress(done: int, total: int, result: SubmissionResult | None) -> None:
            label = f"grading {assignment}" + (f" ({result.student_id})" if result else "")
            bar.update(task, completed=done, total=total, description=label)

        summary = grade_verb.grade(
            c,
            assignment,
            paths,
            sandbox=sandbox,
            jobs=jobs,
            regrade=regrade,
            timeout=timeout,
            gpus=gpus,
            per_gpu=per_gpu,
            warm=warm,
            progress=progress,
            roster=class_roster,
            backend=backend,
            address=address,
        )
    _print_summary(summary)
    if backend == "ray":
        for gap in summary.warnings:
            err.print(f"[bold red]WARNING: sandbox isolation incomplete on[/] {safe(gap)}")
    for note in summary.notes:
        out.print(f"[yellow]{safe(note)}[/]")
    if summary.count(Status.ERROR) or summary.count(Status.TIMEOUT):
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


def _print_summary(summary: grade_verb.BatchSummary) -> None:
    table = Table(title="Graded this run", show_lines=False)
    for col in ("student", "score", "status", "time (s)", "note"):
        table.add_column(col)
    for r in sorted(summary.results, key=lambda r: r.student_id):
        style = {"graded": "", "error": "red", "timeout": "yellow"}.get(r.status.value, "")
        table.add_row(
            safe(r.student_id),
            f"{format_points(r.score)}/{format_points(r.max_score)}",
            f"[{style}]{r.status.value}[/]" if style else r.status.value,
            f"{r.duration_s:.1f}",
            safe((r.message or "")[:90]),
        )
    out.print(table)
    times = [r.duration_s for r in summary.results if r.status is not Status.ERROR]
    median = f"{statistics.median(times):.2f} s" if times else "n/a"
    out.print(
        f"{summary.total} submissions: {len(summary.results)} graded now, "
        f"{summary.skipped} unchanged since last time (use --regrade to grade them again); "
        f"{summary.count(Status.ERROR)} error, {summary.count(Status.TIMEOUT)} timeout, "
        f"{summary.count(Status.PENDING)} waiting for manual grading. "
        f"Sandbox: {summary.sandbox} ({safe(summary.isolation)}). "
        f"Median time per submission {median}, wall {summary.wall_s:.1f} s."
    )


@app.command()
def report(
    assignment: str,
    course: CourseOpt = Path("."),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the reports.")] = None,
    roster: RosterOpt = None,
    charts: Annotated[bool, typer.Option(help="Charts in the class summary.")] = True,
) -> None:
    """Write per-student feedback and a class summary from the gradebook."""
    from autograder import report as report_verb

    paths = report_verb.report(_course(course), assignment, out_dir, roster, charts=charts)
    out.print(f"Wrote {len(paths.students)} student reports and {paths.summary_html}")


@app.command()
def export(
    assignment: str,
    course: CourseOpt = Path("."),
    format: Annotated[
        str, typer.Option("--format", help=f"Export format: {', '.join(FORMATS)}.")
    ] = "csv",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="File to write (gradescope: a folder).")
    ] = None,
    roster: RosterOpt = None,
) -> None:
    """Export the current grades of ASSIGNMENT (default: exports/<assignment>.csv)."""
    done = export_verb.export(_course(course), assignment, format, out_file, roster)
    missing = f" ({done.missing} on the roster without a submission)" if done.missing else ""
    out.print(f"Wrote {done.students} students to {done.target}{missing}")
    if done.not_on_roster:
        shown = ", ".join(done.not_on_roster[:10])
        more = " ..." if len(done.not_on_roster) > 10 else ""
        err.print(f"[yellow]graded but not on the roster:[/] {safe(shown)}{more}")
    if done.pending:
        err.print(
            f"[yellow]{done.pending} submission(s) wait for manual grading; their scores leave "
            f"out those questions (`autograder manual {assignment} export`)[/]"
        )


@app.command()
def check(
    notebook: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    assignment: Annotated[str | None, typer.Option(help="Assignment name.")] = None,
    course: Annotated[Path | None, typer.Option("--course", file_okay=False)] = None,
) -> None:
    """Run the public tests on NOTEBOOK, as the grader would run it."""
    found = check_verb.find_assignment(notebook.resolve(), course, assignment)
    # One notebook: a warm pool would only add its own start-up.
    box = grade_verb.make_sandbox("auto", Course(found.folder.parent.parent), warm=False)
    result = check_verb.check(notebook.resolve(), found, box)
    if result.status is Status.ERROR:
        raise AutograderError(result.message)
    failed = 0
    for t in result.tests:
        mark = "[green]PASS[/]" if t.outcome is Outcome.PASSED else "[red]FAIL[/]"
        failed += t.outcome is not Outcome.PASSED
        note = f"\n     {safe(t.message)}" if t.message else ""
        out.print(f"{mark} {safe(t.description)}{note}")
    for cell in result.cells:
        out.print(f"[yellow]cell {cell.index}[/]: {safe(cell.error)}")
    for q in result.questions:
        if q.kind != "code":
            out.print(f"answer_{q.question_id}: {safe(q.feedback)}")
    out.print(f"{len(result.tests) - failed}/{len(result.tests)} public checks passed")
    if failed:
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


# --------------------------------------------------------------------------- grading by hand
GraderOpt = Annotated[str, typer.Option("--grader", help="Who grades (goes on record).")]


@app.command()
def manual(
    assignment: str,
    action: Annotated[str, typer.Argument(help="export (write the sheet) or import (read it).")],
    sheet: Annotated[
        Path | None, typer.Argument(dir_okay=False, help="import: the filled-in sheet.")
    ] = None,
    course: CourseOpt = Path("."),
    out_file: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="export: the sheet to write.")
    ] = None,
    grader: Annotated[str | None, typer.Option("--grader", help="import: who graded.")] = None,
    reason: Annotated[str, typer.Option(help="import: why (default: the sheet's name).")] = "",
) -> None:
    """Grade free-text answers by hand: `manual A export --out sheet.csv`, fill in
    `points` (and `comment`), then `manual A import sheet.csv --grader NAME`."""
    c = _course(course)
    if action == "export":
        target = out_file or c.exports_dir() / f"{assignment}-manual.csv"
        done = manual_verb.export_sheet(c, assignment, target)
        out.print(
            f"Wrote {done.rows} answers ({done.to_grade} to grade) to {done.path}; fill in "
            f"`points`, then `autograder manual {assignment} import {done.path} --grader NAME`"
        )
    elif action == "import":
        if sheet is None or grader is None:
            raise AutograderError(
                f"usage: autograder manual {assignment} import SHEET.csv --grader NAME"
            )
        summary = manual_verb.import_sheet(c, assignment, sheet, grader, reason)
        out.print(
            f"{len(summary.changes)} score(s) changed, {summary.skipped} row(s) without points; "
            f"{len(summary.still_pending)} submission(s) still wait for manual grading"
        )
    else:
        raise AutograderError(f"unknown action {action!r}; use export or import")


@app.command()
def override(
    assignment: str,
    student: str,
    question: str,
    points: Annotated[float, typer.Argument(min=0)],
    grader: GraderOpt,
    reason: Annotated[str, typer.Option(help="Why (goes on record).")],
    course: CourseOpt = Path("."),
) -> None:
    """Set STUDENT's score on QUESTION of ASSIGNMENT by hand (kept in the history)."""
    change = manual_verb.override(
        _course(course), assignment, student, question, points, grader, reason
    )
    if change is None:
        out.print(f"{student} / {question} already has {format_points(points)} points")
    else:
        old = "–" if change.old_score is None else format_points(change.old_score)
        out.print(f"{student} / {question}: {old} -> {format_points(points)} (by {change.grader})")


@app.command()
def history(assignment: str, student: str, course: CourseOpt = Path(".")) -> None:
    """Every attempt of STUDENT on ASSIGNMENT, and who changed which score when and why."""
    attempts, changes = manual_verb.history(_course(course), assignment, student)
    table = Table(title=f"Attempts of {safe(student)} on {safe(assignment)}")
    for col in ("#", "graded at", "status", "score", "penalty", "final", "submitted", "notebook"):
        table.add_column(col)
    for a in attempts:
        r = a.result
        table.add_row(
            str(a.attempt),
            a.graded_at,
            r.status.value,
            f"{format_points(r.score)}/{format_points(a.max_score)}",
            f"{format_points(r.penalty_percent)}%" if r.penalty_percent else "",
            format_points(r.final_score),
            r.submitted_at or "",
            r.content_hash[:12],
        )
    out.print(table)
    numbers = {a.attempt_id: a.attempt for a in attempts}
    if not changes:
        out.print("No score was changed by hand or by a regrade.")
        return
    table = Table(title="Score changes")
    for col in ("when", "attempt", "kind", "question", "old", "new", "who", "why"):
        table.add_column(col)
    for ch in changes:
        table.add_row(
            ch.changed_at,
            str(numbers.get(ch.attempt_id, "?")),
            ch.kind.value,
            ch.question_id or "(all)",
            "–" if ch.old_score is None else format_points(ch.old_score),
            "–" if ch.new_score is None else format_points(ch.new_score),
            safe(ch.grader),
            safe(ch.reason),
        )
    out.print(table)


@app.command("course-grade")
def course_grade(
    weights: Annotated[
        Path, typer.Option("--weights", dir_okay=False, help="TOML with a [weights] table.")
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="CSV to write.")
    ] = None,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
    competition: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="CSV student_id,score for the `competition` weight."),
    ] = None,
) -> None:
    """The final grade per student: the weighted mean of the assignments' final scores
    (default output: exports/final.csv)."""
    from autograder import course_grade as course_grade_verb

    c = _course(course)
    target = out_file or c.exports_dir() / "final.csv"
    done = course_grade_verb.course_grade(c, weights, target, roster, competition)
    parts = ", ".join(f"{name} {weight:g}" for name, weight in done.weights.parts.items())
    out.print(f"Wrote the final grades of {len(done.students)} students to {done.out} ({parts})")
    noted = [g for g in done.students if g.notes]
    if noted:
        err.print(
            f"[yellow]{len(noted)} student(s) have notes (missing or pending work); "
            "see the notes column[/]"
        )


image_app = typer.Typer(no_args_is_help=True, help="The Docker sandbox image.")
app.add_typer(image_app, name="image")
app.add_typer(compete_app, name="compete")


@image_app.command("build")
def image_build(
    offline: Annotated[
        bool, typer.Option("--offline", help="Build with no container registry (debootstrap base).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if the inputs did not change.")] = False,
    mirror: Annotated[str | None, typer.Option(help="Debian mirror for debootstrap.")] = None,
    cache: Annotated[Path, typer.Option(help="Where wheels and build files are kept.")] = Path(
        ".autograder/image-cache"
    ),
) -> None:
    """Build the sandbox image (only the student runtime and what students may import)."""
    from autograder import image as image_verb

    if not offline:
        raise AutograderError(
            "only --offline builds are automated; for a CUDA base image see docker/Dockerfile.cuda"
        )
    tag = image_verb.build_offline(
        cache.resolve(), force=force, mirror=mirror, log=lambda line: err.print(safe(line))
    )
    out.print(f"sandbox image: {tag} (also autograder-sandbox:latest)")


def main() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except AutograderError as exc:
        err.print(f"[bold red]error:[/] {safe(str(exc))}", highlight=False)
        sys.exit(ExitCode.USAGE_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted; what was graded is saved, rerun the same command to resume")
        sys.exit(ExitCode.INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"error: {exc}")
        sys.exit(ExitCode.USAGE_ERROR)
