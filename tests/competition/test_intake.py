"""Malformed prediction files are rejected with a message naming the first problem lines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autograder.competition import compete
from autograder.competition.errors import SubmissionRejected
from autograder.competition.intake import read_predictions
from tests.competition.conftest import TRUTH, predictions, with_wrong


def read(ctx: compete.Context, text: str | bytes) -> object:
    data = text.encode() if isinstance(text, str) else text
    return read_predictions(data, "sub.csv", ctx.competition.spec, ctx.solution)


def rejected(ctx: compete.Context, text: str | bytes) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as info:
        read(ctx, text)
    return info.value


def test_a_valid_file_in_any_row_order(ctx: compete.Context) -> None:
    rows = dict(reversed(list(TRUTH.items())))
    values = read(ctx, predictions(rows)).values  # type: ignore[attr-defined]
    assert values.tolist() == [str(v) for v in TRUTH.values()]  # in the solution's order


def test_spreadsheet_spellings_are_the_same_row_and_class(ctx: compete.Context) -> None:
    text = "\ufeffid , label\r\n" + "".join(f"00{i}, {v}.0\r\n" for i, v in TRUTH.items())
    values = read(ctx, text).values  # type: ignore[attr-defined]
    assert values.tolist() == [str(v) for v in TRUTH.values()]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # Missing ids: named by id (there is no line to name).
        (
            lambda r: r[:-2],
            [
                "the file has 8 data rows; the test set has 10",
                "2 id(s) of the test set are missing: '9', '10'",
            ],
        ),
        # A duplicated id: its line and the first one.
        (
            lambda r: [*r[:3], "2,1", *r[3:]],
            [
                "the file has 11 data rows; the test set has 10",
                "line 5: id '2' again (first on line 3)",
            ],
        ),
        # An id that is not in the test set.
        (
            lambda r: [*r[:-1], "11,0"],
            [
                "line 11: id '11' is not in the test set",
                "1 id(s) of the test set are missing: '10'",
            ],
        ),
        # NaN, inf, empty, a label that is no class.
        (
            lambda r: [r[0].replace(",0", ",nan"), *r[1:]],
            ["line 2: label: 'nan' is no class (classes: 0, 1, 2)"],
        ),
        (lambda r: [*r[:4], "5,", *r[5:]], ["line 6: label: empty (classes: 0, 1, 2)"]),
        (
            lambda r: [*r[:2], "3,cat", *r[3:]],
            ["line 4: label: 'cat' is no class (classes: 0, 1, 2)"],
        ),
        # A row with a field too many or too few.
        (
            lambda r: [*r[:6], "7,0,extra", *r[7:]],
            ["line 8: 3 fields, the header has 2", "1 id(s) of the test set are missing: '7'"],
        ),
    ],
)
def test_row_problems_name_their_lines(
    ctx: compete.Context, mutate: Callable[[list[str]], list[str]], expected: list[str]
) -> None:
    rows = predictions(TRUTH).splitlines()
    text = "\n".join([rows[0], *mutate(rows[1:])]) + "\n"
    error = rejected(ctx, text)
    assert error.problems == expected
    assert str(error).startswith(f"sub.csv: {len(expected)} problem")


def test_first_problem_lines_first_and_the_rest_counted(ctx: compete.Context) -> None:
    rows = [f"{i},x" for i in TRUTH]
    error = rejected(ctx, "id,label\n" + "\n".join(rows) + "\n")
    assert error.total == 10
    message = str(error)
    assert message.startswith("sub.csv: 10 problems: line 2: label: 'x' is no class")
    assert "line 6: label" in message and "line 7: label" not in message
    assert message.endswith("... and 5 more")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "id,prediction",
            "line 1: wrong columns: expected id,label, got id,prediction "
            "(missing 'label'; unexpected 'prediction')",
        ),
        ("Id,Label", "(column names are case-sensitive)"),
        ("id,label,extra", "unexpected 'extra'"),
        ("id;label", "separated by ';', not commas"),
        ("id,label,label", "column(s) 'label' appear twice"),
    ],
)
def test_wrong_columns(ctx: compete.Context, header: str, message: str) -> None:
    text = predictions(TRUTH).replace("id,label", header, 1)
    assert message in str(rejected(ctx, text))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b" \n\n", "the file is empty"),
        ("id,label\n1,é\n".encode("latin-1"), "not UTF-8 text (byte 11)"),
    ],
)
def test_unreadable_files(ctx: compete.Context, data: bytes, message: str) -> None:
    assert message in str(rejected(ctx, data))


def test_blank_lines_are_ignored(ctx: compete.Context) -> None:
    text = predictions(with_wrong([1])).replace("\n5,", "\n\n5,") + "\n\n"
    assert len(read(ctx, text).values) == 10  # type: ignore[attr-defined]


def test_control_characters_in_cells_are_shown_escaped(ctx: compete.Context) -> None:
    error = rejected(ctx, predictions({**TRUTH, 3: "\x1b[2Jx"}))
    assert "'\\\\x1b[2Jx'" in str(error) and "\x1b" not in str(error)
