"""The assignment spec: `assignments/<name>/assignment.toml`, validated with pydantic.

A spec names the questions (id, points, kind), says which hidden tests cover which
code question, holds the answer key of the theory questions and the sandbox limits.
"""

from __future__ import annotations

import enum
import fnmatch
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autograder.errors import AutograderError, SpecError

SPEC_FILENAME = "assignment.toml"
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class QuestionKind(enum.StrEnum):
    CODE = "code"
    CHOICE = "choice"
    BOOL = "bool"
    NUMERIC = "numeric"
    TEXT = "text"


class Limits(BaseModel):
    """Sandbox limits; every field can be set per assignment under `[limits]`."""

    model_config = ConfigDict(extra="forbid")

    notebook_timeout: float = Field(120.0, gt=0, description="seconds to run all cells")
    call_timeout: float = Field(20.0, gt=0, description="seconds for one call into student code")
    test_timeout: float = Field(60.0, gt=0, description="seconds for one hidden test")
    memory_mb: int = Field(4096, ge=64)
    max_processes: int = Field(256, ge=8)
    scratch_mb: int = Field(1024, ge=1)
    output_bytes: int = Field(1024 * 1024, ge=1024, description="captured bytes per stream")
    max_open_files: int = Field(1024, ge=64)
    message_mb: int = Field(64, ge=1, description="largest value crossing the boundary")
    threads: int = Field(1, ge=1, description="torch/OpenMP threads in the sandbox")
    max_restarts: int = Field(3, ge=0, description="sandbox restarts after a crash or timeout")
    preload: list[str] = Field(
        default_factory=list,
        description="modules imported before the notebook runs; the warm pool imports them "
        "once per worker instead of once per submission",
    )

    @field_validator("preload")
    @classmethod
    def _module_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not MODULE_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a module name (e.g. matplotlib.pyplot)")
        return names


class Deadline(BaseModel):
    """The late policy, under `[deadline]`; times are ISO datetimes with a UTC offset.

    A submission up to `grace_minutes` after `due` is on time; later, each started day
    (24 h after `due`) takes `percent_per_day` of the raw score off; after `cutoff` the
    score is 0. Penalties are recorded apart from the raw scores.
    """

    model_config = ConfigDict(extra="forbid")

    due: datetime
    grace_minutes: float = Field(0.0, ge=0)
    percent_per_day: float = Field(0.0, ge=0, le=100)
    cutoff: datetime | None = Field(None, description="after this the score is 0")

    @model_validator(mode="after")
    def _check_times(self) -> Deadline:
        for name in ("due", "cutoff"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(
                    f"{name} needs a UTC offset, e.g. 2025-03-14T23:59:00+01:00 "
                    "(a time without one means different moments on different machines)"
                )
        if self.cutoff is not None and self.cutoff < self.due:
            raise ValueError("cutoff is before due; the cutoff must come after the due time")
        return self

    @property
    def closes(self) -> datetime:
        """When no submission can change any more: the cutoff, else the due time."""
        return self.cutoff or self.due


class Feedback(BaseModel):
    """What student reports show, under `[feedback]`."""

    model_config = ConfigDict(extra="forbid")

    show_answers: Literal["never", "after_deadline", "always"] = Field(
        "never",
        description="show the answer key of theory questions in student reports: never, "
        "always, or after_deadline (after the cutoff, else the due time)",
    )


class Lms(BaseModel):
    """How the assignment is known to the LMS, under `[lms]` (used by the exports)."""

    model_config = ConfigDict(extra="forbid")

    canvas_assignment_id: int | None = Field(
        None, description="Canvas's assignment id: the grade column becomes `Title (id)`"
    )
    moodle_grade_item: str = Field(
        "", description="header of the grade column in the Moodle CSV (default: the title)"
    )


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: QuestionKind
    points: float = Field(1.0, ge=0)
    title: str = ""
    tests: list[str] = Field(default_factory=list, description="hidden test name patterns")
    answer: str | bool | int | float | None = None
    choices: list[str] = Field(default_factory=list)
    rtol: float = Field(1e-3, ge=0)
    atol: float = Field(0.0, ge=0)
    forbid: list[str] = Field(
        default_factory=list,
        description="APIs disabled while the student's code runs for this question's tests: "
        "dotted names (torch.nn.functional.conv2d, torch.nn.Conv2d) or `autograd`",
    )

    @property
    def variable(self) -> str:
        """The notebook variable holding a theory answer."""
        return f"answer_{self.id}"

    @property
    def auto(self) -> bool:
        """True when the question is graded without a human."""
        return self.kind is not QuestionKind.TEXT

    @model_validator(mode="after")
    def _check_kind(self) -> Question:
        kind = self.kind
        if kind is QuestionKind.CODE:
            if not self.tests:
                raise ValueError(f"code question {self.id!r} needs `tests` (hidden test names)")
            if self.answer is not None:
                raise ValueError(f"code question {self.id!r} cannot have an `answer`")
        elif self.tests or self.forbid:
            raise ValueError(
                f"only code questions have `tests` and `forbid`; {self.id!r} is {kind.value}"
            )
        if kind is QuestionKind.CHOICE:
            if not self.choices:
                raise ValueError(f'choice question {self.id!r} needs `choices`, e.g. ["a", "b"]')
            if self.answer is not None and self.answer not in self.choices:
                raise ValueError(f"answer {self.answer!r} of {self.id!r} is not among its choices")
        if (
            kind is QuestionKind.BOOL
            and self.answer is not None
            and not isinstance(self.answer, bool)
        ):
            raise ValueError(f"bool question {self.id!r} needs answer = true or false")
        if (
            kind is QuestionKind.NUMERIC
            and self.answer is not None
            and (isinstance(self.answer, bool) or not isinstance(self.answer, int | float))
        ):
            raise ValueError(f"numeric question {self.id!r} needs a number as answer")
        return self

    def covers(self, test_name: str) -> bool:
        """Whether a hidden test (function name, parameters stripped) belongs here."""
        base = test_name.split("[", 1)[0]
        return any(fnmatch.fnmatchcase(base, pattern) for pattern in self.tests)


class AssignmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = ""
    notebook: str = Field(description="student template, relative to the assignment folder")
    questions: list[Question]
    limits: Limits = Field(default_factory=Limits)
    seed: int = 0
    deadline: Deadline | None = None
    feedback: Feedback = Field(default_factory=Feedback)
    lms: Lms = Field(default_factory=Lms)

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[Question]) -> list[Question]:
        if not questions:
            raise ValueError("an assignment needs at least one question")
        seen: set[str] = set()
        for q in questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} appears twice")
            seen.add(q.id)
        return questions

    @property
    def max_score(self) -> float:
        return sum(q.points for q in self.questions)

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    @property
    def manual_questions(self) -> list[Question]:
        """The questions a human grades (kind `text`)."""
        return [q for q in self.questions if not q.auto]

    def question_for_test(self, test_name: str) -> Question | None:
        """The code question a hidden test counts towards, or None if unmapped."""
        for q in self.questions:
            if q.kind is QuestionKind.CODE and q.covers(test_name):
                return q
        return None

    def missing_answers(self) -> list[str]:
        """Ids of auto-graded theory questions that have no answer key."""
        return [
            q.id
            for q in self.questions
            if q.kind not in (QuestionKind.CODE, QuestionKind.TEXT) and q.answer is None
        ]

    def without_answers(self) -> dict[str, Any]:
        """The spec as a dict safe to hand to students (no answer key)."""
        data = self.model_dump(mode="json")
        for q in data["questions"]:
            q.pop("answer", None)
        return data


Model = TypeVar("Model", bound=BaseModel)


def load_spec(path: Path) -> AssignmentSpec:
    """Read and validate one `assignment.toml`; errors name the file and the field."""
    return load_toml(path, AssignmentSpec, SpecError, f"; every assignment needs {SPEC_FILENAME}")


def load_toml(
    path: Path, model: type[Model], error: type[AutograderError], missing: str = ""
) -> Model:
    """Read the TOML file `path` into `model`; every problem raises `error` naming the file
    and the field (`missing` is added to the message for a file that does not exist)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such file{missing}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise error(f"{path}: {problems}") from None
