"""Throughput on Ray against the local backend, on this machine, in one run.

Builds a class of N generated submissions (bench/classgen.py), then grades it with
`autograder grade` on a fresh copy of the assignment each time:

- local --jobs 1 and --jobs 2 (worker processes on this machine);
- Ray, 1 node with 1 CPU (--jobs 1), 1 node with 2 CPUs (--jobs 2), and 2 nodes with 1 CPU
  each (--jobs 2): local clusters started with `ray start` before the run (not timed);
- with --kill, 2 nodes again, the second killed (SIGKILL) after a quarter of the class.

It prints wall time, submissions per second, the ratio to the local backend at the same
--jobs, the wall time Ray adds per submission (start-up included), the graders' start-up,
the median round trip per submission beyond grading it (from the driver's notes), and
whether every run gave every submission the same score (exit status 1 when not).

    python bench/ray_throughput.py [--n 40] [--assignment perceptron] [--kill] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))  # the test suite's local-cluster helper

import classgen  # noqa: E402
import measure  # noqa: E402

from autograder.gradebook import Gradebook  # noqa: E402
from tests.ray.clusters import RayCluster, cli_env, graded_count  # noqa: E402

TOLERANCE = 1e-3


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Run:
    label: str
    backend: str
    jobs: int
    nodes: int = 0
    wall_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    ready_s: float | None = None  # the first Ray grader ready, from the start of the batch
    trip_ms: float | None = None  # median round trip per submission beyond grading it
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rate(self) -> float | None:
        return len(self.scores) / self.wall_s if self.wall_s and self.scores else None


@contextlib.contextmanager
def cluster(nodes: int, cpus: int) -> Iterator[RayCluster]:
    c = RayCluster()
    try:
        c.start_head(cpus)
        for _ in range(nodes - 1):
            c.add_node(cpus)
        yield c
    finally:
        c.stop()


def grade(
    run: Run,
    assignment: str,
    class_dir: Path,
    work: Path,
    n: int,
    extra: list[str],
    kill: RayCluster | None = None,
) -> Run:
    folder = work / run.label.replace(" ", "-")
    for part in ("assignments", "reference_solutions"):
        shutil.copytree(ROOT / part / assignment, folder / part / assignment)
    cmd = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        assignment,
        str(class_dir),
        "--course",
        str(folder),
        "--jobs",
        str(run.jobs),
        *extra,
    ]
    log_path = folder / "grade.log"
    gradebook = folder / "gradebook.db"

    def body() -> int:
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=cli_env(), cwd=folder
            )
            if kill is not None:
                while graded_count(gradebook) < n // 4 and proc.poll() is None:
                    time.sleep(0.1)
                if proc.poll() is None:
                    kill.kill_node(1)
                    run.notes.append(f"node 2 killed after {graded_count(gradebook)} results")
            return proc.wait(timeout=600 + 30 * n)

    code, usage = measure.measured(body)
    run.wall_s = usage.wall_s
    text = log_path.read_text(errors="replace")
    if code not in (0, 1):
        run.error = f"`autograder grade` exited with {code}: {text[-500:]}"
    if found := re.search(r"first ready after ([\d.]+) s", text):
        run.ready_s = float(found.group(1))
    if found := re.search(r"Ray round trip: (\d+) ms", text):
        run.trip_ms = float(found.group(1))
    run.notes += [line.strip() for line in text.splitlines() if "was lost" in line]
    with Gradebook.open(gradebook) as book:
        for item in book.current(assignment):
            run.scores[item.result.student_id] = item.result.score
    return run


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else f"{value:{spec}}"


def report(runs: list[Run], n: int) -> str:
    local = {r.jobs: r for r in runs if r.backend == "local" and r.wall_s}
    headers = [
        "run",
        "jobs",
        "graded",
        "wall s",
        "subs/s",
        "x local",
        "+s/sub",
        "ready s",
        "trip ms",
    ]
    rows = []
    for r in runs:
        base = local.get(r.jobs)
        ratio = r.rate / base.rate if base and base.rate and r.rate else None
        extra = (r.wall_s - base.wall_s) / n if base and r.wall_s and base.wall_s else None
        rows.append(
            [
                r.label,
                str(r.jobs),
                f"{len(r.scores)}/{n}",
                fmt(r.wall_s, ".1f"),
                fmt(r.rate, ".3f"),
                fmt(ratio),
                "-" if r.backend == "local" else fmt(extra, "+.3f"),
                fmt(r.ready_s, ".1f"),
                fmt(r.trip_ms, ".0f"),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def disagreements(runs: list[Run], students: list[str]) -> list[str]:
    problems = []
    reference = runs[0]
    for r in runs[1:]:
        for s in students:
            a, b = reference.scores.get(s), r.scores.get(s)
            if a is None or b is None or abs(a - b) > TOLERANCE:
                problems.append(f"{s}: {reference.label} {a}, {r.label} {b}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Ray backend throughput against local.")
    parser.add_argument("--n", type=int, default=40, help="submissions in the class")
    parser.add_argument("--assignment", default="perceptron")
    parser.add_argument("--sandbox", default="local", help="local or docker")
    parser.add_argument("--kill", action="store_true", help="also: 2 nodes, one killed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--work", type=Path, default=BENCH / ".work")
    args = parser.parse_args()
    if importlib.util.find_spec("ray") is None:
        raise SystemExit("Ray is not installed: pip install 'autograder[ray]'")
    work = args.work / time.strftime("ray-%Y%m%d-%H%M%S")
    class_dir = work / "class"
    manifest = classgen.generate(ROOT, args.assignment, args.n, class_dir)
    say(f"ray benchmark: {args.assignment}, n={args.n}, sandbox {args.sandbox}; work {work}")
    common = ["--sandbox", args.sandbox]
    runs: list[Run] = []

    def go(run: Run, extra: list[str], kill: RayCluster | None = None) -> None:
        say(f"  {run.label} --jobs {run.jobs} ...")
        grade(run, args.assignment, class_dir, work, args.n, common + extra, kill)
        runs.append(run)
        say(
            f"    {len(run.scores)}/{args.n} in {fmt(run.wall_s, '.1f')} s"
            + (f"; PROBLEM: {run.error}" if run.error else "")
        )

    go(Run("local j1", "local", 1), [])
    go(Run("local j2", "local", 2), [])
    for label, nodes, cpus, jobs in (
        ("ray 1 node", 1, 1, 1),
        ("ray 1 node 2 cpus", 1, 2, 2),
        ("ray 2 nodes", 2, 1, 2),
    ):
        with cluster(nodes, cpus) as c:
            go(Run(label, "ray", jobs, nodes), ["--backend", "ray", "--address", c.address])
    if args.kill:
        with cluster(2, 1) as c:
            run = Run("ray 2 nodes, 1 killed", "ray", 2, 2)
            go(run, ["--backend", "ray", "--address", c.address], kill=c)

    say("")
    say(report(runs, args.n))
    say(
        "\nsubs/s: graded / wall time of `autograder grade` (start-up included; the cluster "
        "is started before); x local: over local at the same --jobs; +s/sub: wall seconds "
        "Ray adds per submission over local at the same --jobs (start-up spread over the "
        "class); ready s: first Ray grader ready after the batch began; trip ms: median time "
        "per submission between sending it and its result, beyond the grading itself."
    )
    plain = next((r for r in runs if r.label == "ray 2 nodes"), None)
    for r in runs:
        if r.label.endswith("killed") and plain and r.wall_s and plain.wall_s:
            r.notes.append(
                f"the lost node cost {r.wall_s - plain.wall_s:+.1f} s of wall time against "
                "the same run without the kill"
            )
    notes = [f"{r.label}: {note}" for r in runs for note in r.notes]
    if notes:
        say("\nnotes:\n" + "\n".join(f"  - {n}" for n in notes))
    problems = disagreements(runs, sorted(manifest))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        say(f"\nSCORES DISAGREE ({len(problems)}):\n" + "\n".join(problems[:50]))
        return 1
    say("\nscores: every run gave every submission the same total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
