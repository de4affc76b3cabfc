"""Competition teams, from the roster's `team` column.

Students sharing a team name form a team; a student with an empty `team` competes alone,
under their student id. A team may have at most `max_team_size` members (2 by default);
the daily cap, the final selection and the leaderboard are per team, and every member
gets the team's grade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.competition.errors import CompetitionError
from autograder.roster import Roster


@dataclass(frozen=True)
class Team:
    name: str
    members: tuple[str, ...]  # student ids, in roster order


@dataclass(frozen=True)
class Teams:
    teams: dict[str, Team]  # name -> team, in roster order
    by_student: dict[str, str]  # student id -> team name

    def resolve(self, name: str) -> Team | None:
        """The team called `name`, else the team of the student with id `name`, else None."""
        name = name.strip()
        if name in self.teams:
            return self.teams[name]
        team = self.by_student.get(name)
        return None if team is None else self.teams[team]


def teams_from_roster(roster: Roster | None, max_size: int, spec_path: Path) -> Teams:
    """The teams of the roster; raises CompetitionError when a team is too large or a team
    name is another student's id."""
    if roster is None:
        raise CompetitionError(
            "the competition needs the class roster for its teams: put roster.csv (columns "
            "id, name, email, team) in the course folder or pass --roster ROSTER.csv"
        )
    members: dict[str, list[str]] = {}
    for student in roster.students:
        members.setdefault(student.team.strip() or student.id, []).append(student.id)
    where = f" in {roster.path}" if roster.path else ""
    solo = {s.id for s in roster.students if not s.team.strip()}
    problems = []
    for name, ids in members.items():
        if len(ids) > max_size:
            problems.append(
                f"team {name!r} has {len(ids)} members ({', '.join(ids)}); "
                f"at most {max_size} are allowed"
            )
        if name in solo and ids != [name]:
            problems.append(
                f"team {name!r} has the name of student {name!r}, who competes alone; "
                "rename the team"
            )
    if problems:
        raise CompetitionError(
            "; ".join(problems)
            + f"{where}: fix the roster's team column (or max_team_size in {spec_path})"
        )
    teams = {name: Team(name, tuple(ids)) for name, ids in members.items()}
    by_student = {sid: name for name, ids in members.items() for sid in ids}
    return Teams(teams, by_student)
