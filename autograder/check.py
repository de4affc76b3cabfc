"""The `check` verb: what a student runs before submitting (public tests only)."""

from __future__ import annotations

import json
from pathlib import Path

from autograder.course import RELEASE_SPEC, Assignment, Course
from autograder.errors import CourseError
from autograder.grader.run import Grader
from autograder.results import SubmissionResult
from autograder.sandbox.base import Sandbox
from autograder.spec import AssignmentSpec


def _assignment_name(notebook: Path) -> str | None:
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("autograder", {}).get("assignment")
        return name if isinstance(name, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def find_assignment(notebook: Path, course_root: Path | None, name: str | None) -> Assignment:
    """The assignment a notebook belongs to: a student release next to it, or the course's."""
    release_spec = notebook.parent / RELEASE_SPEC
    if course_root is None and release_spec.is_file():
        spec = AssignmentSpec.model_validate(json.loads(release_spec.read_text()))
        return Assignment(spec, notebook.parent, notebook.parent / "no-reference")
    course = Course.at(course_root or Path.cwd())
    name = name or _assignment_name(notebook)
    if name is None:
        names = course.assignment_names()
        matching = [n for n in names if notebook.stem.startswith(n)]
        if len(matching) != 1:
            raise CourseError(
                f"{notebook.name}: cannot tell which assignment this is; pass --assignment NAME "
                f"(one of: {', '.join(names)})"
            )
        name = matching[0]
    return course.assignment(name)


def check(notebook: Path, assignment: Assignment, sandbox: Sandbox) -> SubmissionResult:
    """Run the public tests against `notebook` in the same sandbox and runtime as grading."""
    if not assignment.public_tests.is_dir():
        raise CourseError(f"{assignment.public_tests}: this assignment has no public tests")
    grader = Grader.public(assignment, sandbox, assignment.public_tests)
    return grader.grade(notebook.stem, notebook, "check")
