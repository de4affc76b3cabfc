"""The competition grade: the private leaderboard mapped to a percentage per student.

`[grade]` in competition.toml says how (see `spec.GradeRule`): by rank (linear from
`best` to `worst`, or `tiers`), or by private score (linear from `zero` to `full`).
Every member of a team gets the team's grade; a roster student whose team has no scored
submission gets `missing`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from autograder.competition.leaderboard import Entry, Leaderboard, format_score
from autograder.competition.spec import GradeRule
from autograder.competition.teams import Teams
from autograder.tabular import atomic_text, safe_text


@dataclass(frozen=True)
class StudentGrade:
    student_id: str
    team: str
    percent: float  # 0..100
    rank: int | None = None  # the team's private rank; None: no scored submission
    private_score: float | None = None
    note: str = ""


def team_percent(rule: GradeRule, entry: Entry, teams_ranked: int) -> float:
    """The percentage one leaderboard entry earns under `rule`."""
    if rule.by == "score":
        assert rule.zero is not None and rule.full is not None  # checked by the spec
        share = (entry.score - rule.zero) / (rule.full - rule.zero)
        return 100.0 * min(1.0, max(0.0, share))
    if rule.tiers:
        for tier in sorted(rule.tiers, key=lambda t: t.top):
            if entry.rank <= tier.top:
                return tier.percent
        return rule.worst
    if teams_ranked <= 1:
        return rule.best
    return rule.best - (entry.rank - 1) / (teams_ranked - 1) * (rule.best - rule.worst)


def grade_students(rule: GradeRule, board: Leaderboard, teams: Teams) -> list[StudentGrade]:
    """One grade per roster student, in roster team order."""
    by_team = {e.team: e for e in board.entries}
    grades = []
    for team in teams.teams.values():
        entry = by_team.get(team.name)
        for sid in team.members:
            if entry is None:
                grades.append(
                    StudentGrade(sid, team.name, rule.missing, note="no scored submission")
                )
            else:
                percent = team_percent(rule, entry, len(board.entries))
                grades.append(StudentGrade(sid, team.name, percent, entry.rank, entry.score))
    return grades


def write_grades(path: Path, grades: list[StudentGrade]) -> Path:
    """The grades as CSV: student_id, team, rank, private_score, percent, note."""
    with atomic_text(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["student_id", "team", "rank", "private_score", "percent", "note"])
        for g in grades:
            writer.writerow(
                [
                    safe_text(g.student_id),
                    safe_text(g.team),
                    "" if g.rank is None else g.rank,
                    "" if g.private_score is None else format_score(g.private_score),
                    f"{g.percent:.2f}",
                    g.note,
                ]
            )
    return path
