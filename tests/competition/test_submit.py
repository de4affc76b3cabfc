"""Intake into the gradebook: the public/private split, the daily cap, the window, teams,
recorded times and contents, bulk intake of folders, zips and LMS downloads."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder.competition import compete
from autograder.competition.errors import CompetitionError
from autograder.competition.store import CompetitionStore, DailyCap, NewSubmission
from autograder.course import Course
from autograder.roster import load_roster
from tests.competition.conftest import (
    CLOSES,
    OPENS,
    TRUTH,
    Clock,
    Submit,
    context,
    make_course,
    predictions,
    spec_text,
    with_wrong,
)


def test_scores_use_only_their_split(submit: Submit, ctx: compete.Context) -> None:
    perfect = submit("red", TRUTH)
    assert (perfect.status, perfect.public_score) == ("scored", 1.0)
    # Wrong on two private rows: the public score cannot tell.
    private_wrong = submit("red", with_wrong([5, 6]))
    assert private_wrong.public_score == 1.0
    # Wrong on one public row: 3 of 4.
    assert submit("blue", with_wrong([2])).public_score == 0.75
    # Wrong on the ignored row: no score moves.
    assert submit("blue", with_wrong([10])).public_score == 1.0
    stored = {s.id: s.private_score for s in compete.submissions(ctx)}
    assert (stored[perfect.submission_id], stored[private_wrong.submission_id]) == (1.0, 3 / 5)


def test_content_hash_and_the_system_time_are_recorded(
    ctx: compete.Context, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "old.csv"
    path.write_text(predictions(TRUTH))
    os.utime(path, (0, 0))  # a file claiming 1970: never used
    receipt = compete.submit_file(ctx, path, "red", clock=clock)
    assert receipt.submitted_at == clock.now
    [stored] = compete.submissions(ctx)
    assert stored.submitted_at == clock.now and stored.submitted_at.tzinfo is not None
    data = path.read_bytes()
    assert stored.content_hash == hashlib.sha256(data).hexdigest()
    with CompetitionStore.open(ctx.course.gradebook) as store:
        assert store.content(stored.id) == (data, None)


def test_naive_times_are_refused(ctx: compete.Context, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(predictions(TRUTH))
    with pytest.raises(ValueError, match="timezone-aware"):
        compete.submit_file(ctx, path, "red", clock=lambda: datetime(2026, 1, 7, 12))


def test_daily_cap_per_team_rejected_files_do_not_count(
    submit: Submit, clock: Clock, ctx: compete.Context
) -> None:
    clock.now = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    broken = submit("ann", "id,label\n1,0\n")  # a member's id names the team
    assert broken.status == "rejected" and "not counted against the daily cap" in broken.message
    for n in range(1, 4):
        clock.tick(minutes=5)
        receipt = submit("bob" if n % 2 else "red", TRUTH)
        assert (receipt.status, receipt.team, receipt.used_today) == ("scored", "red", n)
    clock.tick(minutes=5)
    over = submit("red", TRUTH)
    assert over.status == "rejected" and over.used_today == 3
    assert "team 'red' already has 3 scored submission(s) on 2026-01-07 (UTC)" in over.message
    assert "the next can be scored from 2026-01-08T00:00:00+00:00" in over.message
    # The cap is per team: blue is untouched.
    assert submit("blue", TRUTH).status == "scored"
    # A new day (UTC here): red may submit again.
    clock.now = datetime(2026, 1, 8, 0, 0, tzinfo=UTC)
    assert submit("red", TRUTH).used_today == 1
    statuses = [s.status for s in compete.submissions(ctx, "red")]
    assert statuses == ["rejected", "scored", "scored", "scored", "rejected", "scored"]


def test_the_cap_day_follows_day_timezone(tmp_path: Path) -> None:
    spec = spec_text(daily_cap=1, day_timezone='"America/New_York"')
    ctx = context(make_course(tmp_path / "c", spec))
    path = tmp_path / "p.csv"
    path.write_text(predictions(TRUTH))
    # 03:00 UTC on the 8th is still the 7th in New York (UTC-5): the same day as 16:00 UTC.
    first = compete.submit_file(
        ctx, path, "red", clock=lambda: datetime(2026, 1, 7, 16, tzinfo=UTC)
    )
    second = compete.submit_file(
        ctx, path, "red", clock=lambda: datetime(2026, 1, 8, 3, tzinfo=UTC)
    )
    third = compete.submit_file(ctx, path, "red", clock=lambda: datetime(2026, 1, 8, 5, tzinfo=UTC))
    assert [first.status, second.status, third.status] == ["scored", "rejected", "scored"]
    assert "on 2026-01-07 (America/New_York)" in second.message


def test_only_while_open(submit: Submit, clock: Clock) -> None:
    clock.now = OPENS - timedelta(seconds=1)
    early = submit("red", TRUTH)
    assert early.status == "rejected" and "opens at 2026-01-05T09:00:00+00:00" in early.message
    clock.now = OPENS
    assert submit("red", TRUTH).status == "scored"
    clock.now = CLOSES
    late = submit("red", TRUTH)
    assert late.status == "rejected" and "closed at 2026-01-20T18:00:00+00:00" in late.message


def test_teams_from_the_roster(ctx: compete.Context, submit: Submit) -> None:
    assert ctx.teams.teams["red"].members == ("ann", "bob")
    assert ctx.teams.teams["eve"].members == ("eve",)  # no team: competes alone
    assert submit("eve", TRUTH).team == "eve"
    assert submit("dee", TRUTH).team == "blue"
    with pytest.raises(CompetitionError, match="no team or student 'green' on the roster"):
        submit("green", TRUTH)


def test_team_size_and_name_clashes_are_roster_errors(tmp_path: Path) -> None:
    three = "id,team\nann,red\nbob,red\ncy,red\n"
    course = make_course(tmp_path / "a", roster=three)
    with pytest.raises(
        CompetitionError, match=r"team 'red' has 3 members \(ann, bob, cy\); at most 2"
    ):
        context(course)
    # max_team_size raises the limit.
    context(make_course(tmp_path / "b", spec_text(max_team_size=3), roster=three))
    clash = "id,team\nann,bob\nbob,\n"
    with pytest.raises(CompetitionError, match="team 'bob' has the name of student 'bob'"):
        context(make_course(tmp_path / "c", roster=clash))
    with pytest.raises(CompetitionError, match="needs the class roster"):
        compete.open_competition(Course.at(tmp_path / "c"), "toy", None)


def test_notebooks_need_a_code_section(submit: Submit) -> None:
    receipt = submit("red", "{}", name="model.ipynb")
    assert receipt.status == "rejected"
    assert "toy takes predictions as CSV files only, not notebooks" in receipt.message
    other = submit("red", "x", name="model.txt")
    assert other.status == "rejected" and other.submission_id is None


def test_cap_is_rechecked_inside_the_transaction(ctx: compete.Context, tmp_path: Path) -> None:
    # Two intakes that both passed the early check: the store refuses the one over the cap.
    now = datetime(2026, 1, 7, 12, tzinfo=UTC)
    cap = DailyCap(now.replace(hour=0), now.replace(hour=23), 1, "over the cap")
    new = NewSubmission(
        "toy",
        "red",
        "",
        "csv",
        "a.csv",
        b"x",
        "h",
        now,
        "scored",
        public_score=1.0,
        private_score=1.0,
    )
    with (
        CompetitionStore.open(ctx.course.gradebook) as a,
        CompetitionStore.open(ctx.course.gradebook) as b,
    ):
        first, second = a.record(new, cap), b.record(new, cap)
    assert (first.status, second.status, second.message) == ("scored", "rejected", "over the cap")
    assert second.public_score is None


def test_gradebook_schema_3_keeps_competition_rows_consistent(ctx: compete.Context) -> None:
    with CompetitionStore.open(ctx.course.gradebook):
        pass
    with sqlite3.connect(ctx.course.gradebook) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(
            "INSERT INTO competition_submissions (competition, team, kind, filename, content,"
            " content_hash, status, submitted_at) VALUES ('toy', 'red', 'csv', 'a', x'', 'h',"
            " 'scored', '2026-01-07T12:00:00.000000+00:00')"  # scored without scores
        )


# --------------------------------------------------------------------------- bulk intake
def test_bulk_folder_named_by_team_or_student(
    ctx: compete.Context, clock: Clock, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    (folder / "cy").mkdir(parents=True)
    (folder / "red.csv").write_text(predictions(TRUTH))
    (folder / "cy" / "final.csv").write_text(predictions(with_wrong([1])))
    (folder / "zed.csv").write_text(predictions(TRUTH))
    (folder / "eve.csv").write_text("id,label\n1,0\n")
    roster = load_roster(ctx.course.root / "roster.csv")
    receipts = compete.submit_paths(ctx, [folder], tmp_path / "unpack", roster, clock=clock)
    by_file = {r.filename: r for r in receipts}
    assert (by_file["final.csv"].team, by_file["final.csv"].public_score) == ("blue", 0.75)
    assert by_file["red.csv"].scored
    assert not by_file["zed.csv"].scored and by_file["zed.csv"].submission_id is None
    assert "no team or student 'zed' on the roster" in by_file["zed.csv"].message
    assert not by_file["eve.csv"].scored and by_file["eve.csv"].submission_id is not None
    [cy] = compete.submissions(ctx, "blue")
    assert cy.submitted_by == "cy"


def test_bulk_moodle_download_in_a_zip(ctx: compete.Context, clock: Clock, tmp_path: Path) -> None:
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Ann Lee_5001_assignsubmission_file_/preds.csv", predictions(TRUTH))
        zf.writestr("Ann Lee_5001_assignsubmission_onlinetext_/onlinetext.html", "<p>hi</p>")
        zf.writestr("Dee Park_5004_assignsubmission_file_/p.csv", predictions(with_wrong([2])))
        zf.writestr("Nobody_5099_assignsubmission_file_/p.csv", predictions(TRUTH))
    roster = load_roster(ctx.course.root / "roster.csv")
    receipts = compete.submit_paths(ctx, [archive], tmp_path / "unpack", roster, clock=clock)
    assert [(r.team, r.status) for r in receipts] == [
        ("red", "scored"),
        ("blue", "scored"),
        ("", "rejected"),
    ]
    assert receipts[0].origin == "moodle participant 5001 (Ann Lee)"
    assert "no student named 'Nobody'" in receipts[2].message


def test_with_team_every_file_is_that_teams(
    ctx: compete.Context, clock: Clock, tmp_path: Path
) -> None:
    files = []
    for n in range(2):
        files.append(tmp_path / f"try{n}.csv")
        files[-1].write_text(predictions(TRUTH))
    receipts = compete.submit_paths(ctx, files, tmp_path / "u", None, team="eve", clock=clock)
    assert [r.team for r in receipts] == ["eve", "eve"]
    with pytest.raises(CompetitionError, match="is a folder; with --team pass files"):
        compete.submit_paths(ctx, [tmp_path], tmp_path / "u", None, team="eve", clock=clock)


def test_the_cap_day_is_23_hours_when_clocks_go_forward(tmp_path: Path) -> None:
    ctx = context(make_course(tmp_path / "c", spec_text(day_timezone='"Europe/Paris"')))
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29: that day has 23 hours.
    start, end = compete.day_window(ctx, datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    )
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_bulk_canvas_download(ctx: compete.Context, clock: Clock, tmp_path: Path) -> None:
    folder = tmp_path / "canvas"
    folder.mkdir()
    (folder / "leeann_late_7001_9001_preds.csv").write_text(predictions(TRUTH))
    (folder / "parkdee_7004_9002_preds.csv").write_text(predictions(with_wrong([1, 2])))
    roster = load_roster(ctx.course.root / "roster.csv")
    receipts = compete.submit_paths(ctx, [folder], tmp_path / "unpack", roster, clock=clock)
    assert [(r.team, r.public_score) for r in receipts] == [("red", 1.0), ("blue", 0.5)]
    # Canvas's "late" mark is the LMS's business: the time is when the file was received.
    assert {s.submitted_by for s in compete.submissions(ctx)} == {"ann", "dee"}
