"""The `image build` verb: the Docker sandbox image, built with no container registry.

Steps (each skipped when its output already exists): a Debian base made with
debootstrap and `docker import`ed; the Python wheels students may use, downloaded
from the package index into a cache; `docker build --network none` of
docker/Dockerfile.offline with those wheels and the student runtime. The image tag
is a digest of the inputs, so an unchanged tree rebuilds nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import autograder.runtime as runtime_package
from autograder.errors import AutograderError

BASE_IMAGE = "autograder-base:bookworm"
SUITE = "bookworm"
PYTHON_TAG = (3, 11)  # bookworm's python3
DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"

Log = Callable[[str], None]


class ImageError(AutograderError):
    """The sandbox image could not be built."""


def _run(args: list[str], log: Log, **kwargs: object) -> None:
    log("$ " + " ".join(args[:6]) + (" ..." if len(args) > 6 else ""))
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise ImageError(
            f"`{' '.join(args[:4])} ...` failed:\n{(done.stderr or done.stdout)[-3000:]}"
        )


def inputs_digest(docker_dir: Path = DOCKER_DIR) -> str:
    """A digest of everything that goes into the image."""
    digest = hashlib.sha256()
    runtime_dir = Path(runtime_package.__file__).parent
    files = [
        docker_dir / "Dockerfile.offline",
        docker_dir / "requirements.txt",
        *sorted(runtime_dir.glob("*.py")),
    ]
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap must reach the same one)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "debian" in line and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            match = re.match(r"deb\s+(?:\[[^]]*]\s+)?(\S+)\s+\S+", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    raise ImageError("no Debian mirror found in /etc/apt; pass --mirror URL")


def image_exists(name: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return done.returncode == 0


def build_base(workdir: Path, mirror: str | None, log: Log) -> None:
    if image_exists(BASE_IMAGE):
        log(f"base image {BASE_IMAGE} exists")
        return
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    rootfs = workdir / "rootfs"
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv",
            SUITE,
            str(rootfs),
            mirror or debian_mirror(),
        ],
        log,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    _run(["docker", "import", "-", BASE_IMAGE], log, stdin=tar.stdout)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


def download_wheels(dest: Path, log: Log, docker_dir: Path = DOCKER_DIR) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--disable-pip-version-check",
        "-r",
        str(docker_dir / "requirements.txt"),
        "-d",
        str(dest),
    ]
    if sys.version_info[:2] != PYTHON_TAG:
        major, minor = PYTHON_TAG
        args += [
            "--only-binary=:all:",
            "--python-version",
            f"{major}.{minor}",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
        ]
    _run(args, log)
    shutil.copy(docker_dir / "requirements.txt", dest / "requirements.txt")


def build_offline(
    cache: Path, *, force: bool = False, mirror: str | None = None, log: Log = print
) -> str:
    """Build (or find) the sandbox image; returns its tag, also tagged `latest`."""
    if shutil.which("docker") is None:
        raise ImageError("the docker command is not installed (apt-get install docker.io)")
    if not (DOCKER_DIR / "Dockerfile.offline").is_file():
        raise ImageError(f"{DOCKER_DIR}: missing; build the image from a source checkout")
    tag = f"autograder-sandbox:{inputs_digest()}"
    if image_exists(tag) and not force:
        _run(["docker", "tag", tag, "autograder-sandbox:latest"], log)
        log(f"{tag} is up to date")
        return tag
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autograder-image-", dir=cache) as tmp:
        work = Path(tmp)
        build_base(work, mirror, log)
        download_wheels(cache / "wheels", log)
        context = work / "context"
        shutil.copytree(cache / "wheels", context / "wheels")
        shutil.copytree(
            Path(runtime_package.__file__).parent,
            context / "runtime",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copy(DOCKER_DIR / "Dockerfile.offline", context / "Dockerfile")
        _run(
            [
                "docker",
                "build",
                "--network",
                "none",
                "--build-arg",
                f"BASE={BASE_IMAGE}",
                "-t",
                tag,
                "-t",
                "autograder-sandbox:latest",
                str(context),
            ],
            log,
        )
    log(f"built {tag}")
    return tag
