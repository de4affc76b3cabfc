"""What hidden tests see of a submission: `student.NAME`, handles, and student faults.

`student.f(x)` sends `x` as data, runs `f` in the sandbox and returns its result as
data; objects that are not data come back as `Handle`s whose attribute reads, calls
and item reads run in the sandbox too. Nothing a handle does can run student code in
the grader: a handle has no behaviour of its own beyond forwarding requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.grader.session import StudentSession

MAX_ITERATION = 100_000


class StudentCodeError(Exception):
    """The student's code raised, misbehaved or is missing; the test fails with this message."""

    def __init__(self, message: str, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.traceback = traceback


class MissingName(StudentCodeError, AttributeError):
    """The notebook does not define a name a test needs."""


class StudentTimeout(StudentCodeError):
    """A call into the student's code ran past its time limit (the sandbox was killed)."""


class SandboxCrashed(StudentCodeError):
    """The student's process died (exit, crash, out of memory) during a call."""


class ForbiddenAPI(StudentCodeError):
    """The student's function used an API its question forbids (the question scores zero)."""

    def __init__(self, message: str, api: str) -> None:
        super().__init__(message, "ForbiddenAPIError")
        self.api = api


class BadValue(StudentCodeError):
    """The student's code returned something that cannot cross the boundary."""


class Handle:
    """A student object that stayed in the sandbox."""

    __slots__ = ("_callable", "_generation", "_id", "_label", "_session", "_type")

    def __init__(
        self, session: StudentSession, hid: int, type_name: str, is_callable: bool, generation: int
    ) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_id", hid)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_callable", is_callable)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "_label", type_name)  # a name for messages: "Linear.forward"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._session.getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._session.setattr(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self, None, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._session.call(self, "__getitem__", (key,), {})

    def __len__(self) -> int:
        n = self._session.call(self, "__len__", (), {})
        if type(n) is not int or n < 0:
            raise BadValue(f"len({self._label}) is not a count")
        return n

    def __iter__(self) -> Any:
        iterator = self._session.call(self, "__iter__", (), {})
        if not isinstance(iterator, Handle):
            yield from iterator if isinstance(iterator, list | tuple) else ()
            return
        for _ in range(MAX_ITERATION):
            try:
                yield self._session.call(iterator, "__next__", (), {})
            except StudentCodeError as exc:
                if exc.exc_type == "StopIteration":
                    return
                raise
        raise BadValue(f"iterating {self._label} did not stop")

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Handle)
            and other._session is self._session
            and (other._id, other._generation) == (self._id, self._generation)
        )

    def __hash__(self) -> int:
        return hash((id(self._session), self._id, self._generation))

    def __repr__(self) -> str:
        return f"<student {self._type} object>"


class StudentProxy:
    """The `student` fixture: the notebook's globals, read through the sandbox."""

    __slots__ = ("_session",)

    def __init__(self, session: StudentSession) -> None:
        object.__setattr__(self, "_session", session)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._session.get(name)

    def run_helper_code(self, source: str) -> Handle:
        """Define stand-in objects in the sandbox (e.g. a module with a known backward), so a
        test of one function need not rely on the student's other functions. Returns a handle
        to a namespace: `helpers = student.run_helper_code(SRC); helpers.Scale(2.0)`. The
        source is visible to student code: put nothing secret in it."""
        return self._session.define(source)

    def __contains__(self, name: str) -> bool:
        try:
            self._session.get(name)
        except MissingName:
            return False
        return True

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("tests cannot change the notebook's globals")

    def __repr__(self) -> str:
        return "<student notebook>"
