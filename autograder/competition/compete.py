"""The competition's verbs: submit, select, leaderboards, grades, rescore.

Each is a library function the `autograder compete` commands wrap. They compose the pure
steps (spec, solution, intake, metrics, leaderboard, grades) with the store. The time
("now") is a parameter everywhere, so tests can move the clock; submissions are stamped
with the time the autograder received them, never a time found in the file.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autograder.competition import bulk
from autograder.competition.errors import CompetitionError, SubmissionRejected
from autograder.competition.grades import StudentGrade, grade_students
from autograder.competition.intake import (
    MAX_CSV_BYTES,
    Predictions,
    expected_columns,
    predictions_csv,
    read_predictions,
)
from autograder.competition.leaderboard import Leaderboard, private_board, public_board
from autograder.competition.metrics import score
from autograder.competition.predictor import run_predict
from autograder.competition.solution import Inputs, Solution, Split, load_inputs, load_solution
from autograder.competition.spec import Competition, load_competition
from autograder.competition.store import (
    REJECTED,
    SCORED,
    CompetitionStore,
    DailyCap,
    NewSubmission,
    StoredSubmission,
)
from autograder.competition.teams import Team, Teams, teams_from_roster
from autograder.course import Course
from autograder.display import printable
from autograder.errors import SandboxError
from autograder.notebook import MAX_NOTEBOOK_BYTES
from autograder.roster import Roster
from autograder.sandbox.base import Sandbox

Clock = Callable[[], datetime]
SandboxFactory = Callable[[], Sandbox]
NOT_COUNTED = "not counted against the daily cap"


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """`moment`, refused when naive: a time without an offset names no single moment."""
    if moment.utcoffset() is None:
        raise ValueError("competition times must be timezone-aware, e.g. datetime.now(UTC)")
    return moment


@dataclass(frozen=True)
class Context:
    """A competition with everything loaded that its commands need."""

    course: Course
    competition: Competition
    solution: Solution
    teams: Teams

    @property
    def name(self) -> str:
        return self.competition.name

    @functools.cached_property
    def inputs(self) -> Inputs:
        """What predict(X) receives (read once: a bulk intake of notebooks reuses them)."""
        return load_inputs(self.competition, self.solution)


def open_competition(course: Course, name: str, roster: Roster | None) -> Context:
    """Load competition `name` of `course`: spec, solution and the roster's teams."""
    competition = load_competition(course.root, name)
    solution = load_solution(competition)
    teams = teams_from_roster(roster, competition.spec.max_team_size, competition.spec_path)
    return Context(course, competition, solution, teams)


@dataclass(frozen=True)
class Receipt:
    """What became of one submitted file."""

    filename: str
    team: str  # "" when the file could not be assigned to a team
    status: str  # scored | rejected
    message: str
    submitted_at: datetime
    submission_id: int | None = None  # None: nothing was stored (no team, unreadable)
    public_score: float | None = None
    used_today: int | None = None  # the team's scored submissions today, this one included
    origin: str = ""

    @property
    def scored(self) -> bool:
        return self.status == SCORED


# --------------------------------------------------------------------------- submit
def resolve_team(ctx: Context, name: str) -> Team:
    """The team called `name`, or the team of student `name`; CompetitionError if neither."""
    team = ctx.teams.resolve(name)
    if team is None:
        known = ", ".join(list(ctx.teams.teams)[:20]) or "none"
        raise CompetitionError(
            f"no team or student {printable(name)!r} on the roster (teams: {known}); check "
            "the name, or add the team to the roster's team column"
        )
    return team


def day_window(ctx: Context, moment: datetime) -> tuple[datetime, datetime]:
    """The cap's day holding `moment`: from midnight to midnight in `day_timezone`."""
    local = moment.astimezone(ctx.competition.spec.tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Aware arithmetic within one zone is wall-clock arithmetic: the next midnight, also
    # across a daylight-saving change.
    end = start + timedelta(days=1)
    return start, end


def _refusal(ctx: Context, received: datetime) -> str | None:
    spec = ctx.competition.spec
    if received < spec.opens:
        return f"{ctx.name} opens at {spec.opens.isoformat()}; not scored ({NOT_COUNTED})"
    if received >= spec.closes:
        return f"{ctx.name} closed at {spec.closes.isoformat()}; no more submissions are scored"
    return None


def _cap(ctx: Context, team: Team, received: datetime) -> DailyCap:
    spec = ctx.competition.spec
    start, end = day_window(ctx, received)
    return DailyCap(
        start,
        end,
        spec.daily_cap,
        f"team {team.name!r} already has {spec.daily_cap} scored submission(s) on "
        f"{start.date().isoformat()} ({spec.day_timezone}); the next can be scored from "
        f"{end.isoformat()}; this file was not scored",
    )


def submit_file(
    ctx: Context,
    path: Path,
    team_name: str,
    *,
    submitted_by: str = "",
    sandbox: SandboxFactory | None = None,
    clock: Clock = utc_now,
    origin: str = "",
) -> Receipt:
    """Check, score and store one file of team `team_name` (a team or a student id).

    The file is stored even when rejected (with the reason); only scored ones count
    against the daily cap. Raises CompetitionError for an unknown team.
    """
    received = aware(clock())
    team = resolve_team(ctx, team_name)
    name = printable(path.name)
    kind = {".csv": "csv", ".ipynb": "code"}.get(path.suffix.lower())
    if kind is None:
        why = f"{name}: not a .csv predictions file or an .ipynb notebook ({NOT_COUNTED})"
        return Receipt(name, team.name, REJECTED, why, received, origin=origin)
    try:
        data = _read(path, MAX_NOTEBOOK_BYTES if kind == "code" else MAX_CSV_BYTES)
    except SubmissionRejected as exc:
        return Receipt(name, team.name, REJECTED, f"{exc} ({NOT_COUNTED})", received, origin=origin)
    new = NewSubmission(
        ctx.name,
        team.name,
        submitted_by,
        kind,
        path.name,
        data,
        hashlib.sha256(data).hexdigest(),
        received,
        REJECTED,
    )
    with CompetitionStore.open(ctx.course.gradebook) as store:
        refusal = _refusal(ctx, received)
        cap = _cap(ctx, team, received)
        if (
            refusal is None
            and store.count_scored(ctx.name, team.name, cap.start, cap.end) >= cap.limit
        ):
            refusal = cap.refusal  # checked early too, so a notebook over the cap never runs
        # Scoring may run a notebook for minutes: no transaction is open meanwhile.
        new = replace(new, message=refusal) if refusal else _scored(ctx, new, path, sandbox)
        stored = store.record(new, cap)
        used = store.count_scored(ctx.name, team.name, cap.start, cap.end)
    return Receipt(
        name,
        team.name,
        stored.status,
        stored.message,
        received,
        stored.id,
        stored.public_score,
        used,
        origin,
    )


def _read(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise SubmissionRejected(
                printable(path.name), [f"{size:,} bytes; the limit is {limit:,}"]
            )
        return path.read_bytes()
    except OSError as exc:
        raise SubmissionRejected(
            printable(path.name), [f"cannot read it: {exc.strerror}"]
        ) from None


def _scored(
    ctx: Context, new: NewSubmission, path: Path, sandbox: SandboxFactory | None
) -> NewSubmission:
    """`new` scored, or rejected with the reason (the file's problems, predict's failure)."""
    predictions_text: str | None = None
    try:
        if new.kind == "code":
            data = _run_code(ctx, path, sandbox)
            predictions_text = data.decode("utf-8")
            label = f"{printable(path.name)} (the predictions of predict(X))"
        else:
            data, label = new.content, printable(path.name)
        predictions = read_predictions(data, label, ctx.competition.spec, ctx.solution)
        public, private = score_splits(ctx, predictions, label)
    except SubmissionRejected as exc:
        return replace(new, message=f"{exc} ({NOT_COUNTED}: fix it and submit again)")
    except SandboxError as exc:
        return replace(
            new,
            message=f"the sandbox failed, not the team's code ({exc}); submit the same file "
            f"again ({NOT_COUNTED})",
        )
    return replace(
        new,
        status=SCORED,
        public_score=public,
        private_score=private,
        solution_hash=ctx.solution.digest,
        predictions=predictions_text,
    )


def _run_code(ctx: Context, path: Path, sandbox: SandboxFactory | None) -> bytes:
    if ctx.competition.spec.code is None:
        raise SubmissionRejected(
            printable(path.name),
            [f"{ctx.name} takes predictions as CSV files only, not notebooks"],
        )
    if sandbox is None:
        raise CompetitionError("a notebook was submitted but no sandbox was given to run it")
    inputs = ctx.inputs
    run = run_predict(path, ctx.competition, ctx.solution, inputs, sandbox())
    columns = [
        ctx.competition.spec.id_column,
        *expected_columns(ctx.competition.spec, ctx.solution),
    ]
    return predictions_csv(inputs.ids, columns, run.rows)


def score_splits(ctx: Context, predictions: Predictions, label: str) -> tuple[float, float]:
    """(public score, private score) of valid predictions."""
    solution = ctx.solution
    scores = []
    for split in (Split.PUBLIC, Split.PRIVATE):
        mask = solution.mask(split)
        try:
            scores.append(
                score(
                    ctx.competition.spec.metric,
                    solution.targets[mask],
                    predictions.values[mask],
                    solution.classes,
                    solution.positive,
                )
            )
        except ValueError as exc:
            raise SubmissionRejected(
                label, [f"the metric cannot score these predictions: {exc}"]
            ) from None
    return scores[0], scores[1]


def submit_paths(
    ctx: Context,
    paths: Sequence[Path],
    unpack_dir: Path,
    roster: Roster | None,
    *,
    team: str | None = None,
    sandbox: SandboxFactory | None = None,
    clock: Clock = utc_now,
    progress: Callable[[Receipt], None] | None = None,
) -> list[Receipt]:
    """Submit files, folders, zips or LMS downloads; one receipt per file found.

    With `team`, every path is a file of that team. Without, each file's team comes from
    its name (a team or a student id) or, in an LMS download, from the roster. One file's
    problem never stops the others.
    """
    receipts = []
    if team is not None:
        resolve_team(ctx, team)  # an unknown team is a typo on the command line: stop
        found = [bulk.Found(p, team) for p in paths]
        folders = [f.path for f in found if f.path.is_dir()]
        if folders:
            raise CompetitionError(
                f"{printable(str(folders[0]))} is a folder; with --team pass files, or leave "
                "--team out to read folders and LMS downloads (one file per team or student)"
            )
    else:
        found = bulk.find(list(paths), unpack_dir, roster)
    for f in found:
        receipt = _submit_found(ctx, f, sandbox, clock)
        receipts.append(receipt)
        if progress is not None:
            progress(receipt)
    return receipts


def _submit_found(
    ctx: Context, found: bulk.Found, sandbox: SandboxFactory | None, clock: Clock
) -> Receipt:
    name = printable(found.path.name)
    if found.problem is not None:
        return Receipt(
            name, "", REJECTED, f"{found.problem} ({NOT_COUNTED})", clock(), origin=found.origin
        )
    team = ctx.teams.resolve(found.submitter)
    if team is None:
        why = (
            f"no team or student {printable(found.submitter)!r} on the roster; name the file "
            f"<team>.csv or <student id>.csv, or submit it with --team ({NOT_COUNTED})"
        )
        return Receipt(name, "", REJECTED, why, clock(), origin=found.origin)
    student = found.submitter if found.submitter in ctx.teams.by_student else ""
    return submit_file(
        ctx,
        found.path,
        team.name,
        submitted_by=student,
        sandbox=sandbox,
        clock=clock,
        origin=found.origin,
    )


# --------------------------------------------------------------------------- select
def select(
    ctx: Context, team_name: str, ids: Sequence[int], now: datetime
) -> list[StoredSubmission]:
    """Make `ids` the team's final selection (none: back to its best public ones).

    Allowed until the competition closes; returns the team's submissions afterwards.
    """
    now = aware(now)
    spec = ctx.competition.spec
    team = resolve_team(ctx, team_name)
    if now >= spec.closes:
        raise CompetitionError(
            f"{ctx.name} closed at {spec.closes.isoformat()}; the final selection of team "
            f"{team.name!r} can no longer change"
        )
    chosen = list(dict.fromkeys(ids))
    if len(chosen) > spec.selections:
        raise CompetitionError(
            f"team {team.name!r} may select at most {spec.selections} submission(s); "
            f"{len(chosen)} given"
        )
    with CompetitionStore.open(ctx.course.gradebook) as store:
        own = {s.id: s for s in store.submissions(ctx.name, team.name)}
        scored = [sid for sid, s in own.items() if s.scored]
        for sid in chosen:
            if sid not in own or not own[sid].scored:
                why = "was rejected" if sid in own else "is not one of theirs"
                raise CompetitionError(
                    f"submission {sid} {why}; team {team.name!r} can select among its scored "
                    f"submissions: {', '.join(map(str, scored)) or 'none yet'}"
                )
        store.select(ctx.name, team.name, chosen)
        return store.submissions(ctx.name, team.name)


# --------------------------------------------------------------------------- boards, grades
def submissions(ctx: Context, team_name: str | None = None) -> list[StoredSubmission]:
    """The competition's submissions (or one team's), oldest first."""
    team = None if team_name is None else resolve_team(ctx, team_name).name
    with CompetitionStore.open(ctx.course.gradebook) as store:
        return store.submissions(ctx.name, team)


def _scored_submissions(ctx: Context) -> list[StoredSubmission]:
    subs = submissions(ctx)
    stale = [s for s in subs if s.scored and s.solution_hash != ctx.solution.digest]
    if stale:
        raise CompetitionError(
            f"{ctx.competition.solution_path} changed after {len(stale)} submission(s) were "
            f"scored; run `autograder compete rescore {ctx.name}` to score every submission "
            "against the current solution"
        )
    return subs


def leaderboard(ctx: Context, now: datetime, private: bool = False) -> Leaderboard:
    """The public leaderboard, or the private one (only once the competition closed)."""
    now = aware(now)
    spec = ctx.competition.spec
    if private and now < spec.closes:
        raise CompetitionError(
            f"the private leaderboard of {ctx.name} is hidden until it closes at "
            f"{spec.closes.isoformat()}; the public one (without --private) is available now"
        )
    subs = _scored_submissions(ctx)
    build = private_board if private else public_board
    return build(ctx.competition, ctx.solution, subs, now)


def grades(ctx: Context, now: datetime) -> tuple[Leaderboard, list[StudentGrade]]:
    """The competition grade of every roster student, from the private leaderboard."""
    now = aware(now)
    spec = ctx.competition.spec
    if now < spec.closes:
        raise CompetitionError(
            f"{ctx.name} is open until {spec.closes.isoformat()}; its grades come from the "
            "private leaderboard, which exists once it closes"
        )
    board = leaderboard(ctx, now, private=True)
    return board, grade_students(spec.grade, board, ctx.teams)


@dataclass(frozen=True)
class Rescored:
    changed: int  # submissions whose scores or status changed
    rejected: int  # ... of which no longer fit the solution
    total: int


def rescore(ctx: Context) -> Rescored:
    """Score every scored submission again against the current solution (after a fix to it).

    Code submissions are not run again: their stored predictions are rescored.
    """
    spec = ctx.competition.spec
    updates = []
    rejected = 0
    with CompetitionStore.open(ctx.course.gradebook) as store:
        subs = [s for s in store.submissions(ctx.name) if s.scored]
        for s in subs:
            content, predictions_text = store.content(s.id)
            data = content if s.kind == "csv" else (predictions_text or "").encode("utf-8")
            label = printable(s.filename)
            try:
                predictions = read_predictions(data, label, spec, ctx.solution)
                public, private = score_splits(ctx, predictions, label)
            except SubmissionRejected as exc:
                rejected += 1
                why = f"no longer fits the solution after it changed: {exc}"
                updates.append((s.id, REJECTED, why, None, None, ""))
                continue
            if (public, private, ctx.solution.digest) != (
                s.public_score,
                s.private_score,
                s.solution_hash,
            ):
                updates.append((s.id, SCORED, s.message, public, private, ctx.solution.digest))
        store.update_scores(ctx.name, updates)
    return Rescored(len(updates), rejected, len(subs))
