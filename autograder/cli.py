"""The `autograder` command line: thin wrappers around the verbs' library functions."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autograder import check as check_verb
from autograder import grade as grade_verb
from autograder import image as image_verb
from autograder import publish as publish_verb
from autograder import scaffold
from autograder.course import Course
from autograder.errors import AutograderError, ExitCode
from autograder.export import FORMATS
from autograder.gradebook import Gradebook
from autograder.report import write_reports
from autograder.results import Outcome, Status, SubmissionResult, format_points

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Grade Jupyter notebooks of a PyTorch course with hidden tests, in sandboxes.",
)
out = Console()
err = Console(stderr=True)

CourseOpt = Annotated[Path, typer.Option("--course", help="The course folder.", file_okay=False)]


def _course(path: Path) -> Course:
    return Course.at(path)


def _warn_isolation(sandbox: str, course: Course) -> None:
    box = grade_verb.make_sandbox(sandbox, course)
    for gap in box.missing():
        err.print(f"[bold red]WARNING: sandbox isolation incomplete:[/] {escape(gap)}")


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder for the new course.")]) -> None:
    """Create a new course folder with one example assignment."""
    created = scaffold.create_course(directory)
    out.print(f"Created course in {created}. Next: `autograder publish hello --course {created}`")


@app.command()
def publish(
    assignment: str,
    course: CourseOpt = Path("."),
    sandbox: Annotated[str, typer.Option(help="auto, local or docker.")] = "auto",
) -> None:
    """Validate ASSIGNMENT (reference = full marks, template = zero) and write the release."""
    c = _course(course)
    _warn_isolation(sandbox, c)
    with out.status(f"validating {assignment}: grading the reference and the template..."):
        validation, folder = publish_verb.publish(
            c, assignment, grade_verb.make_sandbox(sandbox, c)
        )
    ref, tpl = validation.reference, validation.template
    out.print(
        f"reference: {format_points(ref.score)}/{format_points(ref.max_score)} "
        f"(auto-graded questions at full marks); template: {format_points(tpl.score)}"
    )
    out.print(f"[green]Published[/] {assignment} to {folder}")


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
) -> None:
    """Grade every submission under PATHS into the course gradebook."""
    c = _course(course)
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
            progress=progress,
        )
    _print_summary(summary)
    if summary.count(Status.ERROR) or summary.count(Status.TIMEOUT):
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


def _print_summary(summary: grade_verb.BatchSummary) -> None:
    table = Table(title="Graded this run", show_lines=False)
    for col in ("student", "score", "status", "time (s)", "note"):
        table.add_column(col)
    for r in sorted(summary.results, key=lambda r: r.student_id):
        style = {"graded": "", "error": "red", "timeout": "yellow"}.get(r.status.value, "")
        table.add_row(
            r.student_id,
            f"{format_points(r.score)}/{format_points(r.max_score)}",
            f"[{style}]{r.status.value}[/]" if style else r.status.value,
            f"{r.duration_s:.1f}",
            escape((r.message or "")[:90]),
        )
    out.print(table)
    times = [r.duration_s for r in summary.results if r.status is not Status.ERROR]
    median = f"{statistics.median(times):.2f} s" if times else "n/a"
    out.print(
        f"{summary.total} submissions: {len(summary.results)} graded now, "
        f"{summary.skipped} unchanged since last time (use --regrade to grade them again); "
        f"{summary.count(Status.ERROR)} error, {summary.count(Status.TIMEOUT)} timeout. "
        f"Sandbox: {summary.sandbox} ({escape(summary.isolation)}). "
        f"Median time per submission {median}, wall {summary.wall_s:.1f} s."
    )


@app.command()
def report(
    assignment: str,
    course: CourseOpt = Path("."),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the reports.")] = None,
) -> None:
    """Write per-student feedback and a class summary from the gradebook."""
    c = _course(course)
    spec = c.assignment(assignment).spec
    with Gradebook.open(c.gradebook) as book:
        rows = book.current(assignment)
    if not rows:
        raise AutograderError(f"nothing graded yet for {assignment}; run `autograder grade` first")
    paths = write_reports(spec, rows, out_dir or c.reports_dir(assignment))
    out.print(f"Wrote {len(paths.students)} student reports and {paths.summary_html}")


@app.command()
def export(
    assignment: str,
    course: CourseOpt = Path("."),
    format: Annotated[str, typer.Option("--format", help="Export format: csv.")] = "csv",
    out_file: Annotated[Path | None, typer.Option("--out", help="File to write.")] = None,
) -> None:
    """Export the current grades of ASSIGNMENT (default: exports/<assignment>.csv)."""
    if format not in FORMATS:
        raise AutograderError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    c = _course(course)
    spec = c.assignment(assignment).spec
    with Gradebook.open(c.gradebook) as book:
        rows = book.current(assignment)
    target = out_file or c.exports_dir() / f"{assignment}.{format}"
    FORMATS[format](spec, rows, target)
    out.print(f"Wrote {len(rows)} rows to {target}")


@app.command()
def check(
    notebook: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    assignment: Annotated[str | None, typer.Option(help="Assignment name.")] = None,
    course: Annotated[Path | None, typer.Option("--course", file_okay=False)] = None,
) -> None:
    """Run the public tests on NOTEBOOK, as the grader would run it."""
    found = check_verb.find_assignment(notebook.resolve(), course, assignment)
    box = grade_verb.make_sandbox("auto", Course(found.folder.parent.parent))
    result = check_verb.check(notebook.resolve(), found, box)
    if result.status is Status.ERROR:
        raise AutograderError(result.message)
    failed = 0
    for t in result.tests:
        mark = "[green]PASS[/]" if t.outcome is Outcome.PASSED else "[red]FAIL[/]"
        failed += t.outcome is not Outcome.PASSED
        note = f"\n     {escape(t.message)}" if t.message else ""
        out.print(f"{mark} {escape(t.description)}{note}")
    for cell in result.cells:
        out.print(f"[yellow]cell {cell.index}[/]: {escape(cell.error)}")
    for q in result.questions:
        if q.kind != "code":
            out.print(f"answer_{q.question_id}: {escape(q.feedback)}")
    out.print(f"{len(result.tests) - failed}/{len(result.tests)} public checks passed")
    if failed:
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


image_app = typer.Typer(no_args_is_help=True, help="The Docker sandbox image.")
app.add_typer(image_app, name="image")


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
    if not offline:
        raise AutograderError(
            "only --offline builds are automated; for a CUDA base image see docker/Dockerfile.cuda"
        )
    tag = image_verb.build_offline(
        cache.resolve(), force=force, mirror=mirror, log=lambda line: err.print(escape(line))
    )
    out.print(f"sandbox image: {tag} (also autograder-sandbox:latest)")


def main() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except AutograderError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
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
