"""GPU check for a machine with an NVIDIA GPU: run it there, read what it prints.

1. A CUDA submission graded through the real grader (local sandbox, GPU 0 visible):
   student code moves tensors to `cuda`, results cross the boundary as CPU tensors.
2. A sandbox started without a GPU sees none.
3. K sandboxes share one GPU at once, each with a cooperative memory cap of 1/K
   (torch.cuda.set_per_process_memory_fraction); prints wall times and memory seen.
4. The warm pool (the default of `grade`) on the GPU: a zygote that imported torch but
   never touched CUDA forks a runtime per submission, each initialising CUDA itself, with
   the 1/2 memory share applied after the fork; three submissions in a row.

    python bench/gpu/check_gpu.py [--k 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from autograder.course import Course
from autograder.grader.proxy import StudentCodeError
from autograder.grader.run import Grader
from autograder.grader.session import StudentSession
from autograder.notebook import read_notebook
from autograder.sandbox import LocalSandbox
from autograder.sandbox.local import bwrap_works, cgroups_work
from autograder.sandbox.warm import WarmSandbox

SPEC = """\
name = "cuda_demo"
notebook = "cuda_demo.ipynb"
[limits]
notebook_timeout = 120
call_timeout = 60
test_timeout = 120
memory_mb = 16384
[[questions]]
id = "matmul"
kind = "code"
points = 2
tests = ["test_matmul*"]
[[questions]]
id = "device"
kind = "code"
points = 1
tests = ["test_device*"]
"""

TESTS = '''\
import torch
from autograder.testing import assert_close

def test_matmul(student, reference):
    """a @ b computed on the GPU equals the CPU reference"""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 128, generator=g), torch.randn(128, 64, generator=g)
    got = student.gpu_matmul(a, b)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
    assert_close(got, reference.gpu_matmul(a, b), rtol=1e-3, atol=1e-3)

def test_device(student):
    """the sandbox sees a CUDA device"""
    assert "cuda" in student.device_report()["device"]
'''

STUDENT = """\
import torch

def gpu_matmul(a, b):
    return (a.to("cuda") @ b.to("cuda"))  # left on the GPU on purpose: the runtime moves it

def device_report():
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")  # 64 MiB
    props = torch.cuda.get_device_properties(0)
    try:  # 40% of the card: refused when the sandbox's cooperative cap is below that
        big = torch.empty(int(props.total_memory * 0.4), dtype=torch.uint8, device="cuda")
        del big
        capped = False
    except torch.cuda.OutOfMemoryError:
        capped = True
    return {
        "capped_at_40pct": capped,
        "device": str(x.device),
        "name": props.name,
        "total_mb": props.total_memory / 2**20,
        "allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
        "visible": torch.cuda.device_count(),
    }
"""

REFERENCE = "import torch\n\ndef gpu_matmul(a, b):\n    return a @ b\n"


def notebook(source: str) -> str:
    cell = {
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": source,
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def make_course(root: Path) -> Course:
    a = root / "assignments" / "cuda_demo"
    (a / "hidden_tests").mkdir(parents=True)
    (a / "assignment.toml").write_text(SPEC)
    (a / "cuda_demo.ipynb").write_text(
        notebook("def gpu_matmul(a, b):\n    raise NotImplementedError\n")
    )
    (a / "hidden_tests" / "test_cuda.py").write_text(TESTS)
    ref = root / "reference_solutions" / "cuda_demo"
    ref.mkdir(parents=True)
    (ref / "solution.py").write_text(REFERENCE)
    (root / "student.ipynb").write_text(notebook(STUDENT))
    return Course.at(root)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=4, help="sandboxes sharing the GPU")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, cuda available on the host: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print(f"host device: {torch.cuda.get_device_name(0)}")
    print(f"bubblewrap isolation: {bwrap_works()}, cgroups: {cgroups_work()}")
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp))
        assignment = course.assignment("cuda_demo")
        sandbox = LocalSandbox(mask=(course.root,))
        notebook_path = course.root / "student.ipynb"

        grader = Grader.hidden(assignment, sandbox, gpu="0")
        start = time.monotonic()
        result = grader.grade("cuda_student", notebook_path, "h")
        print(
            f"\n[1] CUDA submission, GPU 0: status={result.status.value} "
            f"score={result.score}/{result.max_score} in {time.monotonic() - start:.2f} s"
        )
        for t in result.tests:
            print(f"    {t.test_id}: {t.outcome.value} {t.message}")
        print(f"    device_report={device_report(grader, notebook_path)}")
        for c in result.cells:
            print(f"    cell {c.index}: {c.error}")
        if result.stderr.strip():
            print("    stderr:", result.stderr.strip()[-800:])

        no_gpu = Grader.hidden(assignment, sandbox, gpu=None).grade("no_gpu", notebook_path, "h")
        print(
            f"\n[2] same submission, no GPU given: score={no_gpu.score}/{no_gpu.max_score} "
            f"(expected 0: the sandbox sees no CUDA device)"
        )
        for t in no_gpu.tests:
            print(f"    {t.test_id}: {t.outcome.value} {t.message[:160]}")

        print(f"\n[3] {args.k} sandboxes sharing GPU 0, memory fraction 1/{args.k} each")
        context = multiprocessing.get_context("spawn")
        start = time.monotonic()
        with ProcessPoolExecutor(args.k, mp_context=context) as pool:
            jobs = [pool.submit(grade_shared, str(course.root), i, args.k) for i in range(args.k)]
            print("\n".join(sorted(j.result() for j in jobs)))
        print(f"    all {args.k} done in {time.monotonic() - start:.2f} s wall")

        print("\n[4] warm pool on GPU 0 (zygote + fork per submission), memory share 1/2")
        warm = WarmSandbox(LocalSandbox(mask=(course.root,)))
        warm_grader = Grader.hidden(assignment, warm, gpu="0", gpu_memory_fraction=0.5)
        for i in range(3):
            t0 = time.monotonic()
            r = warm_grader.grade(f"warm{i}", notebook_path, "h")
            failed = [
                f"{t.test_id}: {t.message[:160]}" for t in r.tests if t.outcome.value != "passed"
            ]
            print(
                f"    submission {i}: {r.score}/{r.max_score} {r.status.value} "
                f"in {time.monotonic() - t0:.2f} s {failed or ''}"
            )
            for c in r.cells:
                print(f"      cell {c.index}: {c.error}")
        print(f"    device_report={device_report(warm_grader, notebook_path)}")
        warm.close()


def device_report(grader: Grader, path: Path) -> object:
    """What the student's code sees of the GPU, read through a session of its own."""
    session = StudentSession(
        grader.sandbox,
        read_notebook(path).runnable(),
        grader.config,
        grader.assignment.spec.limits,
        0,
    )
    try:
        return session.get("device_report")()
    except StudentCodeError as exc:
        return f"unavailable: {exc}"
    finally:
        session.close()


def grade_shared(root: str, i: int, k: int) -> str:
    """One of K graders (its own process: pytest runs one session per process)."""
    course = Course.at(Path(root))
    grader = Grader.hidden(
        course.assignment("cuda_demo"), LocalSandbox(mask=(course.root,)), gpu="0"
    )
    grader.config = replace(grader.config, gpu_memory_fraction=1 / k)
    t0 = time.monotonic()
    r = grader.grade(f"s{i}", course.root / "student.ipynb", "h")
    seen = f" device_report={device_report(grader, course.root / 'student.ipynb')}"
    for t in r.tests:
        if t.outcome.value != "passed":
            seen += f" [{t.test_id}: {t.message[:120]}]"
    return (
        f"    sandbox {i}: {r.score}/{r.max_score} {r.status.value} "
        f"in {time.monotonic() - t0:.2f} s{seen}"
    )


if __name__ == "__main__":
    main()
