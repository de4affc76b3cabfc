#!/usr/bin/env bash
# Set up everything the autograder needs on a fresh Debian/Ubuntu machine:
# bubblewrap for the local sandbox (when run as root), a virtual environment in .venv
# with the CPU build of PyTorch, and the autograder itself (editable) with its dev tools.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing bubblewrap (the local sandbox's namespace tool)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    else
        echo "setup: WARNING: bubblewrap is missing; install it (apt-get install bubblewrap)," \
             "otherwise student code runs without namespace isolation" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# torch first and pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
# An editable install leaves the project uncompiled; where PYTHONDONTWRITEBYTECODE is set,
# every run (and every sandbox) would compile it again, a few tenths of a second each.
.venv/bin/python -m compileall -q autograder
echo "setup: ready (.venv/bin/autograder)"
