"""A class of N submissions, generated from a correct example notebook by small edits.

Student i gets variant i mod len(variants): the correct notebook, or one with a typical
mistake (a source edit that must apply, so a change of the example is noticed). Every
notebook starts with a comment naming its student, so no two files share a content hash and
nothing is skipped as already graded.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ClassSpec:
    base: str  # the correct example notebook, relative to the course
    variants: dict[str, list[tuple[str, str]]]  # name -> (old, new) source edits


CLASSES: dict[str, ClassSpec] = {
    "perceptron": ClassSpec(
        base="examples/perceptron/alice.ipynb",
        variants={
            "correct": [],
            "ge-threshold": [("(X @ w[1:] + w[0] > 0)", "(X @ w[1:] + w[0] >= 0)")],
            "bias-ignored": [("(X @ w[1:] + w[0] > 0)", "(X @ w[1:] > 0)")],
            "wrong-and-weights": [
                ("torch.tensor([-1.5, 1.0, 1.0])", "torch.tensor([-2.0, 1.0, 1.0])")
            ],
            "wrong-mcq": [("answer_linear_limit = 'b'", "answer_linear_limit = 'a'")],
            "train-bias-frozen": [
                (
                    "torch.cat([torch.ones(1), X[i].float()])",
                    "torch.cat([torch.zeros(1), X[i].float()])",
                )
            ],
            "train-syntax-error": [("for epoch in range(epochs):", "for epoch in range(epochs)")],
            "several-mistakes": [
                ("(X @ w[1:] + w[0] > 0)", "(X @ w[1:] + w[0] >= 0)"),
                ("answer_xor_single_layer = False", "answer_xor_single_layer = True"),
            ],
        },
    ),
    "backprop": ClassSpec(
        base="examples/backprop/ada.ipynb",
        variants={
            "correct": [],
            "grads-not-accumulated": [
                ("self.grad_weight += torch.einsum", "self.grad_weight = torch.einsum")
            ],
            "tanh-backward": [("(1 - self.y * self.y)", "(1 - self.y)")],
            "relu-leaky": [
                ("torch.where(x > 0, x, torch.zeros_like(x))", "torch.where(x > 0, x, 0.01 * x)")
            ],
            "mse-sum": [
                ("torch.mean((prediction - target) ** 2)", "torch.sum((prediction - target) ** 2)")
            ],
            "backward-not-reversed": [("for m in self.modules[::-1]:", "for m in self.modules:")],
            "wrong-numeric": [("784 * 128 + 128 + 128 * 10 + 10", "784 * 128 + 128 * 10")],
            "sequential-syntax-error": [("class Sequential:", "class Sequential")],
        },
    ),
}


class ClassError(Exception):
    pass


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def variant_notebook(base: dict[str, Any], edits: list[tuple[str, str]]) -> dict[str, Any]:
    notebook = copy.deepcopy(base)
    for old, new in edits:
        hits = 0
        for cell in notebook["cells"]:
            if cell.get("cell_type") == "code" and old in _source(cell):
                cell["source"] = _source(cell).replace(old, new)
                hits += 1
        if hits == 0:
            raise ClassError(f"the edit {old!r} -> {new!r} does not apply to the base notebook")
    return notebook


def generate(course_root: Path, assignment: str, n: int, out: Path) -> dict[str, str]:
    """Write N notebooks `s0001.ipynb`... into `out`; returns {student id: variant}."""
    spec = CLASSES.get(assignment)
    if spec is None:
        raise ClassError(f"no class variants are defined for {assignment!r} (bench/classgen.py)")
    base_path = course_root / spec.base
    try:
        base = json.loads(base_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassError(f"{base_path}: {exc}") from None
    variants = {name: variant_notebook(base, edits) for name, edits in spec.variants.items()}
    names = list(variants)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for i in range(n):
        student = f"s{i + 1:04d}"
        variant = names[i % len(names)]
        notebook = copy.deepcopy(variants[variant])
        first = next(c for c in notebook["cells"] if c.get("cell_type") == "code")
        first["source"] = f"# submission of {student} ({variant})\n" + _source(first)
        (out / f"{student}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        manifest[student] = variant
    return manifest
