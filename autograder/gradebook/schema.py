"""The gradebook's SQLite schema, and opening a gradebook file (creating or migrating it).

The schema version lives in `PRAGMA user_version` (what this module trusts) and is
mirrored in the `meta` table for people reading the file with other tools.
Queries live in `store.py`; this module only knows the shape of the tables.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from autograder.errors import GradebookError

SCHEMA_VERSION = 3

# A writer waits this long for another writer (e.g. `report` reading while `grade` writes
# never blocks in WAL mode; two writers do, briefly).
BUSY_TIMEOUT_S = 30.0

_SQLITE_HEADER = b"SQLite format 3\x00"

_V1 = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE attempts (
        id             INTEGER PRIMARY KEY,
        assignment     TEXT NOT NULL,
        student_id     TEXT NOT NULL,
        path           TEXT NOT NULL,
        content_hash   TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('graded', 'error', 'timeout', 'missing')),
        message        TEXT NOT NULL DEFAULT '',
        score          REAL NOT NULL,
        max_score      REAL NOT NULL,
        sandbox        TEXT NOT NULL DEFAULT '',
        duration_s     REAL NOT NULL DEFAULT 0,
        peak_memory_mb REAL,
        stdout         TEXT NOT NULL DEFAULT '',
        stderr         TEXT NOT NULL DEFAULT '',
        graded_at      TEXT NOT NULL,
        current        INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1))
    )
    """,
    # Exactly one current attempt per student and assignment, enforced by SQLite itself.
    """
    CREATE UNIQUE INDEX attempts_one_current
        ON attempts (assignment, student_id) WHERE current = 1
    """,
    "CREATE INDEX attempts_by_student ON attempts (assignment, student_id, id)",
    # `position` keeps each list in the order the grader produced it.
    """
    CREATE TABLE question_scores (
        attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        question_id TEXT NOT NULL,
        kind        TEXT NOT NULL,
        score       REAL,
        max_score   REAL NOT NULL,
        feedback    TEXT NOT NULL DEFAULT '',
        answer      TEXT,
        PRIMARY KEY (attempt_id, position),
        UNIQUE (attempt_id, question_id)
    )
    """,
    """
    CREATE TABLE test_results (
        attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        test_id     TEXT NOT NULL,
        question_id TEXT,
        outcome     TEXT NOT NULL
                    CHECK (outcome IN ('passed', 'failed', 'error', 'timeout', 'skipped')),
        message     TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        weight      REAL NOT NULL DEFAULT 1,
        duration_s  REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (attempt_id, position)
    )
    """,
    """
    CREATE TABLE cell_errors (
        attempt_id INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        cell_index INTEGER NOT NULL,
        error      TEXT NOT NULL,
        traceback  TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (attempt_id, position)
    )
    """,
)

# Version 2: the `pending` status (manual grading), the late policy's columns, who set a
# score by hand, the audit trail of score changes, and the `forbidden` test outcome.
# SQLite cannot change a CHECK constraint in place: `attempts` and `test_results` are
# rebuilt the way SQLite's documentation describes (new table, copy, drop, rename), which
# `_migrate` runs with foreign keys off so the drop does not cascade into the children.
_V2 = (
    """
    CREATE TABLE attempts_v2 (
        id              INTEGER PRIMARY KEY,
        assignment      TEXT NOT NULL,
        student_id      TEXT NOT NULL,
        path            TEXT NOT NULL,
        content_hash    TEXT NOT NULL,
        status          TEXT NOT NULL
                        CHECK (status IN ('graded', 'error', 'timeout', 'missing', 'pending')),
        message         TEXT NOT NULL DEFAULT '',
        score           REAL NOT NULL,
        max_score       REAL NOT NULL,
        sandbox         TEXT NOT NULL DEFAULT '',
        duration_s      REAL NOT NULL DEFAULT 0,
        peak_memory_mb  REAL,
        stdout          TEXT NOT NULL DEFAULT '',
        stderr          TEXT NOT NULL DEFAULT '',
        graded_at       TEXT NOT NULL,
        current         INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1)),
        submitted_at    TEXT,
        late_minutes    REAL NOT NULL DEFAULT 0,
        penalty_percent REAL NOT NULL DEFAULT 0
                        CHECK (penalty_percent >= 0 AND penalty_percent <= 100)
    )
    """,
    """
    INSERT INTO attempts_v2 (id, assignment, student_id, path, content_hash, status, message,
        score, max_score, sandbox, duration_s, peak_memory_mb, stdout, stderr, graded_at,
        current)
    SELECT id, assignment, student_id, path, content_hash, status, message, score, max_score,
        sandbox, duration_s, peak_memory_mb, stdout, stderr, graded_at, current
    FROM attempts
    """,
    "DROP TABLE attempts",
    "ALTER TABLE attempts_v2 RENAME TO attempts",
    """
    CREATE UNIQUE INDEX attempts_one_current
        ON attempts (assignment, student_id) WHERE current = 1
    """,
    "CREATE INDEX attempts_by_student ON attempts (assignment, student_id, id)",
    """
    CREATE TABLE test_results_v2 (
        attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        test_id     TEXT NOT NULL,
        question_id TEXT,
        outcome     TEXT NOT NULL CHECK (outcome IN
                    ('passed', 'failed', 'error', 'timeout', 'skipped', 'forbidden')),
        message     TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        weight      REAL NOT NULL DEFAULT 1,
        duration_s  REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (attempt_id, position)
    )
    """,
    "INSERT INTO test_results_v2 SELECT * FROM test_results",
    "DROP TABLE test_results",
    "ALTER TABLE test_results_v2 RENAME TO test_results",
    # NULL: the score came from the autograder; else who set it (manual grade, override).
    "ALTER TABLE question_scores ADD COLUMN graded_by TEXT",
    # Every score a human set or a regrade changed: who, when, why, old and new score.
    # question_id NULL: the change concerns the whole submission.
    """
    CREATE TABLE score_changes (
        id          INTEGER PRIMARY KEY,
        assignment  TEXT NOT NULL,
        student_id  TEXT NOT NULL,
        attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
        question_id TEXT,
        kind        TEXT NOT NULL CHECK (kind IN ('manual', 'override', 'regrade', 'carried')),
        old_score   REAL,
        new_score   REAL,
        grader      TEXT NOT NULL,
        reason      TEXT NOT NULL DEFAULT '',
        changed_at  TEXT NOT NULL
    )
    """,
    "CREATE INDEX score_changes_by_student ON score_changes (assignment, student_id, id)",
)

# Version 3: the in-class competition (`autograder/competition/`). Every file a team
# handed in, accepted or not, with its content, hash, the time the autograder received it
# (never a time from the file) and its public and private scores; `selected` marks the
# team's final selection. Only new tables: nothing older is touched.
_V3 = (
    """
    CREATE TABLE competition_submissions (
        id            INTEGER PRIMARY KEY,
        competition   TEXT NOT NULL,
        team          TEXT NOT NULL,
        submitted_by  TEXT NOT NULL DEFAULT '',
        kind          TEXT NOT NULL CHECK (kind IN ('csv', 'code')),
        filename      TEXT NOT NULL,
        content       BLOB NOT NULL,
        content_hash  TEXT NOT NULL,
        predictions   TEXT,
        status        TEXT NOT NULL CHECK (status IN ('scored', 'rejected')),
        message       TEXT NOT NULL DEFAULT '',
        public_score  REAL,
        private_score REAL,
        solution_hash TEXT NOT NULL DEFAULT '',
        submitted_at  TEXT NOT NULL,
        selected      INTEGER NOT NULL DEFAULT 0 CHECK (selected IN (0, 1)),
        CHECK (status = 'rejected' OR (public_score IS NOT NULL AND private_score IS NOT NULL)),
        CHECK (status = 'scored' OR selected = 0)
    )
    """,
    """
    CREATE INDEX competition_submissions_by_team
        ON competition_submissions (competition, team, submitted_at, id)
    """,
)

# MIGRATIONS[v] turns a version v-1 gradebook into version v (0 = empty file).
# Add a tuple here, never edit an old one: gradebooks in the field were built by them.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1, 2: _V2, 3: _V3}


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the gradebook at `path`.

    The connection is in autocommit mode: callers open their own transactions.
    Raises GradebookError for a corrupt file, a non-gradebook or a newer schema.
    """
    _check_header(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise GradebookError(
            f"cannot open gradebook {path}: {exc}; check that its folder exists and is writable"
        ) from None
    conn.row_factory = sqlite3.Row
    try:
        _configure(conn, path)
        _migrate(conn, path)
    except GradebookError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise corrupt_error(path, exc) from None
    return conn


def corrupt_error(path: Path, exc: BaseException) -> GradebookError:
    """The error for a gradebook file SQLite cannot read."""
    return GradebookError(
        f"gradebook {path} is damaged or not a gradebook ({exc}); restore it from a backup, "
        f"or move it aside (e.g. to {path.name}.broken) and run `autograder grade` again "
        "to rebuild it from the submissions"
    )


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str) -> Iterator[sqlite3.Connection]:
    """One explicit transaction (`mode`: DEFERRED, IMMEDIATE...), rolled back on any error."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def sqlite_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn sqlite3 errors into GradebookErrors that name the file and say what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise GradebookError(
                f"gradebook {path} stayed locked by another process for "
                f"{BUSY_TIMEOUT_S:.0f} s while {doing}; wait for the other autograder "
                "command to finish and run this one again"
            ) from None
        raise GradebookError(
            f"gradebook {path}: {doing} failed ({exc}); check free disk space "
            f"and write permission on {path.parent}"
        ) from None
    except sqlite3.IntegrityError as exc:
        raise GradebookError(
            f"gradebook {path} refused inconsistent data while {doing} ({exc}); "
            "nothing was written; this is a bug in the autograder, please report it"
        ) from None
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, exc) from None


def _check_header(path: Path) -> None:
    # SQLite only notices a foreign file at the first query; say plainly which file it is.
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GradebookError(f"cannot read gradebook {path}: {exc.strerror}") from None
    if header and header != _SQLITE_HEADER:
        raise corrupt_error(path, ValueError("not an SQLite database"))


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        # Without WAL, `report` would block `grade` (and the other way round).
        raise GradebookError(
            f"gradebook {path} cannot use SQLite's WAL journal (got {mode!r}); keep the course "
            "on a local, writable disk (not a network share or read-only mount)"
        )
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = _user_version(conn)
    _refuse_newer(version, path)
    if version == SCHEMA_VERSION:
        return
    # Rebuilding a table drops the old one; with foreign keys on, that drop would delete
    # every child row. The pragma only works outside a transaction; the check below
    # proves the rebuilt tables still fit together before anything is committed.
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the write lock.
        version = _user_version(conn)
        _refuse_newer(version, path)
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise GradebookError(
                f"{path} is an SQLite database but not an autograder gradebook; "
                "move it aside or pass the right --course"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
        if broken := conn.execute("PRAGMA foreign_key_check").fetchall():
            raise GradebookError(
                f"gradebook {path}: migrating to schema version {SCHEMA_VERSION} left "
                f"{len(broken)} row(s) without their attempt; nothing was changed; "
                "restore the file from a backup and report a bug"
            )
        _write_meta(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise GradebookError(
            f"gradebook {path} was written by a newer autograder (schema version {version}; "
            f"this autograder understands up to {SCHEMA_VERSION}); upgrade autograder "
            "(`pip install --upgrade autograder`) before using this course"
        )


def _write_meta(conn: sqlite3.Connection) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (now,))
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_at', ?)", (now,))
