"""Where things live in a course folder (the layout DESIGN.md fixes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.errors import CourseError
from autograder.spec import SPEC_FILENAME, AssignmentSpec, load_spec

GRADEBOOK_FILENAME = "gradebook.db"
RELEASE_SPEC = "assignment.json"  # the answer-free spec shipped with a student release


@dataclass(frozen=True)
class Assignment:
    """One assignment of a course: its spec and the folders that belong to it."""

    spec: AssignmentSpec
    folder: Path  # assignments/<name>/
    reference_folder: Path  # reference_solutions/<name>/

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def template(self) -> Path:
        return self.folder / self.spec.notebook

    @property
    def hidden_tests(self) -> Path:
        return self.folder / "hidden_tests"

    @property
    def public_tests(self) -> Path:
        return self.folder / "public_tests"

    @property
    def data(self) -> Path | None:
        """Read-only data the student notebook may load (mounted into the sandbox)."""
        folder = self.folder / "data"
        return folder if folder.is_dir() else None


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def at(cls, root: Path) -> Course:
        root = root.resolve()
        if not (root / "assignments").is_dir():
            raise CourseError(
                f"{root} is not a course folder (it has no assignments/ folder); "
                "pass --course DIR or create one with `autograder init DIR`"
            )
        return cls(root)

    @property
    def gradebook(self) -> Path:
        return self.root / GRADEBOOK_FILENAME

    def reports_dir(self, assignment: str) -> Path:
        return self.root / "reports" / assignment

    def release_dir(self, assignment: str) -> Path:
        return self.root / "release" / assignment

    def exports_dir(self) -> Path:
        return self.root / "exports"

    def assignment_names(self) -> list[str]:
        return sorted(
            p.name for p in (self.root / "assignments").iterdir() if (p / SPEC_FILENAME).is_file()
        )

    def assignment(self, name: str) -> Assignment:
        folder = self.root / "assignments" / name
        if not (folder / SPEC_FILENAME).is_file():
            known = ", ".join(self.assignment_names()) or "none"
            raise CourseError(
                f"no assignment {name!r} in {self.root / 'assignments'} "
                f"(expected {folder / SPEC_FILENAME}); assignments here: {known}"
            )
        spec = load_spec(folder / SPEC_FILENAME)
        if spec.name != name:
            raise CourseError(
                f"{folder / SPEC_FILENAME}: name = {spec.name!r} but the folder is {name!r}; "
                "make them the same"
            )
        return Assignment(spec, folder, self.root / "reference_solutions" / name)
