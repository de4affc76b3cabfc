"""Black-box red-team tests: exploit notebooks graded through the CLI, in both sandboxes.

Each exploit (see ``exploits.py``) is the plain wrong notebook plus a trick. All of them are
graded in ONE batch per sandbox, next to a correct control, the plain wrong baseline and the
untouched template; then the CSV is exported and the reports written, and the host is checked.
The tests assert that

- no exploit scores more than the wrong baseline on any question, and the control in the same
  batch gets full marks on every automatically graded question;
- the CSV parses into exactly one row per submission, with no spreadsheet formula in any cell;
- the HTML reports carry no live markup from student text, the terminal summary no escape
  sequence from it;
- no file the exploits tried to leave on the host exists, no process they spawned is alive,
  no container of the batch is left, the grader's own temporary folder is empty;
- what a notebook can see of the machine holds nothing of the course and no grader secret.

Cross-submission attacks (a notebook attacking the students graded after it in the same
worker: its sandbox's init, the warm pool's zygote, IPC objects, leftovers) and attacks
through student file names run in small batches of their own.

Skips: the local sandbox needs bubblewrap, the Docker one a running engine and the sandbox
image. With ``AUTOGRADER_REQUIRE_ISOLATION=1`` (local) or ``AUTOGRADER_REQUIRE_DOCKER=1``
(docker) a missing sandbox fails instead.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import exploits as ex

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ASSIGNMENT = "perceptron"
MARKER = "rtbb" + uuid.uuid4().hex[:11]  # 15 characters: fits in a process's comm
SECRET_ENV = "AG_REDTEAM_SECRET"
AUTO = ("predict", "train", "and_weights", "linear_limit", "xor_single_layer")
QUESTIONS = (*AUTO, "xor_explain")
COLUMNS = ("student_id", *QUESTIONS, "score", "max_score", "status")
IMAGE = "autograder-sandbox:latest"
NOTEBOOK_TIMEOUT_S = "40"
GRADE_TIMEOUT_S = 3600
# Sandbox variants and their `grade` options: every optimisation is on in "local" (the
# default), "local-cold" starts a fresh sandbox per submission.
VARIANTS = {
    "local": ["--sandbox", "local"],
    "local-cold": ["--sandbox", "local", "--no-warm"],
    "docker": ["--sandbox", "docker"],
}
SANDBOXES = tuple(VARIANTS)

# Names other processes on a shared machine put in /tmp or $HOME while a batch runs (the
# grader's own temporary files go to a TMPDIR of the test's; AG_REDTEAM_HOST_NOISE adds a regex).
HOST_NOISE = re.compile(
    r"^(pytest-of-|tmp|autograder-|grade-batch-|\.)|\.log$"
    + ("|" + os.environ["AG_REDTEAM_HOST_NOISE"] if os.environ.get("AG_REDTEAM_HOST_NOISE") else "")
)
# The before/after listing of /tmp and $HOME only means something on a machine where nothing
# else runs: checked in CI (AUTOGRADER_REQUIRE_ISOLATION=1) or with AG_REDTEAM_STRICT_HOST=1.
# Files named with MARKER and the grader's TMPDIR are checked everywhere.
STRICT_HOST = "1" in (
    os.environ.get("AUTOGRADER_REQUIRE_ISOLATION"),
    os.environ.get("AG_REDTEAM_STRICT_HOST"),
)
FORMULA = re.compile(r"^[=+\-@\t\r]")
LIVE_MARKUP = re.compile(
    r"<\s*(script|iframe|svg|object|embed|form|base|video|audio|math|link)\b"
    r"|<[^>]*\son[a-z]+\s*="
    r"|(href|src)\s*=\s*[\"']?\s*javascript:",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- sandboxes


def _local_unavailable() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    probe = subprocess.run(
        ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode:
        return "bubblewrap cannot create namespaces here: " + probe.stderr.decode()[:200]
    return None


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (apt-get install docker.io)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if info.returncode:
        return "`docker info` failed, no engine answers: " + info.stderr.decode()[-200:]
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60)
    if image.returncode:
        return f"the sandbox image {IMAGE} is not built (autograder image build --offline)"
    return None


def require_sandbox(kind: str) -> None:
    kind = kind.split("-")[0]
    if kind == "docker":
        reason, env = _docker_unavailable(), "AUTOGRADER_REQUIRE_DOCKER"
    else:
        reason, env = _local_unavailable(), "AUTOGRADER_REQUIRE_ISOLATION"
    if reason:
        if os.environ.get(env) == "1":
            pytest.fail(f"{env}=1 but the {kind} sandbox is unusable: {reason}")
        pytest.skip(f"{kind} sandbox unusable: {reason}")


# --------------------------------------------------------------------------- host state


def _listing(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


def _marker_paths(roots: list[Path], skip: list[Path], depth: int = 4) -> list[str]:
    """Paths under roots whose name holds MARKER (skip: our own folders)."""
    found: list[str] = []
    skip_s = [str(s) for s in skip]

    def walk(p: Path, d: int) -> None:
        try:
            entries = list(os.scandir(p))
        except OSError:
            return
        for e in entries:
            if any(e.path == s or e.path.startswith(s + os.sep) for s in skip_s):
                continue
            if MARKER in e.name:
                found.append(e.path)
            if d > 0 and e.is_dir(follow_symlinks=False):
                walk(Path(e.path), d - 1)

    for r in roots:
        walk(r, depth)
    return found


def _marker_processes() -> list[str]:
    """Live processes whose argv or comm holds MARKER."""
    alive = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
            comm = Path(f"/proc/{p}/comm").read_bytes()
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (MARKER.encode() in cmd or MARKER[:15].encode() in comm) and state != "Z":
            argv = cmd.replace(b"\0", b" ")[:120]
            alive.append(f"{p} {state} {argv!r} {comm!r}")
    return alive


def _leftover_containers(grader_pid: int) -> list[str]:
    """Containers the batch's grader (labelled with its pid) left behind."""
    if shutil.which("docker") is None:
        return []
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=io.autograder.sandbox"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()
    left = []
    for cid in ids:
        owner = subprocess.run(
            ["docker", "inspect", "--format", '{{index .Config.Labels "io.autograder.owner"}}',
             cid],
            capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        if owner.endswith(f":{grader_pid}"):
            left.append(f"{cid} {owner}")
    return left


# --------------------------------------------------------------------------- batches


@dataclass
class Batch:
    sandbox: str
    root: Path
    course: Path
    grader_tmp: Path
    returncode: int
    export_rc: int
    report_rc: int
    output: str
    grader_pid: int
    csv_text: str
    rows: list[dict[str, str]]
    reports: Path
    new_host_entries: list[str] = field(default_factory=list)
    marker_files: list[str] = field(default_factory=list)
    marker_processes: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def row(self, student: str) -> dict[str, str]:
        rows = [r for r in self.rows if r["student_id"] == student]
        assert len(rows) == 1, f"{len(rows)} CSV rows for {student!r}:\n{self.csv_text}"
        return rows[0]

    def report_md(self, student: str) -> str:
        path = self.reports / f"{student}.md"
        assert path.is_file(), f"no report {path.name}"
        return path.read_text(encoding="utf-8", errors="replace")

    def explain(self) -> str:
        return f"grade exit {self.returncode}; output of grade, export, report:\n" + (
            self.output[-6000:])


def _cli(args: list[str], env: dict[str, str], timeout: int = GRADE_TIMEOUT_S):
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"`autograder {args[0]}` ran over {timeout} s:\n{out.decode()[-4000:]}")
    return proc.pid, proc.returncode, out.decode("utf-8", "replace")


def make_course(dest: Path) -> Path:
    for part in ("assignments", "reference_solutions"):
        shutil.copytree(REPO / part / ASSIGNMENT, dest / part / ASSIGNMENT)
    return dest


def run_batch(
    root: Path,
    sandbox: str,
    populate: Callable[[Path], list[Path]],
    jobs: int = 2,
) -> Batch:
    """Grade what populate(folder) writes (it returns the PATHs for `grade`), export, report."""
    course = make_course(root / "course")
    grader_tmp = root / "grader-tmp"
    grader_tmp.mkdir()
    paths = populate(root / "subs")
    env = dict(
        os.environ,
        TMPDIR=str(grader_tmp),
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        **{SECRET_ENV: MARKER + "-secret"},
    )
    home = Path.home()
    before_tmp, before_home = _listing(Path("/tmp")), _listing(home)
    grader_pid, rc, output = _cli(
        ["grade", ASSIGNMENT, *map(str, paths), "--course", str(course), *VARIANTS[sandbox],
         "--jobs", str(jobs), "--timeout", NOTEBOOK_TIMEOUT_S],
        env,
    )
    csv_path = root / "grades.csv"
    _, erc, eout = _cli(["export", ASSIGNMENT, "--course", str(course), "--out", str(csv_path)],
                        env, timeout=600)
    _, rrc, rout = _cli(["report", ASSIGNMENT, "--course", str(course)], env, timeout=600)
    output += f"\n[export exit {erc}]\n{eout}\n[report exit {rrc}]\n{rout}"
    time.sleep(1.0)  # let the kernel finish reaping what the grader killed
    csv_text = csv_path.read_text(encoding="utf-8") if csv_path.is_file() else ""
    batch = Batch(
        sandbox=sandbox,
        root=root,
        course=course,
        grader_tmp=grader_tmp,
        returncode=rc,
        export_rc=erc,
        report_rc=rrc,
        output=output,
        grader_pid=grader_pid,
        csv_text=csv_text,
        rows=list(csv.DictReader(io.StringIO(csv_text, newline=""))),
        reports=course / "reports" / ASSIGNMENT,
    )
    batch.new_host_entries = sorted(
        f"/tmp/{n}" for n in _listing(Path("/tmp")) - before_tmp
        if not HOST_NOISE.match(n) and not str(root).startswith(f"/tmp/{n}/")
    ) + sorted(f"{home}/{n}" for n in _listing(home) - before_home if not HOST_NOISE.match(n))
    # the notebooks themselves (subs) and the reports (named after student ids) hold MARKER
    batch.marker_files = _marker_paths(
        [Path("/tmp"), home, Path("/dev/shm"), Path("/dev/mqueue"), Path("/var/tmp"), course],
        skip=[root / "subs", course / "reports"],
    )
    batch.marker_processes = _marker_processes()
    batch.containers = _leftover_containers(grader_pid) if sandbox == "docker" else []
    return batch


def _write_nb(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_bytes(ex.with_marker(data, MARKER))
    return path


def _reference_notebook() -> str:
    refs = sorted((REPO / "reference_solutions" / ASSIGNMENT).glob("*.ipynb"))
    return refs[0].name if refs else "solution.ipynb"


def _link_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _zips(folder: Path) -> tuple[Path, list[Path]]:
    """LMS-style zips: a plain one, and one per trick (zip-slip, absolute path, a symlink to
    the reference solution, a bomb). A trick zip may be refused as a whole or entry by entry."""
    folder.mkdir(parents=True, exist_ok=True)
    wrong = ex.notebook_bytes(ex.WRONG)
    plain = folder / "zip_plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("z_inzip.ipynb", wrong)
    tricks = []
    for name, entries in {
        "zip_slip": [(f"../../{MARKER}_zipslip.ipynb", wrong)],
        "zip_abs": [(f"/tmp/{MARKER}_zipabs.ipynb", wrong)],
        "zip_link": [
            (_link_info("z_symlink.ipynb"),
             f"../../../reference_solutions/{ASSIGNMENT}/{_reference_notebook()}"),
            (_link_info(f"{MARKER}_dirlink"), "/tmp"),
            (f"{MARKER}_dirlink/z_through_link.ipynb", wrong),
        ],
    }.items():
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as z:
            for info, data in entries:
                z.writestr(info, data)
        tricks.append(path)
    bomb = folder / "zip_bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("z_bomb.ipynb")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            f.write(b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "x": "')
            for _ in range(2048):
                f.write(b" " * 2**20)
            f.write(b'"}')
    tricks.append(bomb)
    return plain, tricks


# rows a trick zip may give: one error row for the zip, or one per entry
TRICK_ROWS_MAX = 1 + 1 + 3 + 1
BASE_NAMES = ("control", "wrong", "stub")


def _populate_main(folder: Path) -> list[Path]:
    _write_nb(folder, "control", ex.notebook_bytes(ex.CONTROL))
    _write_nb(folder, "wrong", ex.notebook_bytes(ex.WRONG))
    template = REPO / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    _write_nb(folder, "stub", template.read_bytes())
    for name, data in ex.catalogue().items():
        _write_nb(folder, name, data)
    for name in ex.ODD_NAMES:
        _write_nb(folder, name, ex.notebook_bytes(ex.WRONG))
    plain, tricks = _zips(folder.parent / "zips")
    return [folder, plain, *tricks]


EXPLOITS = (*ex.catalogue(), "z_inzip")
KNOWN = (*BASE_NAMES, *EXPLOITS)


@pytest.fixture(scope="module", params=SANDBOXES)
def batch(request, tmp_path_factory) -> Batch:
    require_sandbox(request.param)
    root = tmp_path_factory.mktemp(f"blackbox-{request.param}")
    return run_batch(root, request.param, _populate_main)


def _score(value: str | None) -> float:
    return float(value) if value not in (None, "") else 0.0


# --------------------------------------------------------------------------- main batch


def test_grader_survives_the_batch(batch):
    assert batch.returncode in (0, 1), batch.explain()
    assert batch.export_rc == 0, batch.explain()
    assert batch.report_rc == 0, batch.explain()
    assert "Traceback" not in batch.output, batch.explain()


def _template_points() -> dict[str, float]:
    """Points per question, from the table in the student template ("What is graded")."""
    nb = json.loads((REPO / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    points = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for m in re.finditer(r"^\|\s*`(\w+)`\s*\|.*\|\s*(\d+(?:\.\d+)?)\s*\|\s*$", text, re.M):
                points[m.group(1)] = float(m.group(2))
    return points


def full_marks(row: dict[str, str]) -> dict[str, tuple[str, float]]:
    """The automatically graded questions on which row falls short of full marks."""
    points = _template_points()
    return {q: (row[q], points.get(q, 0.0)) for q in AUTO
            if _score(row[q]) <= 0 or (q in points and _score(row[q]) < points[q])}


def test_control_gets_full_marks(batch):
    control = batch.row("control")
    assert control["status"] in ("graded", "pending"), batch.explain()
    short = full_marks(control)
    assert not short, f"control short of full marks on {short}: {control}\n{batch.explain()}"
    stub = batch.row("stub")
    assert all(_score(stub[q]) == 0 for q in AUTO), stub


@pytest.mark.parametrize("exploit", EXPLOITS)
def test_exploit_gains_nothing(batch, exploit):
    baseline = batch.row("wrong")
    row = batch.row(exploit)
    gains = {q: (row[q], baseline[q]) for q in AUTO if _score(row[q]) > _score(baseline[q])}
    assert not gains, f"{exploit} beats the wrong baseline on {gains}: {row}"
    assert row["xor_explain"] in ("", "0", "0.0"), f"free text scored automatically: {row}"
    assert _score(row["score"]) <= _score(baseline["score"]), (row, baseline)


def test_csv_has_exactly_one_row_per_submission(batch):
    reader = csv.DictReader(io.StringIO(batch.csv_text, newline=""))
    assert tuple(reader.fieldnames or ())[: len(COLUMNS)] == COLUMNS, reader.fieldnames
    rows = list(reader)
    for r in rows:
        assert None not in r, f"row with extra fields: {r}"
        assert all(v is not None for v in r.values()), f"row with missing fields: {r}"
        for col in (*QUESTIONS, "score", "max_score"):
            if r[col] != "":
                float(r[col])
    ids = [r["student_id"] for r in rows]
    assert len(ids) == len(set(ids)), f"duplicate rows: {sorted(ids)}"
    for name in KNOWN:
        assert ids.count(name) == 1, f"{name!r} has {ids.count(name)} rows"
    others = [r for r in rows if r["student_id"] not in KNOWN]
    # one row per odd file name, and what the trick zips give
    assert len(ex.ODD_NAMES) <= len(others) <= len(ex.ODD_NAMES) + TRICK_ROWS_MAX, ids
    baseline = batch.row("wrong")
    for r in others:
        assert all(_score(r[q]) <= _score(baseline[q]) for q in AUTO), r


def test_csv_has_no_spreadsheet_formula(batch):
    for r in csv.reader(io.StringIO(batch.csv_text, newline="")):
        for cell in r:
            if FORMULA.match(cell):
                try:
                    float(cell)
                except ValueError:
                    pytest.fail(f"CSV cell {cell!r} would run as a formula: {r}")


def test_html_reports_carry_no_live_student_markup(batch):
    pages = sorted(batch.reports.glob("*.html"))
    assert len(pages) >= len(KNOWN), [p.name for p in pages]
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        hit = LIVE_MARKUP.search(html)
        assert hit is None, f"{page.name}: {html[max(0, hit.start() - 200):hit.end() + 200]}"
        for img in re.finditer(r"<\s*img\b[^>]*>", html, re.IGNORECASE):  # the charts only
            assert re.match(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]*"', img[0]), img[0]
    for name in KNOWN:
        assert (batch.reports / f"{name}.html").is_file(), name


def test_terminal_summary_has_no_escape_sequences(batch):
    assert "\x1b" not in batch.output, repr(batch.output[batch.output.find("\x1b") - 80:][:200])
    assert "\x07" not in batch.output


def test_no_trace_on_the_host(batch):
    assert not batch.marker_files, f"files left by exploits: {batch.marker_files}"
    left = sorted(p.name for p in batch.grader_tmp.iterdir())
    assert not left, f"the grader left {left} in its TMPDIR"
    if STRICT_HOST:
        assert not batch.new_host_entries, f"new in /tmp or $HOME: {batch.new_host_entries}"
    else:
        print("new in /tmp or $HOME during the batch (not checked on a shared machine):",
              batch.new_host_entries)


def test_no_process_survives(batch):
    assert not batch.marker_processes, f"processes alive after grading: {batch.marker_processes}"
    assert not batch.containers, f"containers left: {batch.containers}"


def test_snoop_sees_nothing_of_the_course(batch):
    md = batch.report_md("x_snoop")
    found = re.search(r"SNOOP<(.*?)>SNOOP", md, re.DOTALL)
    assert found, "the snooping notebook's answer is not in its report"
    seen = json.loads(found.group(1))
    assert seen == {"paths": [], "connected": [], "secret": []}, seen


# --------------------------------------------------------------------------- cross-submission

def _cross_params():
    for sandbox in SANDBOXES:
        for attack in ex.CROSS_ATTACKS:
            yield pytest.param(sandbox, attack, id=f"{sandbox}-{attack}")


@pytest.mark.parametrize(("sandbox", "attack"), list(_cross_params()))
def test_attack_on_later_submissions(sandbox, attack, tmp_path):
    require_sandbox(sandbox)

    def populate(folder: Path) -> list[Path]:
        # graded in name order with one worker: the attacker first, then the victims
        _write_nb(folder, "a_attacker", ex.notebook_bytes(ex.WRONG, ex.CROSS_ATTACKS[attack]))
        for victim in ("b_victim", "c_victim"):
            _write_nb(folder, victim, ex.notebook_bytes(ex.CONTROL, ex.VICTIM_PROBE))
        return [folder]

    b = run_batch(tmp_path, sandbox, populate, jobs=1)
    assert "Traceback" not in b.output, b.explain()
    assert b.returncode in (0, 1) and (b.export_rc, b.report_rc) == (0, 0), b.explain()
    b.row("a_attacker")
    for victim in ("b_victim", "c_victim"):
        row = b.row(victim)
        assert row["status"] in ("graded", "pending"), (row, b.explain())
        short = full_marks(row)
        assert not short, f"{victim} short of full marks on {short} after {attack}: {row}"
        seen = re.search(r"CROSS<(.*?)>CROSS", b.report_md(victim), re.DOTALL)
        assert seen and json.loads(seen.group(1)) == [], f"{victim} saw {seen and seen[1]}"
    assert not b.marker_processes, b.marker_processes
    assert not b.marker_files, b.marker_files
    assert not b.containers, b.containers


# --------------------------------------------------------------------------- file names


# File names are read before any sandbox starts: one variant is enough.
@pytest.mark.parametrize("sandbox", ["local"])
def test_invalid_id_cannot_displace_a_valid_student(sandbox, tmp_path):
    require_sandbox(sandbox)

    def populate(folder: Path) -> list[Path]:
        _write_nb(folder, "-victim", ex.notebook_bytes(ex.WRONG))
        _write_nb(folder, "victim", ex.notebook_bytes(ex.CONTROL))
        return [folder]

    b = run_batch(tmp_path, sandbox, populate)
    victim = b.row("victim")
    assert victim["status"] in ("graded", "pending"), (victim, b.csv_text)
    assert not full_marks(victim), victim


@pytest.mark.parametrize("sandbox", ["local"])
def test_non_utf8_file_name_does_not_abort_the_batch(sandbox, tmp_path):
    require_sandbox(sandbox)

    def populate(folder: Path) -> list[Path]:
        inner = folder / "mallory"
        inner.mkdir(parents=True)
        (Path(os.fsdecode(os.fsencode(inner) + b"/r\xe9sum\xe9.ipynb"))).write_bytes(
            ex.notebook_bytes(ex.WRONG))
        _write_nb(folder, "victim", ex.notebook_bytes(ex.CONTROL))
        _write_nb(folder, "zed", ex.notebook_bytes(ex.CONTROL))
        return [folder]

    b = run_batch(tmp_path, sandbox, populate, jobs=1)
    assert "Traceback" not in b.output, b.explain()
    for student in ("victim", "zed"):
        assert not full_marks(b.row(student)), b.csv_text
    assert b.row("mallory")["status"] in ("graded", "pending", "error"), b.csv_text


@pytest.mark.parametrize("sandbox", ["local"])
def test_file_name_escape_sequences_do_not_reach_the_terminal(sandbox, tmp_path):
    require_sandbox(sandbox)

    def populate(folder: Path) -> list[Path]:
        clip = "\x1b]52;c;" + "ZWNobyBwd25lZA==" + "\x1b\\n_clip"  # OSC 52, ST-terminated
        _write_nb(folder, clip, ex.notebook_bytes(ex.WRONG))
        inner = folder / "mallory"
        inner.mkdir()
        (inner / "\x1b[2J\x1b[3Jn_clear.ipynb").write_text("{not json")
        _write_nb(folder, "victim", ex.notebook_bytes(ex.CONTROL))
        return [folder]

    b = run_batch(tmp_path, sandbox, populate)
    assert not full_marks(b.row("victim")), b.csv_text
    assert "\x1b" not in b.output, repr(b.output[b.output.find("\x1b") - 80:][:200])
