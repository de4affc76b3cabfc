"""What the LMS bulk downloads look like: Moodle's and Canvas's submission zips.

Moodle ("Download all submissions"): one folder per participant and submission plugin,

    Full Name_<participant id>_assignsubmission_file_/<file>.ipynb
    Full Name_<participant id>_assignsubmission_onlinetext_/onlinetext.html

or, with "Download submissions in folders" off, the same prefix glued to each file name:
`Full Name_<participant id>_assignsubmission_file_<file>.ipynb`.

Canvas ("Download Submissions"): flat files

    <login or name>_<canvas user id>_<submission id>_<original name>.ipynb
    <login or name>_late_<canvas user id>_<submission id>_<original name>.ipynb

Neither carries the student id the gradebook uses: the roster maps the participant /
user id or the name to it (`roster.Roster.match`). Only names are parsed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MOODLE = "moodle"
CANVAS = "canvas"

_MOODLE_NAME = re.compile(
    r"^(?P<name>.+?)_(?P<number>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$"
)
_CANVAS_NAME = re.compile(
    r"^(?P<name>[^_]+(?:_[^_]+)*?)(?P<late>_late)?_(?P<number>\d+)_(?P<submission>\d+)"
    r"_(?P<rest>.+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LmsName:
    """Who a file or folder of an LMS download belongs to, as the LMS names them."""

    lms: str  # MOODLE or CANVAS
    name: str  # Moodle: the full name; Canvas: the login or the name run together
    number: str  # Moodle: participant id; Canvas: user id
    rest: str  # what follows the prefix: a file name (may be empty for Moodle folders)
    plugin: str = ""  # Moodle: file, onlinetext, ...
    late: bool = False  # Canvas marks late submissions in the name

    def describe(self) -> str:
        kind = "participant" if self.lms == MOODLE else "user"
        late = ", marked late" if self.late else ""
        return f"{self.lms} {kind} {self.number} ({self.name}{late})"


def parse_moodle(name: str) -> LmsName | None:
    """A Moodle folder or flat file name, or None when it is not one."""
    m = _MOODLE_NAME.match(name)
    if m is None:
        return None
    return LmsName(MOODLE, m["name"].strip(), m["number"], m["rest"], plugin=m["plugin"])


def parse_canvas(name: str) -> LmsName | None:
    """A Canvas file name, or None when it is not one."""
    m = _CANVAS_NAME.match(name)
    if m is None:
        return None
    return LmsName(CANVAS, m["name"], m["number"], m["rest"], late=m["late"] is not None)
