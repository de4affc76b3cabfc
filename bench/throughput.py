"""Throughput benchmark: this autograder against nbgrader, otter-grader and the floor.

Builds a class of N perceptron (and backprop) submissions, correct and wrong variants, then
grades it in one run, on this machine, with every method and --jobs value, and prints
submissions per second, the overhead per submission over the floor, peak memory, the ratios
against each anchor, and whether every method gave every submission the same score (exit
status 1 when they do not). See bench/README.md.

    python bench/throughput.py [--n 100] [--assignments perceptron,backprop]
        [--methods ours-local,ours-docker,nbgrader,otter,floor] [--jobs 1,2] [--keep]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.metadata
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import anchors  # noqa: E402
import classgen  # noqa: E402
import equivalent  # noqa: E402
import measure  # noqa: E402

from autograder.course import Course  # noqa: E402
from autograder.gradebook import Gradebook  # noqa: E402
from autograder.sandbox import docker as docker_sandbox  # noqa: E402

METHODS = ("ours-local", "ours-docker", "nbgrader", "otter", "floor")
ANCHORS = ("nbgrader", "otter", "floor")
RUN_ORDER = ("floor", "ours-local", "ours-docker", "nbgrader", "otter")
TOLERANCE = 1e-3  # points; float sums of per-check shares differ by far less
# Targets of the warm-pool work, for ours-local at --jobs 2 (informational).
TARGETS = {"nbgrader": 20.0, "otter": 50.0, "floor": 0.5}


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Row:
    assignment: str
    method: str
    jobs: int
    n: int
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_sub_mb: float | None = None  # where one notebook runs: sandbox / kernel / child
    peak_total_mb: float | None = None  # every process the method started, summed
    scores: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None  # why it did not run (or not completely)
    notes: list[str] = field(default_factory=list)
    warmup_s: float | None = None  # the floor's, left out of its wall time

    @property
    def label(self) -> str:
        return f"{self.method} j{self.jobs}"

    @property
    def rate(self) -> float | None:
        if self.wall_s is None or self.wall_s <= 0 or not self.scores:
            return None
        return len(self.scores) / self.wall_s

    @property
    def end_to_end_rate(self) -> float | None:
        """`rate` with the warm-up counted (the floor's; the others time theirs anyway)."""
        if self.wall_s is None or self.wall_s <= 0 or not self.scores:
            return None
        return len(self.scores) / (self.wall_s + (self.warmup_s or 0.0))


# --------------------------------------------------------------------------- checks
@dataclass
class Prepared:
    assignment: str
    class_dir: Path
    manifest: dict[str, str]  # student -> variant
    source: str | None  # the equivalent checks module, when buildable
    checks: list[dict[str, Any]]
    checks_error: str | None  # why the anchors and the floor cannot run
    threads: int
    timeout: float  # the spec's notebook timeout


def floor_cmd(checks: Path, notebooks: Path, jobs: int, out: Path, threads: int) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "floor.py"),
        str(checks),
        str(notebooks),
        "--jobs",
        str(jobs),
        "--out",
        str(out),
        "--threads",
        str(threads),
    ]


def prepare(course: Course, name: str, n: int, work: Path) -> Prepared:
    assignment = course.assignment(name)
    spec = assignment.spec
    folder = work / name
    manifest = classgen.generate(ROOT, name, n, folder / "class")
    prepared = Prepared(
        assignment=name,
        class_dir=folder / "class",
        manifest=manifest,
        source=None,
        checks=[],
        checks_error=None,
        threads=spec.limits.threads,
        timeout=spec.limits.notebook_timeout,
    )
    try:
        source = equivalent.build(assignment)
    except equivalent.NotReproducible as exc:
        prepared.checks_error = f"no equivalent checks: {exc}"
        return prepared
    checks_file = folder / "checks.py"
    checks_file.write_text(source, encoding="utf-8")
    # Preflight: the reference solution must score full marks on the equivalent checks.
    out = folder / "preflight.json"
    reference = next(iter(sorted(assignment.reference_folder.glob("*.ipynb"))), None)
    with (folder / "preflight.log").open("w") as log:
        code = measure.run(
            [
                *floor_cmd(
                    checks_file,
                    reference or assignment.reference_folder,
                    1,
                    out,
                    spec.limits.threads,
                ),
                "--describe",
            ],
            600,
            log,
        )
    if code != 0 or not out.exists():
        tail = (folder / "preflight.log").read_text()[-600:]
        prepared.checks_error = f"the equivalent checks do not load (exit {code}): {tail}"
        return prepared
    result = json.loads(out.read_text())
    prepared.checks = result["cases"]
    auto_max = sum(q.points for q in spec.questions if q.auto)
    if reference is not None:
        got = next(iter(result["students"].values()))
        if got.get("error") or abs(got.get("total", -1) - auto_max) > TOLERANCE:
            prepared.checks_error = (
                "the reference solution does not get full marks on the equivalent checks "
                f"({got.get('total')} of {auto_max}; {got.get('error') or got.get('failed')})"
            )
            return prepared
    prepared.source = source
    say(
        f"  {len(prepared.checks)} equivalent checks "
        f"({sum(1 for c in prepared.checks if c['key'].startswith('answer::'))} theory), "
        f"the reference scores {auto_max:g}/{auto_max:g} on them"
    )
    return prepared


# --------------------------------------------------------------------------- methods
def run_ours(
    p: Prepared,
    course: Course,
    sandbox: str,
    jobs: int,
    work: Path,
    timeout: float,
    extra: list[str],
) -> Row:
    row = Row(p.assignment, f"ours-{sandbox}", jobs, len(p.manifest))
    folder = work / p.assignment / f"ours-{sandbox}-j{jobs}"
    for part in ("assignments", "reference_solutions"):
        shutil.copytree(course.root / part / p.assignment, folder / part / p.assignment)
    cmd = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        p.assignment,
        str(p.class_dir),
        "--course",
        str(folder),
        "--sandbox",
        sandbox,
        "--jobs",
        str(jobs),
        *extra,
    ]
    log_path = folder / "grade.log"
    with log_path.open("w") as log:
        code, usage = measure.measured(lambda: measure.run(cmd, timeout, log, cwd=folder))
    row.wall_s, row.cpu_s, row.peak_total_mb = usage.wall_s, usage.cpu_s, usage.peak_total_mb
    if code not in (0, 1):  # 1: some submissions could not be graded (listed in the table)
        row.error = f"`autograder grade` exited with {code}: {_tail(log_path)}"
    try:
        with Gradebook.open(folder / "gradebook.db") as book:
            stored = book.current(p.assignment)
    except Exception as exc:
        row.error = row.error or f"reading the gradebook failed: {exc}"
        return row
    peaks, durations = [], []
    for item in stored:
        result = item.result
        durations.append(result.duration_s)
        row.scores[result.student_id] = result.score
        if result.status.value not in ("graded", "pending"):
            row.notes.append(f"{result.student_id}: {result.status.value} ({result.message[:80]})")
        if result.peak_memory_mb is not None:
            peaks.append(result.peak_memory_mb)
    row.peak_sub_mb = max(peaks) if peaks else None
    if durations and row.wall_s:
        durations.sort()
        busy = sum(durations) / min(jobs, len(durations))
        row.notes.append(
            f"median {durations[len(durations) // 2]:.2f} s per submission in the grader; "
            f"about {max(0.0, row.wall_s - busy):.1f} s of the wall time is start-up and "
            "scheduling (it weighs less with a larger --n)"
        )
    if not peaks:
        row.notes.append("no peak memory recorded (no cgroup)")
    if not usage.cpu_complete:
        row.notes.append(
            "cpu s/sub counts only processes that were waited for (no cgroup v1 cpuacct "
            "here): the workers, forked by a fork server, are missing"
        )
    if sandbox == "docker":
        row.notes.append("total memory excludes the containers")
    return row


def run_floor(p: Prepared, jobs: int, work: Path, timeout: float) -> Row:
    row = Row(p.assignment, "floor", jobs, len(p.manifest))
    folder = work / p.assignment / f"floor-j{jobs}"
    folder.mkdir(parents=True)
    out = folder / "results.json"
    log_path = folder / "floor.log"
    with log_path.open("w") as log:
        code, usage = measure.measured(
            lambda: measure.run(
                floor_cmd(work / p.assignment / "checks.py", p.class_dir, jobs, out, p.threads),
                timeout,
                log,
            )
        )
    row.cpu_s, row.peak_total_mb = usage.cpu_s, usage.peak_total_mb
    if code != 0 or not out.exists():
        row.error = f"the floor exited with {code}: {_tail(log_path)}"
        return row
    data = json.loads(out.read_text())
    row.wall_s, row.cpu_s, row.warmup_s = data["wall_s"], data["cpu_s"], data["warmup_s"]
    row.notes.append(
        f"wall and CPU after a {row.warmup_s:.1f} s warm-up (import torch, load checks)"
    )
    for student, result in data["students"].items():
        row.scores[student] = result.get("total")
        if result.get("error"):
            row.notes.append(f"{student}: {result['error']}")
    peaks = [r["peak_mb"] for r in data["students"].values() if r.get("peak_mb")]
    row.peak_sub_mb = max(peaks) if peaks else None
    return row


def run_nbgrader(
    p: Prepared, venv: anchors.Venv, jobs: int, work: Path, timeout: float, course: Course
) -> Row:
    row = Row(p.assignment, "nbgrader", jobs, len(p.manifest))
    assignment = course.assignment(p.assignment)
    folder = work / p.assignment / f"nbgrader-j{jobs}"
    grader = anchors.Nbgrader(venv, folder, p.assignment, assignment.spec.notebook, p.threads)
    students = sorted(p.manifest)
    log_path = work / p.assignment / f"nbgrader-j{jobs}.log"
    with log_path.open("w") as log:
        assert p.source is not None
        why = grader.build(assignment.template, p.checks, p.source, p.timeout, log)
        if why:
            row.error = f"{why}: {_tail(log_path)}"
            return row
        grader.submit(p.class_dir, students)
        why, usage = measure.measured(lambda: grader.autograde(students, jobs, timeout, log))
    row.wall_s, row.cpu_s = usage.wall_s, usage.cpu_s
    row.peak_sub_mb, row.peak_total_mb = usage.peak_kernel_mb, usage.peak_total_mb
    if why:
        row.error = f"{why}: {_tail(log_path)}"
    scores, problem = grader.scores()
    row.scores.update(scores)
    if problem:
        row.error = row.error or problem
    if jobs > 1:
        row.notes.append(f"{jobs} autograde processes on shares of the class (no parallel mode)")
    return row


def run_otter(p: Prepared, venv: anchors.Venv, jobs: int, work: Path, timeout: float) -> Row:
    row = Row(p.assignment, "otter", jobs, len(p.manifest))
    folder = work / p.assignment / f"otter-j{jobs}"
    grader = anchors.Otter(venv, folder, p.assignment, p.threads)
    log_path = work / p.assignment / f"otter-j{jobs}.log"
    with log_path.open("w") as log:
        assert p.source is not None
        why = grader.build(p.checks, p.source, log)
        if why:
            row.error = f"{why}: {_tail(log_path)}"
            return row
        why, usage = measure.measured(
            lambda: grader.run(p.class_dir, sorted(p.manifest), jobs, timeout, log)
        )
    row.wall_s, row.cpu_s = usage.wall_s, usage.cpu_s
    row.peak_sub_mb, row.peak_total_mb = usage.peak_kernel_mb, usage.peak_total_mb
    if why:
        row.error = f"{why}: {_tail(log_path)}"
    row.scores.update(grader.scores())
    row.notes.append(
        "`otter run` per submission, no container" + (f", {jobs} at a time" if jobs > 1 else "")
    )
    return row


def _tail(path: Path, chars: int = 400) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-chars:]


def run_method(
    method: str,
    jobs: int,
    p: Prepared,
    course: Course,
    venv: anchors.Venv | None,
    work: Path,
    timeout: float,
    extra: list[str],
) -> Row:
    if method.startswith("ours-"):
        return run_ours(p, course, method.removeprefix("ours-"), jobs, work, timeout, extra)
    if method == "floor":
        return run_floor(p, jobs, work, timeout)
    assert venv is not None
    if method == "nbgrader":
        return run_nbgrader(p, venv, jobs, work, timeout, course)
    return run_otter(p, venv, jobs, work, timeout)


# --------------------------------------------------------------------------- availability
def docker_problem() -> str | None:
    try:
        client = docker_sandbox.client()
    except docker_sandbox.DockerUnavailable as exc:
        return f"no Docker daemon answers ({exc})"
    image = docker_sandbox.default_image()
    if not docker_sandbox.image_exists(client, image):
        return f"the image {image} does not exist (build it: autograder image build --offline)"
    return None


def torch_requirement() -> str:
    version = importlib.metadata.version("torch").split("+", 1)[0]
    return f"torch=={version}"


# --------------------------------------------------------------------------- report
def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def anchor_row(rows: list[Row], row: Row, anchor: str) -> tuple[Row | None, bool]:
    """The anchor's row at the same --jobs, else its fastest (second value: a fallback)."""
    same = [
        r
        for r in rows
        if r.method == anchor and r.assignment == row.assignment and r.rate is not None
    ]
    exact = [r for r in same if r.jobs == row.jobs]
    if exact:
        return exact[0], False
    if same:
        return max(same, key=lambda r: r.rate or 0.0), True
    return None, False


def median_row(runs: list[Row]) -> Row:
    """The run of median wall time among repeats of one method and --jobs (a failed run
    wins: its problem is reported), with the others' figures in its notes."""
    failed = [r for r in runs if r.error or r.rate is None]
    if failed or len(runs) == 1:
        return (failed or runs)[0]
    ordered = sorted(runs, key=lambda r: r.wall_s or 0.0)
    row = ordered[(len(ordered) - 1) // 2]
    rates = ", ".join(fmt(r.rate, ".3f") for r in runs)
    row.notes.append(f"median of {len(runs)} runs (subs/s in run order: {rates})")
    if any(r.scores != row.scores for r in runs):
        row.error = "the repeated runs did not give the same scores"
    return row


def performance_report(rows: list[Row]) -> str:
    headers = [
        "assignment",
        "method",
        "jobs",
        "graded",
        "wall s",
        "subs/s",
        "s/sub",
        "cpu s/sub",
        "+s/sub vs floor",
        "peak MB/sub",
        "peak MB all",
        "x nbgrader",
        "x otter",
        "x floor",
    ]
    lines = []
    for row in rows:
        floor, _ = anchor_row(rows, row, "floor")
        overhead = None
        if row.rate and floor is not None and floor.rate and row.method != "floor":
            overhead = 1 / row.rate - 1 / floor.rate
        ratios = []
        for anchor in ANCHORS:
            ref, fallback = anchor_row(rows, row, anchor)
            if row.method == anchor or ref is None or not row.rate or not ref.rate:
                ratios.append("-")
            else:
                ratios.append(f"{row.rate / ref.rate:.2f}" + ("*" if fallback else ""))
        lines.append(
            [
                row.assignment,
                row.method,
                str(row.jobs),
                f"{len(row.scores)}/{row.n}",
                fmt(row.wall_s, ".1f"),
                fmt(row.rate, ".3f"),
                fmt(1 / row.rate if row.rate else None, ".2f"),
                fmt(row.cpu_s / len(row.scores) if row.cpu_s is not None and row.scores else None),
                fmt(overhead, "+.2f"),
                fmt(row.peak_sub_mb, ".0f"),
                fmt(row.peak_total_mb, ".0f"),
                *ratios,
            ]
        )
    return table(headers, lines)


def agreement(rows: list[Row], manifests: dict[str, dict[str, str]]) -> tuple[str, list[str]]:
    """Per-variant score table and the list of disagreements."""
    out, problems = [], []
    for assignment, manifest in manifests.items():
        ran = [r for r in rows if r.assignment == assignment and (r.scores or not r.error)]
        if not ran:
            continue
        base = ran[0]
        variants: dict[str, list[str]] = {}
        for student, variant in manifest.items():
            variants.setdefault(variant, []).append(student)
        lines = []
        for variant, students in variants.items():
            cells = []
            for row in ran:
                values = sorted({_score(row.scores.get(s)) for s in students})
                cells.append("/".join(values))
            lines.append([variant, str(len(students)), *cells])
        out.append(
            f"{assignment}: total auto-graded score per variant (every method, every "
            "student of the variant; a/b = students disagree)"
        )
        out.append(table(["variant", "n", *[r.label for r in ran]], lines))
        for row in ran[1:]:
            for student in manifest:
                a, b = base.scores.get(student), row.scores.get(student)
                if a is None or b is None or abs(a - b) > TOLERANCE:
                    problems.append(
                        f"{assignment} {student} ({manifest[student]}): "
                        f"{base.label} {_score(a)} != {row.label} {_score(b)}"
                    )
        for student in manifest:
            if base.scores.get(student) is None:
                problems.append(f"{assignment} {student}: no score from {base.label}")
    return "\n\n".join(out), problems


def _score(value: float | None) -> str:
    return "missing" if value is None else f"{round(value, 4):g}"


def ratio_text(ratio: float, target: float) -> str:
    """`ratio` with two decimals, or as many more as it takes not to round onto `target`
    from the other side (0.4977 against 0.5 is "0.498", not a "0.50" that is NOT met)."""
    for digits in range(2, 7):
        text = f"{ratio:.{digits}f}"
        if (float(text) >= target) == (ratio >= target):
            return text
    return repr(ratio)


def targets_report(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.method != "ours-local" or row.jobs != 2 or not row.rate:
            continue
        for anchor, target in TARGETS.items():
            ref, fallback = anchor_row(rows, row, anchor)
            if ref is None or not ref.rate:
                lines.append(f"{row.assignment}: ours-local j2 vs {anchor}: no {anchor} row")
                continue
            ratio = row.rate / ref.rate
            verdict = "met" if ratio >= target else "NOT met"
            which = " (its fastest row)" if fallback else " j2"
            lines.append(
                f"{row.assignment}: ours-local j2 / {anchor}{which} = "
                f"{ratio_text(ratio, target)} "
                f"(target >= {target:g}): {verdict}"
            )
            if anchor == "floor" and ref.warmup_s and (whole := ref.end_to_end_rate):
                # Every other method is timed end to end, start-up included; the target
                # above leaves the floor's warm-up out. Both are shown, the target unchanged.
                lines.append(
                    f"{row.assignment}: for comparison, the floor{which} timed end to end like "
                    f"the other methods ({ref.warmup_s:.1f} s warm-up included) did "
                    f"{whole:.1f} subs/s; ours-local j2 / that = {row.rate / whole:.2f}"
                )
    return lines


# --------------------------------------------------------------------------- main
def parse_list(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if allowed is not None:
        for item in items:
            if item not in allowed:
                raise SystemExit(f"unknown method {item!r}; choose from {', '.join(allowed)}")
    return items


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Throughput of this autograder against nbgrader, otter-grader and the "
        "floor, on one generated class."
    )
    parser.add_argument("--n", type=int, default=100, help="submissions per assignment")
    parser.add_argument("--assignments", default="perceptron,backprop")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work folder (class, courses, gradebooks, logs)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=BENCH / ".work",
        help="where run folders go (default bench/.work)",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=BENCH / ".venvs" / "anchors",
        help="the anchors' virtual environment (created once, then reused)",
    )
    parser.add_argument(
        "--torch", default=None, help="torch requirement for the anchors (default: the project's)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per method run (default 600 + 60 per submission)",
    )
    parser.add_argument(
        "--ours-args", default="", help="extra `autograder grade` options, e.g. '--no-warm'"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each method and --jobs, in rounds; the table shows the median run",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()

    methods = parse_list(args.methods, METHODS)
    jobs_list = [int(j) for j in parse_list(args.jobs)]
    if args.n < 1 or args.repeat < 1 or not jobs_list or min(jobs_list) < 1:
        raise SystemExit("--n, --repeat and every --jobs value must be at least 1")
    timeout = args.timeout or 600 + 60 * args.n
    course = Course.at(ROOT)
    # Compiled once, as an install would: where PYTHONDONTWRITEBYTECODE is set, every timed
    # run (and each sandbox) would otherwise compile the grader's modules again.
    compileall.compile_dir(str(ROOT / "autograder"), quiet=1)
    work = args.work / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    say(
        f"benchmark: n={args.n}, jobs {jobs_list}, methods {', '.join(methods)}; work folder {work}"
    )

    skipped: list[str] = []
    unavailable: dict[str, str] = {}
    if "ours-docker" in methods and (why := docker_problem()):
        unavailable["ours-docker"] = why
    if "ours-local" in methods:
        with contextlib.suppress(Exception):
            from autograder.sandbox import LocalSandbox

            for gap in LocalSandbox(mask=(ROOT,)).missing():
                skipped.append(f"ours-local runs with less isolation here: {gap}")
    venv = None
    if {"nbgrader", "otter"} & set(methods):
        venv = anchors.ensure_venv(args.venv, args.torch or torch_requirement(), say)
        for tool in ("nbgrader", "otter"):
            if tool in methods and venv.available.get(tool):
                unavailable[tool] = f"not installable here: {venv.available[tool]}"
        if "otter" in methods and "otter" not in unavailable:
            skipped.append(
                "otter: `otter grade` runs only in Docker containers built from "
                "conda/pip downloads, which cannot build offline; `otter run` (the "
                "same grading, no container) is what is measured"
            )

    rows: list[Row] = []
    manifests: dict[str, dict[str, str]] = {}
    extra = args.ours_args.split()
    for name in parse_list(args.assignments):
        if not (ROOT / "assignments" / name / "assignment.toml").is_file():
            skipped.append(f"{name}: assignments/{name} does not exist here: skipped")
            continue
        if name not in classgen.CLASSES:
            skipped.append(f"{name}: no class variants in bench/classgen.py: skipped")
            continue
        say(f"{name}: generating {args.n} submissions, building the equivalent checks")
        try:
            prepared = prepare(course, name, args.n, work)
        except classgen.ClassError as exc:
            skipped.append(f"{name}: cannot build the class: {exc}")
            continue
        manifests[name] = prepared.manifest
        runs: dict[tuple[str, int], list[Row]] = {}
        # Per --jobs value, the methods run back to back (the floor first, then ours), round
        # after round: rows that are compared are measured minutes apart at most, not the
        # whole benchmark apart, on a machine whose speed drifts.
        for jobs in jobs_list:
            for round_ in range(args.repeat):
                for method in sorted(methods, key=RUN_ORDER.index):
                    label = f"{name} {method} --jobs {jobs}"
                    if args.repeat > 1:
                        label += f" (run {round_ + 1} of {args.repeat})"
                    why = unavailable.get(method)
                    if why is None and method in ANCHORS and prepared.checks_error:
                        why = prepared.checks_error
                    if why is not None:
                        if round_ == 0:
                            runs[method, jobs] = [Row(name, method, jobs, args.n, error=why)]
                            say(f"  {label}: skipped ({why})")
                        continue
                    say(f"  {label} ...")
                    last = work / name / f"{method}-j{jobs}"  # a repeat's folder: the last kept
                    shutil.rmtree(last, ignore_errors=True)
                    last.with_suffix(".log").unlink(missing_ok=True)
                    row = run_method(method, jobs, prepared, course, venv, work, timeout, extra)
                    runs.setdefault((method, jobs), []).append(row)
                    say(
                        f"    {len(row.scores)}/{row.n} graded in {fmt(row.wall_s, '.1f')} s"
                        f" ({fmt(row.rate, '.3f')} submissions/s)"
                        + (f"; PROBLEM: {row.error}" if row.error else "")
                    )
        rows += [median_row(runs[m, j]) for m in methods for j in jobs_list if (m, j) in runs]

    say("")
    say(performance_report(rows))
    say("")
    say(
        "subs/s: graded submissions / wall time (the floor: after its warm-up); s/sub: its "
        "inverse; cpu s/sub: CPU time of every process the method started (not Docker "
        "containers); +s/sub vs floor: s/sub minus the floor's at the same jobs; peak MB/sub: "
        "where one notebook runs (our sandbox's cgroup peak, the nbgrader/otter kernel's RSS, "
        "the floor child's max RSS); peak MB all: largest summed RSS of every process started; "
        "x anchor: ours subs/s over the anchor's at the same jobs (* its fastest row instead)."
    )
    notes = [f"{r.label} ({r.assignment}): {n}" for r in rows for n in r.notes]
    problems_run = [f"{r.label} ({r.assignment}): {r.error}" for r in rows if r.error]
    for title, items in (("not measured / problems", problems_run), ("notes", skipped + notes)):
        if items:
            say(f"\n{title}:")
            for item in items:
                say(f"  - {item}")
    if lines := targets_report(rows):
        say("\ntargets (ours-local at --jobs 2):")
        for line in lines:
            say(f"  - {line}")
    text, problems = agreement(rows, manifests)
    if text:
        say("\n" + text)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))
    if args.keep:
        say(f"\nkept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        say(f"\nSCORES DISAGREE ({len(problems)}):")
        for problem in problems[:50]:
            say(f"  - {problem}")
        return 1
    say("\nscores: every method that ran gave every submission the same total")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
