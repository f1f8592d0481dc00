"""How often bench.decide recommends the cheap group, in synthetic studies with known truth.

    PYTHONPATH=$PWD python tests/benchmarks/bench_decide.py [--reps 200] [--sigma 2.0]
    PYTHONPATH=$PWD python tests/benchmarks/bench_decide.py --signal fid [--reps 200]

Rows: groups, prompts, noise (normal, or skewed: the cheap group now and then fails badly), the
cheap group's true gap below the best (in margins) and the share of studies in which it was
recommended, with a 95% Clopper-Pearson interval. Gap >= 1 (at or beyond the margin): the rate
must stay <= 5%. Gap 0.5 (within half the margin): the rate is the rule's power. docs/decision.md
carries this table. Seeded: the same command prints the same table.

--signal fid runs the group-level rule instead: FID against fixed reference statistics, decided on
bootstrap replicates over images (tests/_decide_sim.py: simulate_fid; 8-d features, 2 images a prompt).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _decide_sim import FidStudy, Study, fid_recommended_rate, recommended_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=2.0, help="per-image noise sd, in margins")
    parser.add_argument("--groups", type=int, nargs="+", default=[6, 10])
    parser.add_argument("--prompts", type=int, nargs="+", default=[12, 50, 200])
    parser.add_argument("--gaps", type=float, nargs="+", default=[1.0, 1.5, 0.5])
    parser.add_argument(
        "--signal",
        choices=["clip", "fid"],
        default="clip",
        help="clip: the paired per-prompt rule; fid: the group-level rule on image replicates",
    )
    parser.add_argument(
        "--dim", type=int, default=8, help="fid: feature dimensions (above the images: the n x n path)"
    )
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates per study")
    ns = parser.parse_args()
    if ns.signal == "fid":
        print(f"FID, {ns.dim}-d features, {ns.reps} studies per row, {ns.n_boot} replicates over images "
              "(drawn by prompt), 2 images a prompt")  # fmt: skip
    else:
        print(f"sigma = {ns.sigma:g} margins per image, 2 seeds per prompt, {ns.reps} studies per row")
    print(f"{'groups':>6} {'prompts':>7} {'noise':>7} {'gap':>5} {'recommended':>12}  95% CI")
    start = time.perf_counter()
    for groups in ns.groups:
        for prompts in ns.prompts:
            for noise in ("normal", "skewed"):
                for gap in ns.gaps:
                    seed = groups * 1000 + prompts
                    if ns.signal == "fid":
                        fid = FidStudy(groups, prompts, gap, noise, dim=ns.dim)
                        rate = fid_recommended_rate(fid, ns.reps, seed=seed, n_boot=ns.n_boot)
                    else:
                        study = Study(groups, prompts, gap, noise, sigma=ns.sigma)
                        rate = recommended_rate(study, ns.reps, seed=seed, n_boot=ns.n_boot)
                    hits = round(rate * ns.reps)
                    ci = binomtest(hits, ns.reps).proportion_ci()
                    flag = "" if gap < 1.0 or rate <= 0.05 else "  <-- above 5%"
                    print(f"{groups:>6} {prompts:>7} {noise:>7} {gap:>5g} {rate:>12.3f}  "
                          f"[{ci.low:.3f}, {ci.high:.3f}]{flag}", flush=True)  # fmt: skip
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
