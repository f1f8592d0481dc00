"""Adaptive studies against the full grid, on synthetic studies with known truth (tests/_adaptive_sim.py).

    PYTHONPATH=$PWD python tests/benchmarks/bench_adaptive.py [--studies 200] [--models 10] [--prompts 1000]

Each study: 10 models x 1,000 prompts, costs spread 30x, one of four shapes of truth and normal or
skewed per-prompt noise (cycled, so 200 studies = 25 of each of the 8 kinds). The full grid's
recommendation is bench.decide's (one-sided paired BCa, Holm) on every prompt of every model; the
adaptive one is bench.decide.sequential's, run in rounds (10 prompts, then 20 per round) until settled
or out of prompts. Printed: agreement with the grid (goal >= 95%), how often each recommends a model
whose true gap to the best is beyond the margin (goal <= alpha = 5%), the adaptive cost as a share of
the grid's (goal <= 40% on average) with its distribution, and a verdict line. Seeded: the same
command prints the same figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _adaptive_sim import SHAPES, grid_recommendation, make_truth, names, run_adaptive

ALPHA = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=22)
    ns = parser.parse_args()
    rng = np.random.default_rng(ns.seed)
    kinds = [(shape, noise) for shape in SHAPES for noise in ("normal", "skewed")]
    rows: dict[tuple[str, str], list[tuple[bool, bool, bool, float, bool]]] = defaultdict(list)
    start = time.perf_counter()
    for i in range(ns.studies):
        shape, noise = kinds[i % len(kinds)]
        truth = make_truth(shape, noise, ns.models, ns.prompts, rng)
        adaptive = run_adaptive(truth, alpha=ALPHA)
        grid = grid_recommendation(truth, alpha=ALPHA, seed=i)
        label = names(ns.models)
        bad = {label[j] for j in np.flatnonzero(~truth.eligible)}
        rows[(shape, noise)].append(
            (adaptive.recommended == grid, adaptive.recommended in bad, grid in bad, adaptive.cost_share,
             adaptive.settled)
        )  # fmt: skip
    elapsed = time.perf_counter() - start
    every = [r for kind in kinds for r in rows[kind]]
    print(f"{ns.studies} studies of {ns.models} models x {ns.prompts} prompts, margin 0.05 on a [0, 1] score, "
          f"alpha {ALPHA:g}, seed {ns.seed}")  # fmt: skip
    print(f"{'shape':>16} {'noise':>7} {'n':>3} {'agree':>6} {'bad(adaptive)':>13} {'bad(grid)':>9} "
          f"{'settled':>7} {'cost share':>10}")  # fmt: skip
    for shape, noise in kinds:
        rs = rows[(shape, noise)]
        if not rs:
            continue
        a = np.array(rs, dtype=float)
        print(f"{shape:>16} {noise:>7} {len(rs):>3} {a[:, 0].mean():>6.1%} {a[:, 1].mean():>13.1%} "
              f"{a[:, 2].mean():>9.1%} {a[:, 4].mean():>7.0%} {a[:, 3].mean():>10.1%}")  # fmt: skip
    a = np.array(every, dtype=float)
    agree, bad_a, bad_g, share = a[:, 0].mean(), a[:, 1].mean(), a[:, 2].mean(), a[:, 3]
    n = len(every)
    ci_agree = binomtest(int(a[:, 0].sum()), n).proportion_ci()
    ci_bad = binomtest(int(a[:, 1].sum()), n).proportion_ci()
    quantiles = np.quantile(share, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    print(
        f"agreement with the full grid: {agree:.1%} (95% CI {ci_agree.low:.1%}-{ci_agree.high:.1%}; goal >= 95%)"
    )
    print(f"recommends a model beyond the margin: adaptive {bad_a:.1%} (95% CI {ci_bad.low:.1%}-{ci_bad.high:.1%}), "
          f"grid {bad_g:.1%}; nominal {ALPHA:.0%}")  # fmt: skip
    print(f"cost as a share of the full grid: mean {share.mean():.1%}; min/p10/p25/median/p75/p90/max "
          + "/".join(f"{q:.0%}" for q in quantiles))  # fmt: skip
    ok = agree >= 0.95 and bad_a <= ALPHA and share.mean() <= 0.40
    print(f"verdict: {'PASS' if ok else 'FAIL'} (agreement {agree:.1%} >= 95%: {agree >= 0.95}; beyond-margin rate "
          f"{bad_a:.1%} <= {ALPHA:.0%}: {bad_a <= ALPHA}; mean cost share {share.mean():.1%} <= 40%: "
          f"{share.mean() <= 0.40})  [{elapsed:.0f} s]")  # fmt: skip


if __name__ == "__main__":
    main()
