"""Competition submissions in the course gradebook (table `competition_submissions`).

Every file a team handed in is a row, accepted (`scored`) or not (`rejected`, with the
reason), with its content and hash and the time the autograder received it. Each
submission is one transaction; the daily cap is checked again inside it, so two intakes
running at once cannot both take a team's last submission of the day. The schema lives
in `autograder.gradebook.schema` (version 3); this module only queries it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from autograder.display import storable
from autograder.errors import GradebookError
from autograder.gradebook import connect
from autograder.gradebook.schema import sqlite_errors, transaction

SCORED = "scored"
REJECTED = "rejected"


def to_text(moment: datetime) -> str:
    """A time as stored: ISO-8601 in UTC with microseconds (sorts as text)."""
    if moment.utcoffset() is None:
        raise ValueError("competition times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class NewSubmission:
    """What intake hands to the store."""

    competition: str
    team: str
    submitted_by: str  # the student whose file it was, when known
    kind: str  # csv | code
    filename: str
    content: bytes
    content_hash: str
    submitted_at: datetime
    status: str  # SCORED | REJECTED
    message: str = ""
    public_score: float | None = None
    private_score: float | None = None
    solution_hash: str = ""
    predictions: str | None = None  # code submissions: their predictions as CSV


@dataclass(frozen=True)
class DailyCap:
    """At most `limit` scored submissions per team between `start` and `end`."""

    start: datetime
    end: datetime
    limit: int
    refusal: str  # the message a submission over the cap is stored with


@dataclass(frozen=True)
class StoredSubmission:
    id: int
    competition: str
    team: str
    submitted_by: str
    kind: str
    filename: str
    content_hash: str
    status: str
    message: str
    public_score: float | None
    private_score: float | None
    solution_hash: str
    submitted_at: datetime
    selected: bool

    @property
    def scored(self) -> bool:
        return self.status == SCORED


_COLUMNS = (
    "id, competition, team, submitted_by, kind, filename, content_hash, status, message,"
    " public_score, private_score, solution_hash, submitted_at, selected"
)


class CompetitionStore:
    """Submissions of the course's competitions. Open with `CompetitionStore.open(path)`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, gradebook: Path) -> CompetitionStore:
        """Open the course gradebook at `gradebook` (creating or migrating it)."""
        return cls(connect(gradebook), gradebook)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> CompetitionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- writing
    def record(self, new: NewSubmission, cap: DailyCap | None = None) -> StoredSubmission:
        """Store one submission in one transaction and return it as stored.

        With `cap`, a scored submission that would exceed it is stored as rejected with
        `cap.refusal` instead (rejected ones never count against the cap).
        """
        doing = f"recording a submission of team {new.team!r} to {new.competition!r}"
        with sqlite_errors(self.path, doing), transaction(self._conn, "IMMEDIATE") as conn:
            status, message = new.status, new.message
            public, private = new.public_score, new.private_score
            if status == SCORED and cap is not None:
                used = _count_scored(conn, new.competition, new.team, cap.start, cap.end)
                if used >= cap.limit:
                    status, message, public, private = REJECTED, cap.refusal, None, None
            cursor = conn.execute(
                "INSERT INTO competition_submissions (competition, team, submitted_by, kind,"
                " filename, content, content_hash, predictions, status, message, public_score,"
                " private_score, solution_hash, submitted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.competition,
                    new.team,
                    new.submitted_by,
                    new.kind,
                    storable(new.filename),
                    new.content,
                    new.content_hash,
                    new.predictions,
                    status,
                    storable(message),
                    public,
                    private,
                    new.solution_hash if status == SCORED else "",
                    to_text(new.submitted_at),
                ),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM competition_submissions WHERE id = ?",
                (cursor.lastrowid,),
            ).fetchone()
        return _stored(row)

    def select(self, competition: str, team: str, ids: Sequence[int]) -> None:
        """Make `ids` the team's final selection (replacing any earlier one), all or none.

        The caller checked that the ids are scored submissions of this team.
        """
        doing = f"selecting submissions of team {team!r} in {competition!r}"
        with sqlite_errors(self.path, doing), transaction(self._conn, "IMMEDIATE") as conn:
            conn.execute(
                "UPDATE competition_submissions SET selected = 0"
                " WHERE competition = ? AND team = ? AND selected = 1",
                (competition, team),
            )
            for sid in ids:
                done = conn.execute(
                    "UPDATE competition_submissions SET selected = 1"
                    " WHERE id = ? AND competition = ? AND team = ? AND status = ?",
                    (sid, competition, team, SCORED),
                )
                if done.rowcount != 1:  # raced with a rescore; nothing is kept
                    raise GradebookError(
                        f"submission {sid} is no scored submission of team {team!r}; "
                        "nothing was selected; list them with `autograder compete submissions`"
                    )

    def update_scores(
        self,
        competition: str,
        updates: Sequence[tuple[int, str, str, float | None, float | None, str]],
    ) -> None:
        """Rescore: (id, status, message, public, private, solution hash) per submission,
        all in one transaction. A submission turned rejected loses its selection."""
        with (
            sqlite_errors(self.path, f"rescoring {competition!r}"),
            transaction(self._conn, "IMMEDIATE") as conn,
        ):
            for sid, status, message, public, private, digest in updates:
                conn.execute(
                    "UPDATE competition_submissions SET status = ?, message = ?,"
                    " public_score = ?, private_score = ?, solution_hash = ?,"
                    " selected = CASE WHEN ? = 'scored' THEN selected ELSE 0 END"
                    " WHERE id = ? AND competition = ?",
                    (status, storable(message), public, private, digest, status, sid, competition),
                )

    # ----------------------------------------------------------------- reading
    def submissions(self, competition: str, team: str | None = None) -> list[StoredSubmission]:
        """The submissions of a competition (or of one team), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM competition_submissions WHERE competition = ?"
        params: tuple[str, ...] = (competition,)
        if team is not None:
            sql += " AND team = ?"
            params += (team,)
        with sqlite_errors(self.path, f"reading the submissions of {competition!r}"):
            rows = self._conn.execute(sql + " ORDER BY submitted_at, id", params).fetchall()
        return [_stored(row) for row in rows]

    def count_scored(self, competition: str, team: str, start: datetime, end: datetime) -> int:
        """Scored submissions of `team` received in [start, end)."""
        with sqlite_errors(self.path, f"counting the submissions of team {team!r}"):
            return _count_scored(self._conn, competition, team, start, end)

    def content(self, submission_id: int) -> tuple[bytes, str | None]:
        """(the file as submitted, the predictions CSV of a code submission or None)."""
        with sqlite_errors(self.path, f"reading submission {submission_id}"):
            row = self._conn.execute(
                "SELECT content, predictions FROM competition_submissions WHERE id = ?",
                (submission_id,),
            ).fetchone()
        if row is None:
            raise GradebookError(
                f"gradebook {self.path}: no competition submission {submission_id}"
            )
        return bytes(row["content"]), row["predictions"]


def _count_scored(
    conn: sqlite3.Connection, competition: str, team: str, start: datetime, end: datetime
) -> int:
    row = conn.execute(
        "SELECT count(*) FROM competition_submissions WHERE competition = ? AND team = ?"
        " AND status = ? AND submitted_at >= ? AND submitted_at < ?",
        (competition, team, SCORED, to_text(start), to_text(end)),
    ).fetchone()
    return int(row[0])


def _stored(row: sqlite3.Row) -> StoredSubmission:
    return StoredSubmission(
        id=int(row["id"]),
        competition=row["competition"],
        team=row["team"],
        submitted_by=row["submitted_by"],
        kind=row["kind"],
        filename=row["filename"],
        content_hash=row["content_hash"],
        status=row["status"],
        message=row["message"],
        public_score=row["public_score"],
        private_score=row["private_score"],
        solution_hash=row["solution_hash"],
        submitted_at=datetime.fromisoformat(row["submitted_at"]),
        selected=bool(row["selected"]),
    )
