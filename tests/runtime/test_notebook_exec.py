"""Running cells in the runtime: errors are recorded and execution goes on; magics are shimmed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from autograder.notebook import to_python
from autograder.runtime import notebook_exec
from autograder.runtime.notebook_exec import IPythonShim, run_cell


@pytest.fixture
def namespace() -> Iterator[dict[str, Any]]:
    main = sys.modules["__main__"]
    ns, _ = notebook_exec.make_namespace()
    try:
        yield ns
    finally:
        sys.modules["__main__"] = main


def run(ns: dict[str, Any], index: int, source: str) -> dict[str, str] | None:
    return run_cell(index, to_python(source), ns)


def test_cells_share_one_namespace_and_errors_do_not_stop_the_next() -> None:
    ns: dict[str, Any] = {}
    assert run_cell(0, "x = 1", ns) is None
    error = run_cell(1, "y = x + 1\n1 / 0\n", ns)
    assert error is not None and error["error"] == "ZeroDivisionError: division by zero"
    assert 'File "<cell 1>", line 2' in error["traceback"]
    assert run_cell(2, "z = y * 10", ns) is None
    assert ns["z"] == 20


@pytest.mark.parametrize(
    ("source", "summary"),
    [
        ("import sys\nsys.exit(0)", "SystemExit: 0"),
        ("raise SystemExit", "SystemExit"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("def f(:\n    pass", "SyntaxError"),
        (
            "import no_such_module_here",
            "ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
    ],
)
def test_base_exceptions_are_recorded_not_raised(source: str, summary: str) -> None:
    error = run_cell(3, source, {})
    assert error is not None and error["error"].startswith(summary)


def test_tracebacks_show_only_notebook_frames() -> None:
    ns: dict[str, Any] = {}
    run_cell(0, "import json\ndef f():\n    return json.loads('{')\n", ns)
    error = run_cell(1, "f()", ns)
    assert error is not None
    assert "<cell 0>" in error["traceback"] and "<cell 1>" in error["traceback"]
    assert "json/decoder.py" not in error["traceback"]


def test_python_magics_run_and_shell_magics_are_neutralised(namespace: dict[str, Any]) -> None:
    shim = namespace["get_ipython"]()
    assert run(namespace, 0, "%time a = 1") is None
    assert run(namespace, 1, "%%time\ndef f():\n    return 2\n") is None
    assert run(namespace, 2, "%%capture\nb = f() + a\n") is None
    assert run(namespace, 3, "!rm -rf /\nout = !ls\n%pip install torch\n%matplotlib inline") is None
    assert run(namespace, 4, "%%bash\ntouch /tmp/should-not-exist\n") is None
    assert run(namespace, 5, "%%writefile x.py\nprint(1)\n") is None
    assert namespace["a"] == 1 and namespace["b"] == 3 and namespace["out"] == []
    assert "!rm -rf /" in shim.neutralised and "!ls" in shim.neutralised
    assert any(n.startswith("%%bash") for n in shim.neutralised)
    assert any(n.startswith("%%writefile") for n in shim.neutralised)


def test_unknown_ipython_calls_are_harmless() -> None:
    shim = IPythonShim({})
    assert shim.run_line_magic("load_ext", "autoreload") is None
    assert shim.some_method_notebooks_call("x", y=1) is None
    assert shim.neutralised == ["%load_ext autoreload"]


def test_display_prints_a_repr(
    namespace: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cell(0, "display({'a': 1}, [2])", namespace) is None
    assert capsys.readouterr().out == "{'a': 1}\n[2]\n"


def test_make_namespace_is_a_fresh_main_module(namespace: dict[str, Any]) -> None:
    assert sys.modules["__main__"].__dict__ is namespace
    assert namespace["__name__"] == "__main__"
    assert callable(namespace["get_ipython"]) and "__builtins__" in namespace
