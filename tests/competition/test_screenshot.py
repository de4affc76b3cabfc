"""The example competition's leaderboards as a browser shows them: headless Chromium
renders the public and the private page, and the pictures must show the table.

Needs Chromium; skipped without it, except under AUTOGRADER_REQUIRE_CHROMIUM=1 (CI).
With AUTOGRADER_UPDATE_SCREENSHOTS=1 the private page's picture is also saved as
docs/screenshots/leaderboard.png.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autograder.competition import compete
from autograder.competition.leaderboard import write_html
from autograder.course import Course
from autograder.roster import load_roster
from tests.competition.conftest import Clock
from tests.test_screenshots import distinct_colours, near, screenshot

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "digits"
UPDATE_ENV = "AUTOGRADER_UPDATE_SCREENSHOTS"
GOLD = (0xFF, 0xF8, 0xC5)  # the podium rows' background
# The example class over three days: (day, team, file).
PLAY = [
    (0, "lynx", "lynx-0.csv"),
    (0, "owls", "owls-1.csv"),
    (0, "eli", "eli-1.csv"),
    (1, "foxes", "foxes-1.csv"),
    (1, "lynx", "lynx-1.csv"),
    (2, "owls", "owls-2.csv"),
    (2, "foxes", "foxes-2.csv"),
]


def play_example(root: Path) -> compete.Context:
    """A copy of the example course's `digits` competition, with the example class's
    submissions made during the competition (opened 2026-11-02)."""
    (root / "assignments").mkdir(parents=True)
    shutil.copytree(
        REPO / "competitions" / "digits",
        root / "competitions" / "digits",
        ignore=shutil.ignore_patterns("*.ipynb", "*.py"),
    )
    shutil.copy(EXAMPLES / "roster.csv", root / "roster.csv")
    course = Course.at(root)
    ctx = compete.open_competition(course, "digits", load_roster(root / "roster.csv"))
    clock = Clock(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    for day, team, name in PLAY:
        clock.now = datetime(2026, 11, 3 + day, 9, 0, tzinfo=UTC) + timedelta(minutes=len(name))
        receipt = compete.submit_file(ctx, EXAMPLES / name, team, clock=clock)
        assert receipt.scored, receipt.message
    return ctx


def test_example_leaderboards_render(tmp_path: Path) -> None:
    ctx = play_example(tmp_path / "course")
    during = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    after = ctx.competition.spec.closes + timedelta(days=1)
    public = compete.leaderboard(ctx, during)
    private = compete.leaderboard(ctx, after, private=True)
    assert [e.team for e in public.entries] == ["owls", "foxes", "lynx", "eli"]
    # foxes and owls tie on the private rows: foxes reached it a day earlier.
    assert [(e.team, e.shift) for e in private.entries] == [
        ("foxes", 1),
        ("owls", -1),
        ("lynx", 0),
        ("eli", 0),
    ]
    for board in (public, private):
        page = write_html(board, tmp_path / f"{board.split}.html")
        image = screenshot(page, tmp_path / f"{board.split}.png", tmp_path)
        assert image.size == (1280, 2000)
        assert distinct_colours(image) >= 6  # text, borders, header, podium, arrows
        colours = image.getcolors(maxcolors=1 << 20) or []
        gold = sum(count for count, rgb in colours if near(rgb, GOLD))
        assert gold > 5_000, f"only {gold} podium pixels: the table did not render"
    if os.environ.get(UPDATE_ENV) == "1":  # the table's part of the page, for the docs
        image.crop((0, 0, 1280, 520)).save(REPO / "docs" / "screenshots" / "leaderboard.png")
