"""Sandboxes: where student code runs. See `base` for the contract."""

from autograder.sandbox.base import LaunchConfig, Sandbox, SandboxProcess
from autograder.sandbox.local import LocalSandbox

__all__ = ["LaunchConfig", "LocalSandbox", "Sandbox", "SandboxProcess"]
