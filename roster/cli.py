"""`roster`: the command line. Each group of verbs lives in its own module and registers here.

Every command exits 0 on success and non-zero with a one-line reason on failure; no
traceback reaches the user for an operating error (bad path, bad argument, bad log).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from roster.errors import UserError

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (e.g. a corrupt log, a violated invariant)
EXIT_USAGE = 2  # the command could not run (bad argument, missing path)


def _registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    from roster import cli_offline

    found = [cli_offline.register]
    for name in ("cli_sim", "cli_up", "cli_cluster", "cli_groups"):
        try:
            module = __import__(f"roster.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"roster.{name}":
                raise
            continue
        found.append(module.register)
    return found


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other usage error
        self.exit(EXIT_USAGE, f"roster: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="roster", description="Roster cluster service")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"roster: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roster: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `roster events ... | head` is normal use
        return EXIT_OK
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
