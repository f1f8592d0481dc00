"""Coverage of the share interval (bench.stats.share_ci) at the sizes users run.

    PYTHONPATH=$PWD python tests/benchmarks/bench_share_ci.py [--reps 2000]

iid rows are exact (binomial sums); clustered and judged rows are simulated (seeded), see
tests/_share_sim.py. docs/statistics.md carries this table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _share_sim import iid_coverage, simulated_coverage

SIZES = (12, 24, 50, 100, 200)
SHARES = (0.02, 0.5, 0.98)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    ns = parser.parse_args()
    print(f"{'data':>10} {'n':>5} " + " ".join(f"{'p=' + format(p, 'g'):>8}" for p in SHARES))
    for n in SIZES:
        print(f"{'iid':>10} {n:>5} " + " ".join(f"{iid_coverage(n, p):>8.3f}" for p in SHARES), flush=True)
    for kind in ("clustered", "judged"):
        for n in SIZES:
            cells = [simulated_coverage(kind, n, p, ns.reps, seed=n) for p in SHARES]
            print(f"{kind:>10} {n:>5} " + " ".join(f"{c:>8.3f}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
