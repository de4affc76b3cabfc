"""`python -m autograder` and the `autograder` command."""

from __future__ import annotations

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

    cli_main()


if __name__ == "__main__":
    main()
