"""`python -m bench [--only NAME] [options]`: run the benchmarks, one by one.

A benchmark is a module `bench.<name>` with `main(argv) -> int`; every other option (e.g.
`--quick`, `--duration 10`) goes to each benchmark. One at a time, because each measures a
machine that the others would otherwise share.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

# Shared code, not benchmarks; a new helper module goes here (or gets a leading underscore),
# a new benchmark needs no registration.
HELPERS = frozenset({"load", "meters", "pgprobe", "prom", "report", "stack", "wrk"})


def benchmarks() -> list[str]:
    # Found by name, not imported: one benchmark's missing service must not stop the others.
    return sorted(
        module.name
        for module in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not module.name.startswith("_") and module.name not in HELPERS
    )


def main(argv: Sequence[str] | None = None) -> int:
    known = benchmarks()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the claimflow benchmarks; other options go to each benchmark.",
        epilog=f"benchmarks: {', '.join(known)}",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=known,
        metavar="NAME",
        help="run only this benchmark (repeatable); default: all",
    )
    args, passed_on = parser.parse_known_args(argv)
    failed = []
    for name in args.only or known:
        print(f"=== bench.{name}", flush=True)
        try:
            code = importlib.import_module(f"bench.{name}").main(passed_on)
        except Exception:
            # The other benchmarks still run; this one's traceback says what broke.
            traceback.print_exc()
            code = 1
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
