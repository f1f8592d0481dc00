"""Votes needed to settle a recommendation in the arena: the settle pairs against today's pairs
(tests/_arena_sim.py: simulated raters, known Bradley–Terry strengths).

    PYTHONPATH=$PWD python tests/benchmarks/bench_arena_settle.py [--studies 8] [--models 5] [--max-votes 30000]
        [--shapes clear_winner,cheap_within,all_within,cheap_on_margin]

Per kind (4 shapes of truth x decisive or tied votes), `--studies` studies of `--models` groups; each
study is run twice on the same truth: with the settle scheduler (bench.arena.settle) and with today's
uncertainty scheduler (bench.arena.pairs), both stopped by the same always-valid rule
(bench.decide.duels), looked at after every vote, up to `--max-votes`. Printed per kind: the share
settled, the median votes to settle (a study not settled counts as the cap, so the figure is a lower
bound for it), the multiple (today's votes / settle's, per study, geometric mean), and how often each
recommends a model whose true gap to the best is beyond the margin (goal: at most alpha = 5%).
Seeded: the same command prints the same figures.
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
from _arena_sim import ALPHA, MARGIN, SHAPES, VOTE_KINDS, make_truth, run_arena


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8, help="studies per kind (8 kinds)")
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--max-votes", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes of truth to run")
    ns = parser.parse_args()
    rng = np.random.default_rng(ns.seed)
    started = time.monotonic()
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    bad = {"settle": 0, "uncertainty": 0}
    settled_total = {"settle": 0, "uncertainty": 0}
    ratios: list[float] = []
    shapes = [x for x in ns.shapes.split(",") if x]
    if unknown := set(shapes) - set(SHAPES):
        parser.error(f"--shapes: unknown {', '.join(sorted(unknown))}; use {', '.join(SHAPES)}")
    for shape in shapes:
        for kind in VOTE_KINDS:
            for _ in range(ns.studies):
                truth = make_truth(shape, kind, ns.models, rng)
                seeds = rng.integers(2**31, size=2)
                out = {
                    s: run_arena(truth, s, np.random.default_rng(int(seed)), ns.max_votes)
                    for s, seed in zip(("settle", "uncertainty"), seeds, strict=True)
                }
                row = rows[(shape, kind)]
                for s, o in out.items():
                    row[f"{s}_votes"].append(o.votes)
                    row[f"{s}_settled"].append(o.settled)
                    row[f"{s}_correct"].append(o.recommended == truth.answer)
                    bad[s] += o.bad(truth)
                    settled_total[s] += o.settled
                if out["settle"].settled:  # the multiple where the settle pairs got there
                    ratio = out["uncertainty"].votes / out["settle"].votes
                    row["ratio"].append(ratio)
                    ratios.append(ratio)
    n = len(shapes) * len(VOTE_KINDS) * ns.studies
    print(
        f"{n} simulated arena studies of {ns.models} groups, margin {MARGIN:g} Elo, alpha {ALPHA:g}, "
        f"looked at after every vote, cap {ns.max_votes} votes, seed {ns.seed}"
    )
    print(
        f"{'shape':>16} {'votes':>9} {'settled new/today':>18} {'median votes new':>17} "
        f"{'median votes today':>19} {'multiple':>9} {'correct new/today':>18}"
    )
    for (shape, kind), row in rows.items():
        multiple = float(np.exp(np.mean(np.log(row["ratio"])))) if row["ratio"] else float("nan")
        print(
            f"{shape:>16} {kind:>9} "
            f"{100 * np.mean(row['settle_settled']):>8.0f}% /{100 * np.mean(row['uncertainty_settled']):>4.0f}%    "
            f"{np.median(row['settle_votes']):>17.0f} {np.median(row['uncertainty_votes']):>19.0f} "
            f"{multiple:>8.1f}x "
            f"{100 * np.mean(row['settle_correct']):>8.0f}% /{100 * np.mean(row['uncertainty_correct']):>4.0f}%"
        )
    multiple = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    rate = {s: bad[s] / n for s in bad}
    ci = binomtest(bad["settle"], n).proportion_ci(0.95)
    print(
        f"recommends a model beyond the margin: settle {100 * rate['settle']:.1f}% "
        f"(95% CI {100 * ci.low:.1f}%-{100 * ci.high:.1f}%), today {100 * rate['uncertainty']:.1f}%; "
        f"nominal {100 * ALPHA:g}%"
    )
    print(
        f"votes to settle, today's pairs / settle pairs (geometric mean over the {len(ratios)} studies the "
        f"settle pairs settled; today's capped at {ns.max_votes}): {multiple:.1f}x; "
        f"min/median/max {min(ratios):.1f}x/{float(np.median(ratios)):.1f}x/{max(ratios):.1f}x"
    )
    ok_level = rate["settle"] <= ALPHA
    ok_multiple = multiple > 1.0 and settled_total["settle"] >= settled_total["uncertainty"]
    print(
        f"verdict: {'PASS' if ok_level and ok_multiple else 'FAIL'} (beyond-margin rate {100 * rate['settle']:.1f}% "
        f"<= {100 * ALPHA:g}%: {ok_level}; settle pairs need {multiple:.1f}x fewer votes and settle at least as "
        f"often ({settled_total['settle']} vs {settled_total['uncertainty']} of {n}): {ok_multiple})  "
        f"[{time.monotonic() - started:.0f} s]"
    )


if __name__ == "__main__":
    main()
