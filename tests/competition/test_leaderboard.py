"""Leaderboards (public while open, private after), final selection, ties, rank shifts,
rescoring after a solution fix, the grade mapping, and the HTML page's escaping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from autograder.competition import compete
from autograder.competition.errors import CompetitionError
from autograder.competition.grades import grade_students, team_percent, write_grades
from autograder.competition.leaderboard import Entry, render_html
from autograder.competition.spec import GradeRule
from tests.competition.conftest import (
    AFTER,
    ROSTER,
    SOLUTION,
    TRUTH,
    Clock,
    Submit,
    context,
    make_course,
    spec_text,
    with_wrong,
)


@pytest.fixture
def played(submit: Submit, clock: Clock) -> dict[str, int]:
    """red: A (public .75, private 1.0) then B (1.0, .6); blue: C (1.0, .8) between them;
    eve: D (.75, .8) last. Returns the submission ids."""
    ids = {}
    for name, team, labels, minutes in [
        ("A", "red", with_wrong([2]), 0),
        ("C", "blue", with_wrong([5]), 1),
        ("B", "red", with_wrong([5, 6]), 60),
        ("D", "eve", with_wrong([1, 5]), 120),
    ]:
        clock.tick(minutes=minutes)
        receipt = submit(team, labels)
        assert receipt.scored, receipt.message
        ids[name] = receipt.submission_id  # type: ignore[assignment]
    return ids


def ranks(board: compete.Leaderboard) -> list[tuple[int, str, float, int | None]]:
    return [(e.rank, e.team, e.score, e.shift) for e in board.entries]


def test_public_board_best_public_score_ties_to_the_earlier(
    ctx: compete.Context, played: dict[str, int], clock: Clock
) -> None:
    board = compete.leaderboard(ctx, clock.now)
    # blue and red both reach 1.0; blue got there first.
    assert ranks(board) == [(1, "blue", 1.0, None), (2, "red", 1.0, None), (3, "eve", 0.75, None)]
    assert [e.entries for e in board.entries] == [1, 2, 1]
    assert board.entries[1].submission_id == played["B"]
    assert (board.rows, board.test_rows, board.is_open()) == (4, 10, True)


def test_private_board_is_hidden_until_closing(
    ctx: compete.Context, played: dict[str, int]
) -> None:
    with pytest.raises(CompetitionError, match="hidden until it closes at 2026-01-20T18:00"):
        compete.leaderboard(ctx, AFTER - timedelta(hours=2), private=True)
    with pytest.raises(CompetitionError, match="its grades come from the private leaderboard"):
        compete.grades(ctx, AFTER - timedelta(hours=2))


def test_private_board_without_selection_uses_the_best_public_ones(
    ctx: compete.Context, played: dict[str, int]
) -> None:
    board = compete.leaderboard(ctx, AFTER, private=True)
    # red's two best public (B, A): A's private 1.0 counts. blue and eve tie at 0.8: blue
    # submitted earlier.
    assert ranks(board) == [(1, "red", 1.0, 1), (2, "blue", 0.8, -1), (3, "eve", 0.8, 0)]
    red = board.entries[0]
    assert (red.submission_id, red.public_score, red.chosen) == (played["A"], 0.75, False)


def test_only_one_selection_allowed(tmp_path: Path, clock: Clock) -> None:
    ctx = context(make_course(tmp_path / "c", spec_text(selections=1)))
    for labels in (with_wrong([2]), with_wrong([5, 6])):
        path = tmp_path / "p.csv"
        path.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in labels.items()))
        clock.tick(minutes=1)
        compete.submit_file(ctx, path, "red", clock=clock)
    # Only the best public one (B: private 0.6) counts.
    assert ranks(compete.leaderboard(ctx, AFTER, private=True)) == [(1, "red", 0.6, 0)]


def test_final_selection_decides_the_private_board(
    ctx: compete.Context, played: dict[str, int], clock: Clock
) -> None:
    compete.select(ctx, "ann", [played["B"]], clock.now)  # a member's id names the team
    board = compete.leaderboard(ctx, AFTER, private=True)
    assert ranks(board) == [(1, "blue", 0.8, 0), (2, "eve", 0.8, 1), (3, "red", 0.6, -1)]
    assert board.entries[2].chosen
    # Selecting again replaces the selection; selecting none goes back to the default.
    subs = compete.select(ctx, "red", [played["A"], played["B"]], clock.now)
    assert {s.id for s in subs if s.selected} == {played["A"], played["B"]}
    compete.select(ctx, "red", [], clock.now)
    assert ranks(compete.leaderboard(ctx, AFTER, private=True))[0] == (1, "red", 1.0, 1)


def test_selection_rules(
    ctx: compete.Context, played: dict[str, int], submit: Submit, clock: Clock
) -> None:
    with pytest.raises(CompetitionError, match="may select at most 2 submission"):
        compete.select(ctx, "red", [played["A"], played["B"], played["C"]], clock.now)
    with pytest.raises(CompetitionError, match=f"submission {played['C']} is not one of theirs"):
        compete.select(ctx, "red", [played["C"]], clock.now)
    bad = submit("red", "id,label\n").submission_id
    with pytest.raises(CompetitionError, match=f"submission {bad} was rejected"):
        compete.select(ctx, "red", [bad], clock.now)  # type: ignore[list-item]
    with pytest.raises(CompetitionError, match="can no longer change"):
        compete.select(ctx, "red", [played["A"]], AFTER)
    assert not any(s.selected for s in compete.submissions(ctx))  # nothing half-done


def test_rescore_after_the_solution_changed(ctx: compete.Context, played: dict[str, int]) -> None:
    # Row 6 (private) was mislabelled: it is 0, not 2.
    ctx.competition.solution_path.write_text(SOLUTION.replace("6,2,Private", "6,0,Private"))
    fixed = context(ctx.course)
    with pytest.raises(
        CompetitionError,
        match=r"changed after 4 submission\(s\) were scored; run `autograder compete rescore toy`",
    ):
        compete.leaderboard(fixed, AFTER)
    done = compete.rescore(fixed)
    assert (done.total, done.changed, done.rejected) == (4, 4, 0)
    private = {s.id: s.private_score for s in compete.submissions(fixed)}
    assert private[played["A"]] == 0.8  # it predicted 2 for row 6
    assert compete.rescore(fixed).changed == 0
    # A solution that loses an id makes old files invalid: they turn rejected.
    fixed.competition.solution_path.write_text(SOLUTION.replace("10,0,Ignored\n", ""))
    done = compete.rescore(context(ctx.course))
    assert done.rejected == 4
    assert all("no longer fits the solution" in s.message for s in compete.submissions(fixed))


def test_grade_mapping(tmp_path: Path, clock: Clock) -> None:
    roster = ROSTER + "gus,Gus Li,gus@uni.example,green\n"
    ctx = context(make_course(tmp_path / "c", roster=roster))
    for team, labels in [("red", TRUTH), ("blue", with_wrong([5])), ("eve", with_wrong([5, 6]))]:
        path = tmp_path / f"{team}.csv"
        path.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in labels.items()))
        clock.tick(minutes=1)
        compete.submit_file(ctx, path, team, clock=clock)
    board, grades = compete.grades(ctx, AFTER)
    assert [(g.student_id, g.team, g.rank, g.percent) for g in grades] == [
        ("ann", "red", 1, 100.0),
        ("bob", "red", 1, 100.0),
        ("cy", "blue", 2, 75.0),
        ("dee", "blue", 2, 75.0),
        ("eve", "eve", 3, 50.0),
        ("gus", "green", None, 0.0),
    ]
    assert grades[-1].note == "no scored submission"
    by_score = GradeRule(by="score", zero=0.5, full=1.0, missing=10)
    assert [g.percent for g in grade_students(by_score, board, ctx.teams)] == pytest.approx(
        [100.0, 100.0, 60.0, 60.0, 20.0, 10.0]
    )
    tiers = GradeRule(tiers=[{"top": 2, "percent": 90}, {"top": 1, "percent": 100}], worst=70)
    assert [team_percent(tiers, e, 3) for e in board.entries] == [100, 90, 70]
    lower_better = GradeRule(by="score", zero=2.0, full=0.5)
    entry = Entry(1, "t", 1.25, 1, AFTER, 1)
    assert team_percent(lower_better, entry, 1) == 50.0
    out = write_grades(tmp_path / "grades.csv", grades)
    assert out.read_text().splitlines()[:2] == [
        "student_id,team,rank,private_score,percent,note",
        "ann,red,1,1.00000,100.00,",
    ]


def test_html_page_escapes_team_names(tmp_path: Path, clock: Clock) -> None:
    hostile = "<script>alert(1)</script> & co"
    roster = f'id,team\nann,"{hostile}"\nbob,blue\n'
    ctx = context(make_course(tmp_path / "c", roster=roster))
    for team, labels in [("ann", with_wrong([1])), ("bob", with_wrong([6]))]:
        path = tmp_path / f"{team}.csv"
        path.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in labels.items()))
        clock.tick(minutes=1)
        compete.submit_file(ctx, path, team, clock=clock)
    public = render_html(compete.leaderboard(ctx, clock.now))
    private = render_html(compete.leaderboard(ctx, AFTER, private=True))
    for page in (public, private):
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
        assert "Content-Security-Policy" in page
    assert "public leaderboard" in public and "Open until 2026-01-20 18:00 UTC" in public
    assert "private leaderboard" in private and "▲1" in private and "▼1" in private
