"""The kill -9 crash storm, long: --rounds daemons SIGKILLed at seeded-random moments
(0.5-3 s after each says it runs), one more stopped gracefully, then the checks of
tests/storm.py: a run printed finished is saved so, ids never reused, an occurrence
recorded once, no orphan process, every state file loads.

A measurement, not a gate: it prints the counts and each check's violations (with a few
examples) and exits 0 whatever it found.
Run: .venv/bin/python bench/crash_bench.py [--rounds 50] [--seed 1] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.storm import Storm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=50, help="daemons killed (default 50)")
    p.add_argument("--seed", type=int, default=1, help="seeds the kill moments")
    p.add_argument("--examples", type=int, default=3, help="violations shown per check")
    p.add_argument("--keep", action="store_true",
                   help="keep the state directory and the daemons' output")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fleetdeck-crash-"))
    try:
        result = Storm(work, rounds=args.rounds, seed=args.seed,
                       progress=lambda text: print(text, flush=True)).run()
        print()
        print(result.failure_message(args.examples))
        if args.keep:
            print(f"\nkept: {work} (state/, daemon-output/round-N.out and .err)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
