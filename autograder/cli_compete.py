"""`autograder compete ...`: the in-class competition's commands, thin wrappers around
`autograder.competition.compete`.

Kept apart from `cli.py` (which registers this sub-app) so the competition stays one
feature; like `cli.py` it prints every text a student controls (team names, file names,
messages quoting them) through `safe`.
"""

from __future__ import annotations

import tempfile
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from autograder import grade as grade_verb
from autograder.course import Course
from autograder.display import safe
from autograder.errors import ExitCode
from autograder.roster import Roster, find_roster
from autograder.sandbox.base import Sandbox

# The competition (numpy, jinja2) is imported by the commands that use it: registering
# them must not slow the start of every other command, `grade` first of all.
if TYPE_CHECKING:
    from autograder.competition import compete
    from autograder.competition.leaderboard import Leaderboard
    from autograder.competition.store import StoredSubmission

compete_app = typer.Typer(
    no_args_is_help=True,
    help="The in-class competition: submissions, leaderboards, final selection, grades.",
)
out = Console()
err = Console(stderr=True)


CompetitionArg = Annotated[str, typer.Argument(help="The competition (competitions/<name>/).")]
CourseOpt = Annotated[Path, typer.Option("--course", help="The course folder.", file_okay=False)]
RosterOpt = Annotated[
    Path | None,
    typer.Option(
        "--roster",
        dir_okay=False,
        help="Roster CSV with a team column. Default: roster.csv in the course.",
    ),
]
TeamOpt = Annotated[str, typer.Option("--team", help="Team name (or a member's student id).")]


def _context(course: Path, competition: str, roster: Path | None) -> compete.Context:
    from autograder.competition import compete

    c = Course.at(course)
    return compete.open_competition(c, competition, find_roster(c.root, roster))


def _roster(course: Path, roster: Path | None) -> Roster | None:
    return find_roster(Course.at(course).root, roster)


def _sandbox_factory(name: str, course: Course) -> compete.SandboxFactory:
    made: list[Sandbox] = []

    def factory() -> Sandbox:
        if not made:  # built (and its gaps reported) only once a notebook must run
            box = grade_verb.make_sandbox(name, course)
            for gap in box.missing():
                err.print(f"[bold red]WARNING: sandbox isolation incomplete:[/] {safe(gap)}")
            made.append(box)
        return made[0]

    return factory


@compete_app.command("submit")
def submit(
    competition: CompetitionArg,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Predictions CSVs or notebooks; without --team also folders, zips "
            "and LMS downloads (file names: team names or student ids)."
        ),
    ],
    team: Annotated[
        str | None, typer.Option("--team", help="The team of every file given.")
    ] = None,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
    sandbox: Annotated[
        str, typer.Option(help="Where notebooks run: auto, local or docker.")
    ] = "auto",
) -> None:
    """Check, score and record submissions (the time recorded is now, not the file's)."""
    from autograder.competition import compete
    from autograder.competition.leaderboard import format_score

    class_roster = _roster(course, roster)
    ctx = compete.open_competition(Course.at(course), competition, class_roster)
    with (
        tempfile.TemporaryDirectory(prefix="autograder-compete-") as unpack,
        err.status(f"{safe(ctx.name)}: checking and scoring") as status,
    ):

        def progress(receipt: compete.Receipt) -> None:
            status.update(f"{safe(ctx.name)}: {safe(receipt.filename)} {receipt.status}")

        receipts = compete.submit_paths(
            ctx,
            paths,
            Path(unpack),
            class_roster,
            team=team,
            sandbox=_sandbox_factory(sandbox, ctx.course),
            progress=progress,
        )
    cap = ctx.competition.spec.daily_cap
    metric = ctx.competition.spec.metric.label
    if len(receipts) == 1:
        r = receipts[0]
        if r.scored:
            out.print(
                f"[green]scored[/] {safe(r.filename)} of team {safe(r.team)}: public {metric} "
                f"{format_score(r.public_score)} (submission {r.submission_id}; "
                f"{r.used_today} of {cap} today)"
            )
        else:
            err.print(f"[red]rejected[/] {safe(r.message)}", highlight=False, soft_wrap=True)
    else:
        table = Table(title=f"Submissions to {safe(ctx.name)}")
        for col in ("file", "team", "status", f"public {metric}", "id", "today", "note"):
            table.add_column(col)
        for r in receipts:
            status = "[green]scored[/]" if r.scored else "[red]rejected[/]"
            table.add_row(
                safe(r.origin or r.filename),
                safe(r.team),
                status,
                format_score(r.public_score) if r.scored else "",
                "" if r.submission_id is None else str(r.submission_id),
                "" if r.used_today is None else f"{r.used_today}/{cap}",
                "" if r.scored else safe(r.message[:200]),
            )
        out.print(table)
        scored = sum(r.scored for r in receipts)
        out.print(f"{len(receipts)} file(s): {scored} scored, {len(receipts) - scored} rejected")
    if any(not r.scored for r in receipts):
        raise typer.Exit(ExitCode.SUBMISSIONS_FAILED)


@compete_app.command("select")
def select(
    competition: CompetitionArg,
    team: TeamOpt,
    ids: Annotated[
        list[int] | None, typer.Argument(help="Submission ids (see `compete submissions`).")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Select none: the best public ones count.")
    ] = False,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
) -> None:
    """Choose a team's final submissions for the private leaderboard (until it closes)."""
    from autograder.competition import compete

    if not ids and not clear:
        raise typer.BadParameter("give submission ids, or --clear to select none")
    if ids and clear:
        raise typer.BadParameter("give submission ids or --clear, not both")
    ctx = _context(course, competition, roster)
    subs = compete.select(ctx, team, ids or [], compete.utc_now())
    chosen = [str(s.id) for s in subs if s.selected]
    name = subs[0].team if subs else team
    if chosen:
        out.print(f"team {safe(name)} selected: {', '.join(chosen)}")
    else:
        out.print(
            f"team {safe(name)} selected nothing: its "
            f"{ctx.competition.spec.selections} best public submissions will count"
        )


@compete_app.command("submissions")
def submissions(
    competition: CompetitionArg,
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
) -> None:
    """Every submission (accepted or rejected), oldest first; private scores once closed."""
    from autograder.competition import compete

    ctx = _context(course, competition, roster)
    now = compete.utc_now()
    closed = ctx.competition.is_closed(now)
    rows = compete.submissions(ctx, team)
    table = Table(title=f"Submissions to {safe(ctx.name)}", caption="*: selected")
    for col in ["id", "received (UTC)", "status", "public", *(["private"] if closed else [])]:
        table.add_column(col, no_wrap=True, min_width=len(col) if col != "received (UTC)" else 19)
    table.add_column("", no_wrap=True, min_width=1)  # the selection mark
    for col in ("team", "by", "file"):
        table.add_column(col, overflow="fold")
    for s in rows:
        table.add_row(*_submission_row(s, closed))
    out.print(table)
    for s in rows:  # why files were rejected, in full: the table has no room for it
        if not s.scored:
            out.print(f"[red]{s.id}[/] ({safe(s.team)}): {safe(s.message)}", highlight=False)


def _submission_row(s: StoredSubmission, closed: bool) -> list[str]:
    from autograder.competition.leaderboard import format_score

    cells = [
        str(s.id),
        f"{s.submitted_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        s.status,
        format_score(s.public_score) if s.scored else "",
    ]
    if closed:
        cells.append(format_score(s.private_score) if s.scored else "")
    cells += ["*" if s.selected else "", safe(s.team), safe(s.submitted_by), safe(s.filename)]
    return cells


@compete_app.command("leaderboard")
def leaderboard(
    competition: CompetitionArg,
    private: Annotated[
        bool, typer.Option("--private", help="The final ranking (after closing).")
    ] = False,
    html: Annotated[bool, typer.Option("--html", help="Also write a static HTML page.")] = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", dir_okay=False, help="The HTML page (default: reports/...)."),
    ] = None,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
) -> None:
    """The public leaderboard (public rows only), or with --private the final one."""
    from autograder.competition import compete
    from autograder.competition.leaderboard import write_html

    ctx = _context(course, competition, roster)
    board = compete.leaderboard(ctx, compete.utc_now(), private)
    out.print(_board_table(board))
    if html or out_file is not None:
        target = out_file or (
            ctx.course.root / "reports" / "competitions" / ctx.name / f"{board.split}.html"
        )
        out.print(f"Wrote {write_html(board, target)}")


def _board_table(board: Leaderboard) -> Table:
    from autograder.competition.leaderboard import format_score, format_shift, format_time

    state = (
        f"open until {format_time(board.closes)}"
        if board.is_open()
        else (f"opens {format_time(board.opens)}" if board.generated_at < board.opens else "closed")
    )
    table = Table(
        title=f"{safe(board.title)}: {board.split} leaderboard",
        caption=f"{board.metric.label}, {board.metric.direction}; {board.rows} of "
        f"{board.test_rows} test rows; {state}; ties go to the earlier submission",
    )
    columns = ["#", "change", "team", "private", "public", "public #", "entries", "submitted"]
    if not board.private:
        columns = ["#", "team", "score", "entries", "submitted"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("team", "submitted") else "right")
    for e in board.entries:
        when = format_time(e.submitted_at)
        if board.private:
            shift = format_shift(e.shift)
            style = "green" if (e.shift or 0) > 0 else "red" if (e.shift or 0) < 0 else ""
            table.add_row(
                str(e.rank),
                f"[{style}]{shift}[/]" if style else shift,
                safe(e.team),
                format_score(e.score),
                format_score(e.public_score),
                str(e.public_rank),
                str(e.entries),
                when,
            )
        else:
            table.add_row(str(e.rank), safe(e.team), format_score(e.score), str(e.entries), when)
    return table


@compete_app.command("grades")
def grades(
    competition: CompetitionArg,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", dir_okay=False, help="CSV (default: exports/<name>-grades.csv)."),
    ] = None,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
) -> None:
    """The competition grade of every student, from the private leaderboard (after closing)."""
    from autograder.competition import compete
    from autograder.competition.grades import write_grades

    ctx = _context(course, competition, roster)
    board, student_grades = compete.grades(ctx, compete.utc_now())
    target = out_file or ctx.course.exports_dir() / f"{ctx.name}-grades.csv"
    write_grades(target, student_grades)
    rule = ctx.competition.spec.grade
    how = (
        f"by private score: {rule.zero:g} -> 0%, {rule.full:g} -> 100%"
        if rule.by == "score"
        else "by rank: tiers"
        if rule.tiers
        else f"by rank: {rule.best:g}% to {rule.worst:g}%"
    )
    out.print(
        f"Wrote the grades of {len(student_grades)} students ({len(board.entries)} ranked "
        f"teams; {how}) to {target}"
    )
    missing = [g for g in student_grades if g.rank is None]
    if missing:
        err.print(
            f"[yellow]{len(missing)} student(s) in teams without a scored submission get "
            f"{rule.missing:g}%[/]"
        )


@compete_app.command("rescore")
def rescore(
    competition: CompetitionArg,
    course: CourseOpt = Path("."),
    roster: RosterOpt = None,
) -> None:
    """Score every submission again against the current solution (after fixing it)."""
    from autograder.competition import compete

    ctx = _context(course, competition, roster)
    done = compete.rescore(ctx)
    out.print(
        f"{done.total} scored submission(s) checked: {done.changed} changed, "
        f"{done.rejected} no longer fit the solution (now rejected)"
    )
