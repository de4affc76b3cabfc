"""The benchmark's target lines: a ratio is never printed rounded onto the other side."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _throughput() -> Any:
    name = "bench_throughput"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / "throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts bench/ first, for its own imports only
    return module


def test_a_ratio_just_under_its_target_does_not_print_as_the_target() -> None:
    text = _throughput().ratio_text
    assert text(0.4977, 0.5) == "0.498"
    assert text(0.49999, 0.5) == "0.49999"
    assert text(0.5, 0.5) == "0.50"
    assert text(0.6432, 0.5) == "0.64"
    assert text(22.96, 20) == "22.96"
    assert text(19.996, 20) == "19.996"
