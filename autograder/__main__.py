"""`python -m autograder` and the `autograder` command."""

from __future__ import annotations

import gc
import sys

# Commands that grade in a pool of worker processes: their fork server is started before
# the CLI is imported, so it imports torch and the grader (seconds) while this process
# imports the CLI and reads the submissions.
POOLED = frozenset({"grade", "validate", "publish"})


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in POOLED:
        from autograder import workers

        workers.start()
    from autograder.cli import main as cli_main

    try:
        cli_main()
    finally:
        # Everything the command made is closed: the interpreter's last garbage collection
        # over all of it would only delay the exit (about 0.05 s).
        gc.freeze()


if __name__ == "__main__":
    main()
