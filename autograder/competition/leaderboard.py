"""The public and the private leaderboard, as values and as a static HTML page.

Public (while open, and after): each team's best public score over all its scored
submissions. Private (after closing only): each team's best private score over the
submissions it selected, or, when it selected none, over its best public ones (as many
as a team may select). Ties go to the earlier submission. The private board shows each
team's public rank and the shift between the two.

Pure: stored submissions in, `Leaderboard` out. Team names are text people typed, so the
HTML page escapes everything (jinja2 autoescape) and loads nothing from elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

from autograder.competition.metrics import Metric, sort_key
from autograder.competition.solution import Solution, Split
from autograder.competition.spec import Competition
from autograder.competition.store import StoredSubmission
from autograder.tabular import atomic_text


@dataclass(frozen=True)
class Entry:
    rank: int
    team: str
    score: float  # on this board's split
    submission_id: int  # the submission that earned `score`
    submitted_at: datetime  # ... and when it arrived (the tie-breaker)
    entries: int  # the team's scored submissions
    public_rank: int | None = None  # private board only
    public_score: float | None = None  # private board: the public score of the same file
    chosen: bool = False  # private board: the team selected its final submissions

    @property
    def shift(self) -> int | None:
        """Places gained from the public to the private board (negative: places lost)."""
        return None if self.public_rank is None else self.public_rank - self.rank


@dataclass(frozen=True)
class Leaderboard:
    competition: str
    title: str
    metric: Metric
    private: bool
    entries: list[Entry]
    generated_at: datetime
    opens: datetime
    closes: datetime
    rows: int  # test rows this board is computed on
    test_rows: int  # all rows of the test set

    @property
    def split(self) -> str:
        return "private" if self.private else "public"

    def is_open(self) -> bool:
        return self.opens <= self.generated_at < self.closes


def _by_team(submissions: Iterable[StoredSubmission]) -> dict[str, list[StoredSubmission]]:
    teams: dict[str, list[StoredSubmission]] = {}
    for s in submissions:
        if s.scored:
            teams.setdefault(s.team, []).append(s)
    return teams


def _best(metric: Metric, submissions: list[StoredSubmission], private: bool) -> StoredSubmission:
    def key(s: StoredSubmission) -> tuple[float, datetime, int]:
        value = s.private_score if private else s.public_score
        assert value is not None  # scored submissions have both scores
        return sort_key(metric, value), s.submitted_at, s.id

    return min(submissions, key=key)


def _ranked(metric: Metric, best: dict[str, StoredSubmission], private: bool) -> list[str]:
    def key(team: str) -> tuple[float, datetime, int]:
        s = best[team]
        value = s.private_score if private else s.public_score
        assert value is not None
        return sort_key(metric, value), s.submitted_at, s.id

    return sorted(best, key=key)


def final_submissions(
    metric: Metric, submissions: list[StoredSubmission], selections: int
) -> tuple[list[StoredSubmission], bool]:
    """The submissions of one team that count for the private board, and whether the team
    chose them (else: its `selections` best public ones)."""
    scored = [s for s in submissions if s.scored]
    chosen = [s for s in scored if s.selected]
    if chosen:
        return chosen, True

    def key(s: StoredSubmission) -> tuple[float, datetime, int]:
        assert s.public_score is not None
        return sort_key(metric, s.public_score), s.submitted_at, s.id

    return sorted(scored, key=key)[:selections], False


def public_board(
    competition: Competition,
    solution: Solution,
    submissions: list[StoredSubmission],
    now: datetime,
) -> Leaderboard:
    """The public leaderboard: best public score per team."""
    metric = competition.spec.metric
    teams = _by_team(submissions)
    best = {team: _best(metric, subs, private=False) for team, subs in teams.items()}
    entries = []
    for rank, team in enumerate(_ranked(metric, best, private=False), start=1):
        s = best[team]
        assert s.public_score is not None
        entries.append(Entry(rank, team, s.public_score, s.id, s.submitted_at, len(teams[team])))
    return _board(competition, solution, entries, now, private=False)


def private_board(
    competition: Competition,
    solution: Solution,
    submissions: list[StoredSubmission],
    now: datetime,
) -> Leaderboard:
    """The private leaderboard (the final ranking): call only after the competition closed."""
    spec = competition.spec
    metric = spec.metric
    teams = _by_team(submissions)
    public_ranks = {
        e.team: e.rank for e in public_board(competition, solution, submissions, now).entries
    }
    best: dict[str, StoredSubmission] = {}
    chosen: dict[str, bool] = {}
    for team, subs in teams.items():
        final, chosen[team] = final_submissions(metric, subs, spec.selections)
        best[team] = _best(metric, final, private=True)
    entries = []
    for rank, team in enumerate(_ranked(metric, best, private=True), start=1):
        s = best[team]
        assert s.private_score is not None
        entries.append(
            Entry(
                rank,
                team,
                s.private_score,
                s.id,
                s.submitted_at,
                len(teams[team]),
                public_ranks[team],
                s.public_score,
                chosen[team],
            )
        )
    return _board(competition, solution, entries, now, private=True)


def _board(
    competition: Competition,
    solution: Solution,
    entries: list[Entry],
    now: datetime,
    private: bool,
) -> Leaderboard:
    spec = competition.spec
    split = Split.PRIVATE if private else Split.PUBLIC
    return Leaderboard(
        competition=spec.name,
        title=spec.title or spec.name,
        metric=spec.metric,
        private=private,
        entries=entries,
        generated_at=now,
        opens=spec.opens,
        closes=spec.closes,
        rows=int(solution.mask(split).sum()),
        test_rows=len(solution),
    )


# --------------------------------------------------------------------------- HTML
def format_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.5f}"


def format_shift(shift: int | None) -> str:
    if shift is None:
        return ""
    if shift == 0:
        return "="
    return f"▲{shift}" if shift > 0 else f"▼{-shift}"


def format_time(moment: datetime) -> str:
    """`2026-12-11 23:59 UTC+01:00`: the moment in its own offset, which is always shown."""
    offset = moment.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    zone = (
        "UTC"
        if minutes == 0
        else f"UTC{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )
    return f"{moment:%Y-%m-%d %H:%M} {zone}"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("autograder", "templates"),
        autoescape=True,  # team names are typed by people: never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(score=format_score, shift=format_shift, when=format_time)
    return env


def render_html(board: Leaderboard) -> str:
    """The leaderboard as one self-contained HTML page."""
    return _environment().get_template("leaderboard.html.j2").render(board=board)


def write_html(board: Leaderboard, path: Path) -> Path:
    """Write the page to `path` atomically; returns `path`."""
    with atomic_text(path) as fh:
        fh.write(render_html(board))
    return path
