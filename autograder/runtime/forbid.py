"""Disabling APIs while a graded function runs (COURSE.md's forbidden APIs).

For the duration of one call, every forbidden function is replaced by a stub that
records the use and raises, wherever the notebook can reach it: the module attribute
(`torch.nn.functional.conv2d`), its aliases in torch's modules (`torch.conv2d` is the
same object), the notebook's globals (`from torch.nn.functional import conv2d as c`),
and the defaults and closures of the notebook's functions. A forbidden class has its
`__init__` and `forward` stubbed, which also catches subclasses. Everything is put back
afterwards, so the same API elsewhere in the notebook costs nothing.

This runs in the student's process: it stops honest mistakes and casual shortcuts,
and a recorded use zeroes the question even if the student's code caught the error.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

AUTOGRAD = (
    "torch.Tensor.backward",
    "torch.autograd.backward",
    "torch.autograd.grad",
    "torch.autograd.functional.jacobian",
    "torch.autograd.functional.hessian",
    "torch.autograd.functional.vjp",
    "torch.autograd.functional.jvp",
    "torch.autograd.functional.vhp",
    "torch.autograd.functional.hvp",
    "torch.func.grad",
    "torch.func.grad_and_value",
    "torch.func.vjp",
    "torch.func.jvp",
    "torch.func.jacrev",
    "torch.func.jacfwd",
)
# Modules scanned for other names of a forbidden object.
ALIAS_MODULES = (
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.nn.modules.conv",
    "torch.nn.modules.pooling",
    "torch.autograd",
    "torch.func",
)
_MISSING = object()


class ForbiddenAPIError(BaseException):
    """Raised by a disabled API. A BaseException: `except Exception` does not swallow it."""


def expand(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        out.extend(AUTOGRAD if name == "autograd" else (name,))
    return out


def resolve(dotted: str) -> tuple[Any, str, Any] | None:
    """(owner, attribute, object) for a dotted name, or None if it does not exist here."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        if module_name.split(".")[0] not in sys.modules:
            return None  # never import on the student's behalf
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[cut:-1]:
                owner = getattr(owner, attr)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            return None
    return None


class Blocked:
    """Context manager: the given APIs raise (and are recorded) while it is active."""

    def __init__(self, names: list[str], namespace: dict[str, Any]) -> None:
        self.names = expand(names)
        self.namespace = namespace
        self.used: list[str] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Blocked:
        stubs: dict[int, tuple[Any, Any]] = {}  # id(original) -> (original, stub)
        for name in self.names:
            found = resolve(name)
            if found is None:
                continue
            owner, attr, original = found
            if getattr(original, "_autograder_stub", False) or id(original) in stubs:
                continue  # an alias of an API stubbed under its first name already
            if isinstance(original, type):
                self._stub_class(original, name)
            else:
                stub = self._stub(name)
                self._set(owner, attr, stub)
                stubs[id(original)] = (original, stub)
        if stubs:
            # One pass over the modules and the notebook for all the APIs: this runs
            # around every graded call, and torch's namespaces hold thousands of names.
            self._stub_everywhere(stubs)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, old in reversed(self._undo):
            try:
                if old is _MISSING:
                    delattr(owner, attr)
                elif isinstance(owner, dict):
                    owner[attr] = old
                else:
                    setattr(owner, attr, old)
            except (AttributeError, TypeError):
                pass
        self._undo.clear()

    def _stub(self, name: str) -> Any:
        used = self.used

        def forbidden(*args: Any, **kwargs: Any) -> Any:
            used.append(name)
            raise ForbiddenAPIError(f"{name} is not allowed in this function")

        forbidden.__name__ = name.rsplit(".", 1)[-1]
        forbidden._autograder_stub = True  # type: ignore[attr-defined]
        return forbidden

    def _set(self, owner: Any, attr: str, value: Any) -> None:
        try:
            if isinstance(owner, dict):
                self._undo.append((owner, attr, owner[attr]))
                owner[attr] = value
                return
            old = (
                owner.__dict__.get(attr, _MISSING)
                if isinstance(owner, type)
                else getattr(owner, attr)
            )
            setattr(owner, attr, value)
            self._undo.append((owner, attr, old))
        except (AttributeError, TypeError):
            pass  # read-only builtin attribute: nothing to stub there

    def _stub_class(self, cls: type, name: str) -> None:
        stub = self._stub(name)

        def method(self_: Any, *args: Any, **kwargs: Any) -> Any:
            return stub(*args, **kwargs)

        for attr in ("__init__", "forward"):
            if hasattr(cls, attr):
                self._set(cls, attr, method)

    def _stub_everywhere(self, stubs: dict[int, tuple[Any, Any]]) -> None:
        def stub_for(value: Any) -> Any:
            found = stubs.get(id(value))
            return found[1] if found is not None and found[0] is value else None

        for module_name in ALIAS_MODULES:
            module = sys.modules.get(module_name)
            if module is None:
                continue
            for attr, value in list(vars(module).items()):
                if (stub := stub_for(value)) is not None:
                    self._set(module, attr, stub)
        for original, stub in stubs.values():
            # A method (torch.Tensor.backward) is stubbed on the class that defines it.
            for owner, attr in _method_owners(original):
                self._set(owner, attr, stub)
        for attr, value in list(self.namespace.items()):
            if (stub := stub_for(value)) is not None:
                self._set(self.namespace, attr, stub)
            elif isinstance(value, types.FunctionType):
                self._stub_captured(value, stub_for)
            elif isinstance(value, type) and value.__module__ == "__main__":
                for member in list(vars(value).values()):
                    if isinstance(member, types.FunctionType):
                        self._stub_captured(member, stub_for)

    def _stub_captured(self, func: types.FunctionType, stub_for: Any) -> None:
        """Defaults and closure cells of a notebook function that hold an original."""
        if func.__defaults__ and any(stub_for(d) is not None for d in func.__defaults__):
            new = tuple(stub_for(d) or d for d in func.__defaults__)
            self._set(func, "__defaults__", new)
        kwdefaults = func.__kwdefaults__
        if kwdefaults and any(stub_for(v) is not None for v in kwdefaults.values()):
            new_kw = {k: stub_for(v) or v for k, v in kwdefaults.items()}
            self._set(func, "__kwdefaults__", new_kw)
        for cell in func.__closure__ or ():
            try:
                if (stub := stub_for(cell.cell_contents)) is not None:
                    self._set(cell, "cell_contents", stub)
            except ValueError:  # empty cell
                continue


def _method_owners(original: Any) -> list[tuple[Any, str]]:
    qualname = getattr(original, "__qualname__", "")
    module = sys.modules.get(getattr(original, "__module__", "") or "")
    if "." not in qualname or module is None:
        return []
    owner: Any = module
    try:
        for part in qualname.split(".")[:-1]:
            owner = getattr(owner, part)
    except AttributeError:
        return []
    attr = qualname.rsplit(".", 1)[-1]
    return [(owner, attr)] if getattr(owner, attr, None) is original else []
