"""The one exception tree of the autograder, and the CLI's exit codes.

    AutograderError                 anything the instructor can act on
    ├── CourseError                 course folder, assignment spec or reference is wrong
    │   └── SpecError               assignment.toml does not validate
    ├── SubmissionError             one submission cannot be graded (bad file, bad id)
    │   └── NotebookError           the file is not a usable Jupyter notebook
    ├── SandboxError                a sandbox could not be started or broke
    │   └── ProtocolError           the sandbox sent something that is not valid protocol data
    ├── GradebookError              the gradebook is locked, corrupt or from another version
    └── PublishError                the release failed validation

Errors are raised without logging; the CLI prints each once.
Exceptions raised *into hidden tests* for student faults (StudentCodeError and friends)
live in `autograder.grader.proxy`: they are test failures, not tool failures.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    SUBMISSIONS_FAILED = 1
    USAGE_ERROR = 2
    INTERNAL_ERROR = 3
    INTERRUPTED = 4


class AutograderError(Exception):
    """Base of every error the autograder raises on purpose."""


class CourseError(AutograderError):
    """The course folder, an assignment or its reference solution is unusable."""


class SpecError(CourseError):
    """An assignment spec file does not validate."""


class SubmissionError(AutograderError):
    """A single submission cannot be graded; the batch goes on."""


class NotebookError(SubmissionError):
    """A file is not a readable Jupyter notebook."""


class SandboxError(AutograderError):
    """A sandbox could not be started or failed in a way that is not the student's fault."""


class ProtocolError(SandboxError):
    """Bytes from a sandbox are not a valid protocol message."""


class GradebookError(AutograderError):
    """The gradebook cannot be opened or written."""


class PublishError(AutograderError):
    """An assignment failed validation and was not published."""
