"""The grading stack, imported once by the fork server that workers are forked from.

The fork server imports this module instead of each package by name (see `workers`), with
the cyclic garbage collector paused as the runtime's preload does (`collector_off`):
importing torch, pytest and the grader makes hundreds of collections, each walking every
object made so far, a fifth of the imports' CPU time on the batch's critical path, to free
about 3 MB. What the imports made is then frozen, so no collection in the fork server or a
worker walks it again.
"""

from __future__ import annotations

import gc

from autograder.runtime.server import collector_off

with collector_off():
    try:
        import numpy  # noqa: F401
        import pytest  # noqa: F401
        import torch  # noqa: F401

        import autograder.grade
        import autograder.grader.plugin  # noqa: F401
    finally:
        gc.freeze()
