"""Reading submitted notebooks: tolerant where Jupyter is, clear messages where it fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.errors import NotebookError
from autograder.notebook import _transformer, read_notebook, to_python
from autograder.runtime.notebook_exec import IPythonShim

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_valid_v4_notebook_keeps_code_cells_with_their_positions(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_code_cell("import torch"),
            new_markdown_cell("text"),
            new_code_cell("def f(x):\n    return x"),
        ]
    )
    path = tmp_path / "alice.ipynb"
    nbformat.write(nb, str(path))
    notebook = read_notebook(path)
    assert [(c.index, c.source) for c in notebook.cells] == [
        (1, "import torch"),
        (3, "def f(x):\n    return x"),
    ]
    assert notebook.path == path


def test_list_of_lines_sources_and_missing_ids_are_fine(tmp_path: Path) -> None:
    data = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": ["a = 1\n", "b = 2\n"], "outputs": []},
            {"cell_type": "code", "metadata": {}, "source": [], "outputs": []},
            {"cell_type": "raw", "source": "raw"},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 2,
    }
    notebook = read_notebook(write(tmp_path / "colab.ipynb", data))
    assert [(c.index, c.source) for c in notebook.cells] == [(0, "a = 1\nb = 2\n"), (1, "")]


def test_nbformat_3_worksheets_are_read(tmp_path: Path) -> None:
    data = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "heading", "level": 1, "source": "Title"},
                    {"cell_type": "code", "input": ["x = 1\n", "y = x"], "language": "python"},
                ]
            },
            {"cells": [{"cell_type": "code", "input": "z = 3"}]},
        ],
    }
    notebook = read_notebook(write(tmp_path / "old.ipynb", data))
    assert [(c.index, c.source) for c in notebook.cells] == [(1, "x = 1\ny = x"), (2, "z = 3")]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.ipynb"
    text = json.dumps({"cells": [{"cell_type": "code", "source": "é = 1"}], "nbformat": 4})
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_notebook(path).cells[0].source == "é = 1"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.ipynb", b"", "empty.ipynb: the file is empty"),
        ("blank.ipynb", b"  \n\t ", "blank.ipynb: the file is empty"),
        ("list.ipynb", b"[1, 2]", "list.ipynb: not a Jupyter notebook (the JSON is not an object)"),
        ("nocells.ipynb", b'{"metadata": {}}', "nocells.ipynb: it has no `cells`"),
        ("cellsdict.ipynb", b'{"cells": {"a": 1}}', "cellsdict.ipynb: `cells` is not a list"),
        (
            "badsource.ipynb",
            b'{"cells": [{"cell_type": "code", "source": 5}]}',
            "badsource.ipynb: a cell's source is neither text nor a list of lines",
        ),
        ("latin1.ipynb", '{"cells": "é"}'.encode("latin-1"), "latin1.ipynb: not UTF-8 text"),
        ("deep.ipynb", b"[" * 100_000 + b"]" * 100_000, "deep.ipynb: JSON nested too deeply"),
    ],
)
def test_bad_files_get_a_message_naming_the_file(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotebookError) as info:
        read_notebook(path)
    assert str(info.value).startswith(message), str(info.value)


def test_invalid_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "truncated.ipynb"
    path.write_text('{\n "cells": [\n  {"cell_type": "code",\n', encoding="utf-8")
    with pytest.raises(NotebookError) as info:
        read_notebook(path)
    message = str(info.value)
    assert message.startswith("truncated.ipynb: not valid notebook JSON (line 4, column 1")
    assert "truncated or not a notebook" in message


def test_not_a_notebook_file(tmp_path: Path) -> None:
    path = tmp_path / "solution.py"
    path.write_text("def f(): pass\n")
    with pytest.raises(
        NotebookError, match=r"solution\.py: not a Jupyter notebook \(expected a \.ipynb"
    ):
        read_notebook(path)


def test_over_max_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.ipynb"
    path.write_bytes(b" " * (3 * 2**20))
    with pytest.raises(NotebookError, match=r"huge\.ipynb: 3 MB is over the 2 MB limit"):
        read_notebook(path, max_bytes=2 * 2**20)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"gone\.ipynb: cannot be read"):
        read_notebook(tmp_path / "gone.ipynb")


# --------------------------------------------------------------------------- IPython syntax
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%time x = 1", "get_ipython().run_line_magic('time', 'x = 1')"),
        ("!ls -la", "get_ipython().system('ls -la')"),
        ("x = !ls", "x = get_ipython().getoutput('ls')"),
        ("%%bash\necho hi\n", "get_ipython().run_cell_magic('bash', '', 'echo hi\\n')"),
        ("%matplotlib inline", "get_ipython().run_line_magic('matplotlib', 'inline')"),
        ("%pip install torch", "get_ipython().run_line_magic('pip', 'install torch')"),
    ],
)
def test_ipython_syntax_becomes_get_ipython_calls(source: str, expected: str) -> None:
    assert expected in to_python(source)
    compile(to_python(source), "<cell>", "exec")


def test_plain_python_with_percent_and_bang_is_left_alone() -> None:
    source = 'a = "%d!" % 3\nb = 7 % 2 != 0\n'
    assert "get_ipython" not in to_python(source)
    ns: dict[str, Any] = {}
    exec(to_python(source), ns)
    assert ns["a"] == "3!" and ns["b"] is True


@pytest.mark.parametrize(
    "source",
    [
        "%time x",
        "x = !ls",
        "a = %who_ls",
        "len?",
        "??len",
        "  x = 1\n  y = 2",
        "\n\n  x = 1",
        ">>> x = 1",
        "In [1]: x = 1",
        "/print 1",
        ",print a b",
        ";print a b",
        "x = 1\nif x:\n    %time y = 2",
        "x = 1\r%time y = 2",
    ],
)
def test_every_ipython_form_goes_through_the_rewrite(source: str) -> None:
    # Each form is rewritten by IPython, so the fast path must not keep it as written.
    assert to_python(source) is not source
    assert to_python(source) == _transformer().transform_cell(source)


def test_cells_left_as_written_are_those_ipython_leaves_alone() -> None:
    sources: set[str] = set()
    for path in sorted(EXAMPLES.rglob("*.ipynb")):
        try:
            sources.update(cell.source for cell in read_notebook(path).cells)
        except NotebookError:  # the samples that are not notebooks
            continue
    assert len(sources) > 100
    kept = [s for s in sources if to_python(s) is s]
    assert len(kept) > 0.9 * len(sources)  # most cells skip the tokenizing rewrite
    for source in kept:
        assert _transformer().transform_cell(source).strip("\n") == source.strip("\n")


def test_transformed_cells_run_with_the_shim(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("%time x = 41\n!pip install nothing\nfiles = !ls"),
            new_code_cell("%%time\ny = x + 1"),
        ]
    )
    path = tmp_path / "magics.ipynb"
    nbformat.write(nb, str(path))
    ns: dict[str, Any] = {}
    shim = IPythonShim(ns)
    ns["get_ipython"] = lambda: shim
    for cell in read_notebook(path).runnable():
        exec(compile(cell["source"], f"<cell {cell['index']}>", "exec"), ns)
    assert ns["y"] == 42 and ns["files"] == []
    assert shim.neutralised == ["!pip install nothing", "!ls"]


def test_a_syntax_error_survives_the_rewrite_and_fails_in_its_cell() -> None:
    source = "def broken(:\n    %time x\n"
    with pytest.raises(SyntaxError):
        compile(to_python(source), "<cell>", "exec")
