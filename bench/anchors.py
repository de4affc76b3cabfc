"""The anchors: nbgrader's `autograde` and otter-grader's `otter run`, on equivalent assignments.

Both are installed by the benchmark into their own virtual environment (never the project's),
with the same torch release as the project, and cached there between runs. Their checks are
the equivalent checks of `equivalent.py`: nbgrader gets one hidden autograder test cell per
check (points = the check's share of its question), otter one exception-based test file per
question with one test case per check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equivalent
import measure

TOOLS = {"nbgrader": "nbgrader", "otter": "otter-grader"}
INSTALL_TIMEOUT_S = 3600


@dataclass
class Venv:
    path: Path
    available: dict[str, str | None]  # tool -> None when usable, else why not

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def env(self, threads: int) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        # the sandbox's thread budget (the spec's limits.threads), for every method alike
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        return env


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def ensure_venv(path: Path, torch_requirement: str, log: Callable[[str], None]) -> Venv:
    """Create (or reuse) the anchors' virtual environment; says per tool why it is unusable."""
    marker = path / "bench-installed.json"
    wanted = {"torch": torch_requirement, **TOOLS}
    if marker.exists():
        try:
            state = json.loads(marker.read_text())
        except ValueError:
            state = {}
        usable = state.get("available") and not any(state["available"].values())
        if state.get("wanted") == wanted and usable and (path / "bin" / "python").exists():
            return Venv(path, state["available"])  # else: install again, a failure may pass now
    available: dict[str, str | None] = {}
    python = path / "bin" / "python"
    if not python.exists():
        log(f"creating the anchors' virtual environment in {path} (cached for later runs)")
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(path)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            why = f"`python -m venv` failed: {_tail(made.stderr)}"
            return Venv(path, dict.fromkeys(TOOLS, why))

    def pip(*packages: str) -> str | None:
        log(f"pip install {' '.join(packages)} (into the anchors' environment; a few minutes)")
        try:
            done = subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    *packages,
                ],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"`pip install {' '.join(packages)}` did not finish in {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            return f"`pip install {' '.join(packages)}` failed: {_tail(done.stderr)}"
        return None

    torch_error = pip(torch_requirement)
    for tool, package in TOOLS.items():
        if torch_error is not None:
            available[tool] = f"torch could not be installed for it: {torch_error}"
            continue
        available[tool] = pip(package)
        if available[tool] is None:
            probe = subprocess.run(
                [str(path / "bin" / tool), "--help"], capture_output=True, text=True, check=False
            )
            if probe.returncode != 0:
                available[tool] = f"`{tool} --help` fails after install: {_tail(probe.stderr)}"
    marker.write_text(json.dumps({"wanted": wanted, "available": available}, indent=1))
    return Venv(path, available)


# --------------------------------------------------------------------------- notebooks
def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, notebook: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def _code_cell(source: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": uuid.uuid4().hex[:12],
        "metadata": metadata or {},
        "outputs": [],
        "source": source,
    }


def _with_ids(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for cell in cells:
        cell = dict(cell)
        cell.setdefault("id", uuid.uuid4().hex[:12])
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        out.append(cell)
    return out


# --------------------------------------------------------------------------- nbgrader
@dataclass
class Nbgrader:
    venv: Venv
    root: Path  # the nbgrader course
    assignment: str
    notebook: str  # file name of the notebook in the assignment
    threads: int

    def cmd(self, *args: str) -> list[str]:
        return [self.venv.bin("nbgrader"), *args]

    def build(
        self, template: Path, checks: list[dict[str, Any]], source: str, timeout: float, log: Any
    ) -> str | None:
        """The course: config, source notebook = template + one hidden test cell per check,
        then `nbgrader generate_assignment`. Returns why it failed, or None."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "nbgrader_config.py").write_text(
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(self.root)!r}\n"
            "c.CourseDirectory.course_id = 'bench'\n"
            f"c.Execute.timeout = {int(timeout)}\n"
        )
        notebook = _read(template)
        cells = _with_ids(notebook["cells"])
        for i, check in enumerate(checks):
            body = equivalent.call(self.assignment, check["key"], "globals()")
            if i == 0:
                body = equivalent.loader(self.assignment, source) + body
            meta = {
                "nbgrader": {
                    "grade": True,
                    "grade_id": f"check_{i:03d}",
                    "locked": True,
                    "points": check["points"],
                    "schema_version": 3,
                    "solution": False,
                    "task": False,
                }
            }
            cells.append(
                _code_cell(
                    f"# {check['key']}\n### BEGIN HIDDEN TESTS\n{body}### END HIDDEN TESTS", meta
                )
            )
        notebook["cells"] = cells
        notebook["nbformat"], notebook["nbformat_minor"] = 4, 5
        _write(self.root / "source" / self.assignment / self.notebook, notebook)
        code = measure.run(
            self.cmd("generate_assignment", self.assignment, "--force"),
            timeout=600,
            log=log,
            cwd=self.root,
            env=self.venv.env(self.threads),
        )
        if code != 0:
            return f"`nbgrader generate_assignment` exited with {code} (see {log.name})"
        return None

    def submit(self, class_dir: Path, students: list[str]) -> None:
        """submitted/<student>/<assignment>/<notebook>: the student's cells followed by the
        released test cells (hidden tests stripped; autograde puts them back)."""
        release = _read(self.root / "release" / self.assignment / self.notebook)
        tests = [
            c for c in release["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")
        ]
        for student in students:
            notebook = _read(class_dir / f"{student}.ipynb")
            notebook["cells"] = _with_ids(notebook["cells"]) + tests
            notebook["nbformat"], notebook["nbformat_minor"] = 4, 5
            _write(self.root / "submitted" / student / self.assignment / self.notebook, notebook)

    def autograde(self, students: list[str], jobs: int, timeout: float, log: Any) -> str | None:
        """`nbgrader autograde` over the class. nbgrader has no parallel mode: with jobs > 1,
        `jobs` processes each take a share of the students (--CourseDirectory.
        student_id_exclude) on the same course and gradebook."""
        env = self.venv.env(self.threads)
        if jobs <= 1:
            code = measure.run(
                self.cmd("autograde", self.assignment, "--force"),
                timeout,
                log,
                cwd=self.root,
                env=env,
            )
            return None if code == 0 else f"`nbgrader autograde` exited with {code}"
        shares = [students[k::jobs] for k in range(jobs)]

        def one(k: int) -> int:
            exclude = ",".join(s for s in students if s not in shares[k])
            return measure.run(
                self.cmd(
                    "autograde",
                    self.assignment,
                    "--force",
                    f"--CourseDirectory.student_id_exclude={exclude}",
                ),
                timeout,
                log,
                cwd=self.root,
                env=env,
            )

        with ThreadPoolExecutor(jobs) as pool:
            codes = list(pool.map(one, range(jobs)))
        bad = [c for c in codes if c != 0]
        return f"`nbgrader autograde` exited with {bad}" if bad else None

    def scores(self) -> tuple[dict[str, float], str | None]:
        script = (
            "import json, sys\n"
            "from nbgrader.api import Gradebook\n"
            "out = {}\n"
            "with Gradebook(sys.argv[1]) as gb:\n"
            "    for sub in gb.assignment_submissions(sys.argv[2]):\n"
            "        out[sub.student.id] = sub.score\n"
            "print(json.dumps(out))\n"
        )
        done = subprocess.run(
            [
                str(self.venv.python),
                "-c",
                script,
                f"sqlite:///{self.root / 'gradebook.db'}",
                self.assignment,
            ],
            capture_output=True,
            text=True,
            check=False,
            env=self.venv.env(self.threads),
        )
        if done.returncode != 0:
            return {}, f"reading nbgrader's gradebook failed: {_tail(done.stderr)}"
        return json.loads(done.stdout), None


# --------------------------------------------------------------------------- otter
@dataclass
class Otter:
    venv: Venv
    root: Path
    assignment: str
    threads: int

    @property
    def zip(self) -> Path:
        return self.root / "autograder.zip"

    def build(self, checks: list[dict[str, Any]], source: str, log: Any) -> str | None:
        """One exception-based test file per question (one test case per check), then
        `otter generate`. Returns why it failed, or None."""
        tests = self.root / "tests"
        tests.mkdir(parents=True, exist_ok=True)
        by_question: dict[str, list[dict[str, Any]]] = {}
        for check in checks:
            by_question.setdefault(check["question"], []).append(check)
        for question, items in by_question.items():
            lines = [
                "OK_FORMAT = False",
                "",
                equivalent.loader(self.assignment, source),
                "from otter.test_files import test_case",
                "",
                f"name = {question!r}",
                "",
            ]
            for i, check in enumerate(items):
                lines += [
                    "",
                    f"@test_case(name={check['key']!r}, points={check['points']!r}, hidden=False)",
                    f"def case_{i}(env):",
                    "    " + equivalent.call(self.assignment, check["key"], "env"),
                ]
            (tests / f"{question}.py").write_text("\n".join(lines))
        code = measure.run(
            [
                self.venv.bin("otter"),
                "generate",
                "-t",
                "tests",
                "-o",
                str(self.zip),
                "--no-config",
                "--no-requirements",
                "--no-environment",
            ],
            timeout=600,
            log=log,
            cwd=self.root,
            env=self.venv.env(self.threads),
        )
        if code != 0 or not self.zip.exists():
            return f"`otter generate` exited with {code} (see {log.name})"
        return None

    def run(
        self, class_dir: Path, students: list[str], jobs: int, timeout: float, log: Any
    ) -> str | None:
        """`otter run` per submission, `jobs` at a time (otter runs one submission per call)."""
        env = self.venv.env(self.threads)
        results = self.root / "results"

        def one(student: str) -> int:
            out = results / student
            out.mkdir(parents=True, exist_ok=True)
            work = self.root / "submissions" / student
            work.mkdir(parents=True, exist_ok=True)
            submission = work / f"{self.assignment}.ipynb"
            shutil.copyfile(class_dir / f"{student}.ipynb", submission)
            return measure.run(
                [
                    self.venv.bin("otter"),
                    "run",
                    "-a",
                    str(self.zip),
                    "-o",
                    str(out),
                    "--no-logo",
                    str(submission),
                ],
                timeout,
                log,
                cwd=self.root,
                env=env,
            )

        with ThreadPoolExecutor(jobs) as pool:
            codes = list(pool.map(one, students))
        bad = sorted({c for c in codes if c != 0})
        return (
            f"`otter run` exited with {bad} for {sum(c != 0 for c in codes)} submissions"
            if bad
            else None
        )

    def scores(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for path in sorted((self.root / "results").glob("*/results.json")):
            data = json.loads(path.read_text())
            out[path.parent.name] = sum(float(t.get("score") or 0.0) for t in data["tests"])
        return out
