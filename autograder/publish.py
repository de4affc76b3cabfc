"""The `publish` verb: validate an assignment, then write the student release.

Validation grades the reference solution (must earn full marks on every auto-graded
question, every hidden test mapped to a question) and the untouched template (must
earn zero), then, unless told not to, runs mutation testing (`autograder.mutation`):
the hidden tests must catch enough mutants of the reference, question by question.
The release holds the template and the public tests, never the reference, the hidden
tests or the answer key.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.course import RELEASE_SPEC, Assignment, Course
from autograder.errors import PublishError
from autograder.grader.reference import reference_file
from autograder.grader.run import Grader
from autograder.mutation import MutationOptions, MutationReport, run_mutants
from autograder.mutation import Progress as MutationProgress
from autograder.results import Outcome, SubmissionResult
from autograder.sandbox.base import Sandbox
from autograder.spec import QuestionKind


@dataclass
class Validation:
    reference: SubmissionResult
    template: SubmissionResult
    problems: list[str] = field(default_factory=list)
    mutation: MutationReport | None = None  # None: mutation testing did not run


def _as_notebook(path: Path, workdir: Path) -> Path:
    """The reference as a notebook (a .py reference becomes a one-cell notebook)."""
    if path.suffix == ".ipynb":
        return path
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(path.read_text(encoding="utf-8"))]
    out = workdir / "reference.ipynb"
    nbformat.write(nb, out)
    return out


def validate(assignment: Assignment, sandbox: Sandbox) -> Validation:
    """Grade the reference and the template; list every problem found."""
    spec = assignment.spec
    problems = [
        f"question {qid!r} has no answer key in assignment.toml" for qid in spec.missing_answers()
    ]
    for path, what in (
        (assignment.template, "template notebook"),
        (assignment.hidden_tests, "hidden_tests/ folder"),
    ):
        if not path.exists():
            raise PublishError(f"{path}: the {what} is missing")
    grader = Grader.hidden(assignment, sandbox)
    with tempfile.TemporaryDirectory(prefix="autograder-publish-") as tmp:
        ref_nb = _as_notebook(reference_file(assignment.reference_folder), Path(tmp))
        reference = grader.grade("reference", ref_nb, "reference")
    template = grader.grade("template", assignment.template, "template")
    auto = {q.id for q in spec.questions if q.auto}
    for test in reference.tests:
        if test.question_id is None:
            problems.append(f"hidden test {test.test_id} matches no question's `tests` patterns")
        elif test.outcome is not Outcome.PASSED:
            problems.append(f"the reference fails hidden test {test.test_id}: {test.message}")
    covered = {t.question_id for t in reference.tests}
    for q in spec.questions:
        if q.kind is QuestionKind.CODE and q.id not in covered:
            problems.append(f"code question {q.id!r}: no hidden test matches {q.tests}")
    for q in reference.questions:
        if q.question_id in auto and q.score != q.max_score:
            problems.append(
                f"the reference scores {q.score}/{q.max_score} on {q.question_id!r}: {q.feedback}"
            )
    for q in template.questions:
        if q.question_id in auto and (q.score or 0) > 0:
            problems.append(
                f"the untouched template scores {q.score} on {q.question_id!r}; "
                "stubs should raise NotImplementedError and answers be None"
            )
    for cell in reference.cells:
        problems.append(f"reference cell {cell.index} failed in the sandbox: {cell.error}")
    return Validation(reference, template, problems)


def validate_with_mutants(
    assignment: Assignment,
    sandbox: Sandbox,
    mutants: MutationOptions | None,
    progress: MutationProgress | None = None,
) -> Validation:
    """`validate`, then mutation testing (skipped with `mutants=None`, or when the reference
    or the template already failed: mutants are judged against the reference's scores)."""
    result = validate(assignment, sandbox)
    if mutants is not None and not result.problems:
        result.mutation = run_mutants(assignment, mutants, progress)
        result.problems.extend(result.mutation.problems)
    return result


def write_release(course: Course, assignment: Assignment) -> Path:
    """Copy what students get into release/<name>/ and return that folder."""
    out = course.release_dir(assignment.name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    nb = nbformat.read(assignment.template, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["autograder"] = {"assignment": assignment.name}
    nbformat.write(nb, out / assignment.template.name)
    if assignment.public_tests.is_dir():
        shutil.copytree(
            assignment.public_tests,
            out / "public_tests",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    (out / RELEASE_SPEC).write_text(json.dumps(assignment.spec.without_answers(), indent=2) + "\n")
    return out


def publish(
    course: Course,
    name: str,
    sandbox: Sandbox,
    mutants: MutationOptions | None = None,
    progress: MutationProgress | None = None,
) -> tuple[Validation, Path]:
    """Validate `name` (with mutation testing when `mutants` is given); write its release
    only when validation found no problem."""
    assignment = course.assignment(name)
    result = validate_with_mutants(assignment, sandbox, mutants, progress)
    if result.problems:
        raise PublishError(f"{name} was not published:\n  - " + "\n  - ".join(result.problems))
    return result, write_release(course, assignment)
