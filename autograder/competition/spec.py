"""The competition spec: `competitions/<name>/competition.toml`, validated with pydantic.

    name = "digits"
    title = "Handwritten digits"
    metric = "accuracy"            # accuracy | macro_f1 | rmse | mae | log_loss | roc_auc
    id_column = "id"
    target_columns = ["label"]
    opens = 2026-11-02T09:00:00+01:00
    closes = 2026-12-11T23:59:00+01:00
    daily_cap = 5                  # scored submissions per team and day
    day_timezone = "UTC"           # whose midnight starts a new day for the cap
    selections = 2                 # final submissions a team may select
    max_team_size = 2
    solution = "solution.csv"      # hidden: id, targets, Usage (Public/Private/Ignored)
    data = "data"                  # what students get; mounted read-only into sandboxes

    [code]                         # optional: notebooks defining predict(X)
    inputs = "data/test.csv"       # id + feature columns: the rows X holds

    [grade]                        # how the private leaderboard becomes a grade
    by = "rank"                    # rank | score

The folder holds the spec, the solution and `data/`; nothing under `data/` may be hidden.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autograder.competition.errors import CompetitionError
from autograder.competition.metrics import Metric, MetricKind
from autograder.spec import Limits, load_toml

COMPETITIONS_DIR = "competitions"
SPEC_FILENAME = "competition.toml"
USAGE_COLUMN = "Usage"


class CodeSubmissions(BaseModel):
    """Under `[code]`: notebooks defining `predict(X)` are accepted and run in the sandbox."""

    model_config = ConfigDict(extra="forbid")

    inputs: str = Field(description="CSV of id + numeric feature columns: the rows of X")
    dtype: Literal["float32", "float64"] = "float32"
    batch_size: int = Field(4096, ge=1, description="rows of X per call of predict")
    seed: int = 0
    limits: Limits = Field(default_factory=Limits)


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top: int = Field(ge=1, description="ranks 1..top earn `percent`")
    percent: float = Field(ge=0, le=100)


class GradeRule(BaseModel):
    """Under `[grade]`: the private leaderboard turned into a percentage per student.

    by = "rank": rank 1 earns `best`, the last rank `worst`, linearly in between; or, with
    `tiers`, the first tier whose `top` covers the rank (ranks below every tier: `worst`).
    by = "score": the private score `zero` (or worse) earns 0, `full` (or better) 100,
    linearly in between; `zero` above `full` for metrics where lower is better.
    Members of a team without a scored submission get `missing`.
    """

    model_config = ConfigDict(extra="forbid")

    by: Literal["rank", "score"] = "rank"
    best: float = Field(100.0, ge=0, le=100)
    worst: float = Field(50.0, ge=0, le=100)
    tiers: list[Tier] = Field(default_factory=list)
    zero: float | None = None
    full: float | None = None
    missing: float = Field(0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> GradeRule:
        if self.by == "score":
            if self.zero is None or self.full is None:
                raise ValueError('by = "score" needs `zero` and `full` (private scores)')
            if self.zero == self.full:
                raise ValueError("`zero` and `full` must differ")
        elif self.zero is not None or self.full is not None:
            raise ValueError('`zero` and `full` only apply with by = "score"')
        if self.tiers and self.by != "rank":
            raise ValueError('`tiers` only apply with by = "rank"')
        tops = [t.top for t in self.tiers]
        if len(set(tops)) != len(tops):
            raise ValueError("two tiers have the same `top`")
        return self


class CompetitionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = ""
    metric: Metric
    id_column: str = Field("id", min_length=1)
    target_columns: list[str] = Field(min_length=1)
    classes: list[str] | None = Field(
        None, description="class labels (default: those of the solution), in output order"
    )
    positive_class: str | None = Field(None, description="binary probabilities: P(this class)")
    opens: datetime
    closes: datetime
    daily_cap: int = Field(5, ge=1)
    day_timezone: str = "UTC"
    selections: int = Field(2, ge=1)
    max_team_size: int = Field(2, ge=1)
    solution: str = "solution.csv"
    data: str = "data"
    code: CodeSubmissions | None = None
    grade: GradeRule = Field(default_factory=GradeRule)

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_text(cls, value: Any) -> Any:
        # `classes = [0, 1, 2]` is the natural TOML; labels are compared as text.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("positive_class", mode="before")
    @classmethod
    def _positive_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> CompetitionSpec:
        for name in ("opens", "closes"):
            if getattr(self, name).utcoffset() is None:
                raise ValueError(
                    f"{name} needs a UTC offset, e.g. 2026-12-11T23:59:00+01:00 "
                    "(a time without one means different moments on different machines)"
                )
        if self.closes <= self.opens:
            raise ValueError("closes must come after opens")
        try:
            zoneinfo.ZoneInfo(self.day_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"day_timezone {self.day_timezone!r} is no time zone; use an IANA name "
                "such as UTC or Europe/Berlin"
            ) from None
        columns = [self.id_column, *self.target_columns]
        if len(set(columns)) != len(columns):
            raise ValueError("id_column and target_columns must all be different columns")
        if USAGE_COLUMN.casefold() in (c.casefold() for c in columns):
            raise ValueError(f"{USAGE_COLUMN} is the solution's split column, not a target")
        if self.metric.kind is not MetricKind.VALUE and len(self.target_columns) != 1:
            raise ValueError(f"{self.metric.value} needs exactly one target column (the class)")
        if self.classes is not None:
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise ValueError("classes must be at least two different labels")
            if self.positive_class is not None and self.positive_class not in self.classes:
                raise ValueError(f"positive_class {self.positive_class!r} is not in classes")
        if self.metric.kind is MetricKind.VALUE and (self.classes or self.positive_class):
            raise ValueError(f"{self.metric.value} predicts numbers: no classes")
        for name in ("solution", "data"):
            _relative(getattr(self, name), name)
        if self.code is not None:
            _relative(self.code.inputs, "code.inputs")
        if PurePosixPath(self.solution).is_relative_to(PurePosixPath(self.data)):
            raise ValueError(
                f"solution = {self.solution!r} lies inside data = {self.data!r}, which is "
                "shipped to students and mounted into sandboxes; move the solution out of it"
            )
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.day_timezone)


def _relative(path: str, field: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not path.strip() or "\\" in path:
        raise ValueError(f"{field} = {path!r} must be a path inside the competition folder")


@dataclass(frozen=True)
class Competition:
    """One competition of a course: its spec and where its files are."""

    spec: CompetitionSpec
    folder: Path  # competitions/<name>/

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def spec_path(self) -> Path:
        return self.folder / SPEC_FILENAME

    @property
    def solution_path(self) -> Path:
        return self.folder / self.spec.solution

    @property
    def data_dir(self) -> Path | None:
        """What students get, mounted read-only as ./data into code submissions' sandboxes."""
        folder = self.folder / self.spec.data
        return folder if folder.is_dir() else None

    @property
    def inputs_path(self) -> Path | None:
        return None if self.spec.code is None else self.folder / self.spec.code.inputs

    def is_open(self, now: datetime) -> bool:
        return self.spec.opens <= now < self.spec.closes

    def is_closed(self, now: datetime) -> bool:
        return now >= self.spec.closes


def competition_names(course_root: Path) -> list[str]:
    """The competitions of a course (folders of competitions/ holding a spec), sorted."""
    folder = course_root / COMPETITIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / SPEC_FILENAME).is_file())


def load_competition(course_root: Path, name: str) -> Competition:
    """The competition `name` of the course; errors name the file and what to fix."""
    folder = course_root / COMPETITIONS_DIR / name
    path = folder / SPEC_FILENAME
    if not path.is_file():
        known = ", ".join(competition_names(course_root)) or "none"
        raise CompetitionError(
            f"no competition {name!r} in {course_root / COMPETITIONS_DIR} (expected {path}); "
            f"competitions here: {known}"
        )
    spec = load_spec(path)
    if spec.name != name:
        raise CompetitionError(
            f"{path}: name = {spec.name!r} but the folder is {name!r}; make them the same"
        )
    return Competition(spec, folder)


def load_spec(path: Path) -> CompetitionSpec:
    """Read and validate one `competition.toml`."""
    return load_toml(path, CompetitionSpec, CompetitionError)
