"""competition.toml, the solution and the code inputs: clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.competition.errors import CompetitionError
from autograder.competition.solution import load_inputs, load_solution
from autograder.competition.spec import competition_names, load_competition
from tests.competition.conftest import SOLUTION, context, make_course, spec_text

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"metric": "f2"}, "metric: Input should be 'accuracy', 'macro_f1', 'rmse', 'mae'"),
        ({"opens": "2026-01-05T09:00:00"}, "opens needs a UTC offset"),
        ({"closes": "2026-01-01T00:00:00+00:00"}, "closes must come after opens"),
        ({"day_timezone": '"Mars/Olympus"'}, "day_timezone 'Mars/Olympus' is no time zone"),
        ({"daily_cap": "0"}, "daily_cap: Input should be greater than or equal to 1"),
        ({"solution": '"data/solution.csv"'}, "lies inside data = 'data', which is shipped"),
        ({"solution": '"../other/solution.csv"'}, "must be a path inside the competition folder"),
        ({"target_columns": '["a", "b"]'}, "accuracy needs exactly one target column"),
        ({"target_columns": '["Usage"]'}, "Usage is the solution's split column"),
        ({"classes": '["a"]'}, "classes must be at least two different labels"),
        ({"surprise": "1"}, "surprise: Extra inputs are not permitted"),
        ({"grade": '{ by = "score", zero = 0.5 }'}, 'by = "score" needs `zero` and `full`'),
    ],
)
def test_spec_errors_name_the_file_and_field(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    course = make_course(tmp_path / "c", spec_text(**extra))
    with pytest.raises(CompetitionError) as info:
        load_competition(course.root, "toy")
    assert str(info.value).startswith(str(course.root / "competitions/toy/competition.toml"))
    assert message in str(info.value)


def test_unknown_competition_lists_the_known_ones(tmp_path: Path) -> None:
    course = make_course(tmp_path / "c")
    with pytest.raises(CompetitionError, match=r"no competition 'nope' .* competitions here: toy"):
        load_competition(course.root, "nope")
    assert competition_names(course.root) == ["toy"]


@pytest.mark.parametrize(
    ("solution", "message"),
    [
        (
            SOLUTION.replace("3,2,Public", "3,2,Secret"),
            "line 4: Usage is 'Secret'; use Public, Private or Ignored",
        ),
        (SOLUTION.replace("4,0,Public", "2,0,Public"), "line 5: id '2' again (first on line 3)"),
        (SOLUTION.replace("Public", "Private"), "no Public rows"),
        (SOLUTION.replace("5,1,Private", "5,,Private"), "line 6: label is empty"),
        (SOLUTION.replace("id,label,Usage", "id,target,Usage"), "no column 'label'"),
    ],
)
def test_solution_errors(tmp_path: Path, solution: str, message: str) -> None:
    course = make_course(tmp_path / "c", solution=solution)
    with pytest.raises(CompetitionError) as info:
        context(course)
    assert "solution.csv" in str(info.value) and message in str(info.value)


def test_roc_auc_needs_every_class_in_both_splits(tmp_path: Path) -> None:
    solution = "id,label,Usage\n1,0,Public\n2,1,Public\n3,0,Private\n4,0,Private\n"
    course = make_course(tmp_path / "c", spec_text(metric="roc_auc"), solution)
    with pytest.raises(CompetitionError, match="ROC AUC is undefined on the private rows"):
        context(course)


def test_inputs_must_match_the_solution_ids(tmp_path: Path) -> None:
    code = '\n[code]\ninputs = "data/test.csv"\n'
    course = make_course(tmp_path / "c", tail=code)
    data = course.root / "competitions/toy/data/test.csv"
    data.write_text("id,x\n" + "".join(f"{i},{i / 10}\n" for i in range(1, 10)) + "11,1.1\n")
    ctx = context(course)
    with pytest.raises(CompetitionError, match=r"not in the solution: \['11'\]; missing: \['10'\]"):
        load_inputs(ctx.competition, ctx.solution)
    data.write_text("id,x\n" + "".join(f"{i},{i / 10}\n" for i in range(1, 11)))
    inputs = load_inputs(ctx.competition, ctx.solution)
    assert inputs.X.shape == (10, 1) and inputs.features == ["x"]


def test_the_example_competition_loads(tmp_path: Path) -> None:
    competition = load_competition(REPO, "digits")
    solution = load_solution(competition)
    inputs = load_inputs(competition, solution)
    assert (len(solution), inputs.X.shape, solution.classes) == (
        600,
        (600, 64),
        [str(d) for d in range(10)],
    )
    assert competition.data_dir is not None
    assert not (competition.data_dir / "solution.csv").exists()
    header = (competition.data_dir / "test.csv").read_text().split("\n", 1)[0]
    assert "label" not in header  # the test inputs students get hold no labels
