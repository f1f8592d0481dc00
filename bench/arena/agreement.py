"""How well each automated quality signal agrees with the team's own votes.

For every per-image signal in records.parquet (CLIP, PickScore, HPSv2, the judge's adherence
and rubric):

- pairwise accuracy: on the voted image pairs where both images have the signal, the share of
  decisive votes (left / right) whose winner the signal scores higher. A signal tie (equal
  scores) counts 0.5. Votes that are ties or "both bad" carry no preference: they are left out
  and counted (`n_tied_votes`); so are votes where an image has no score (`n_unscored`).
- Kendall's τ (scipy.stats.kendalltau, τ-b) between the arms' mean signal over all their images
  and the arms' Bradley–Terry (Elo) strengths from the votes.

Both come with percentile-bootstrap intervals over votes (votes resampled with replacement, the
ratings refitted per replicate, one seeded set of replicates shared by every signal).
Inter-rater agreement: Krippendorff's α (nominal: first image, second image, no preference) over
the image pairs that two or more raters voted on, with the number of such pairs.

`preferred_signal` is the rule `report.quality_metric: auto` uses: with at least MIN_VOTES scored
decisive votes, the signal with the highest pairwise accuracy (above chance). MIN_VOTES comes from
tests/_agreement_sim.py: the smallest number of votes at which a signal that agrees ~80% of the time
is picked over one that agrees ~55% at least 90% of the time, with normal and with skewed image
quality (figures in docs/signal-agreement.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import kendalltau

from bench.arena.ratings import fit_bradley_terry
from bench.arena.votes import Vote

F64 = npt.NDArray[np.float64]

# report.quality_metric name -> the per-image column of records.parquet
SIGNAL_COLUMNS: dict[str, str] = {
    "judge_adherence": "judge_adherence",
    "judge_rubric": "judge_rubric",
    "pickscore": "pickscore",
    "hpsv2": "hpsv2",
    "clip": "clip_score",
}
SIGNAL_LABELS: dict[str, str] = {
    "judge_adherence": "judge adherence",
    "judge_rubric": "judge rubric",
    "pickscore": "PickScore",
    "hpsv2": "HPSv2.1",
    "clip": "CLIP score",
}
# Scored decisive votes before `auto` trusts the votes to pick a signal (tests/_agreement_sim.py).
MIN_VOTES = 10
NO_PREFERENCE = ("tie", "both_bad")


@dataclass(frozen=True)
class SignalAgreement:
    signal: str  # report.quality_metric name
    n_used: int  # decisive votes with both images scored: the accuracy's denominator
    n_tied_votes: int  # tie / both-bad votes on scored pairs, left out of the accuracy
    n_unscored: int  # votes where an image has no value of this signal, left out
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    tau: float  # Kendall's τ-b, arms' mean signal vs their Elo
    tau_low: float
    tau_high: float
    n_arms: int  # arms in the τ (rated on the common scale and with the signal)


@dataclass(frozen=True)
class InterRater:
    alpha: float  # Krippendorff's α, nominal; NaN when undefined (fewer than 2 overlapping pairs / 1 value)
    n_pairs: int  # image pairs voted on by 2+ raters
    n_raters: int  # raters with a vote on one of those pairs


@dataclass
class Agreement:
    rows: list[SignalAgreement]
    inter_rater: InterRater
    n_votes: int
    confidence: float
    min_votes: int = MIN_VOTES
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.rows])


def image_scores(records: pd.DataFrame, column: str) -> dict[str, float]:
    """sha256 -> the signal's value for that image (mean over its rows: a replayed image repeats)."""
    if column not in records or "image_sha256" not in records:
        return {}
    values = pd.to_numeric(records[column], errors="coerce")
    frame = pd.DataFrame({"sha": records["image_sha256"], "v": values}).dropna()
    return {str(k): float(v) for k, v in frame.groupby("sha")["v"].mean().items()}


def vote_agreement(votes: Sequence[Vote], scores: Mapping[str, float]) -> tuple[F64, F64, int, int]:
    """Per vote: (agreement 1 / 0.5 / 0, used 1 or 0), votes tied by the rater, votes unscored.

    A vote is used when it is decisive and both images have a score; agreement is 1 when the signal
    scores the human's winner higher, 0.5 when the signal scores both the same, else 0.
    """
    agree = np.zeros(len(votes))
    used = np.zeros(len(votes))
    tied = unscored = 0
    for i, v in enumerate(votes):
        left, right = scores.get(v.left.image_sha256), scores.get(v.right.image_sha256)
        if left is None or right is None:
            unscored += 1
            continue
        if v.choice in NO_PREFERENCE:
            tied += 1
            continue
        winner, loser = (left, right) if v.choice == "left" else (right, left)
        used[i] = 1.0
        agree[i] = 1.0 if winner > loser else 0.5 if winner == loser else 0.0
    return agree, used, tied, unscored


def pairwise_accuracy(agree: F64, used: F64) -> float:
    n = float(used.sum())
    return float(agree @ used / n) if n else float("nan")


class _VoteBootstrap:
    """One seeded set of bootstrap replicates over votes, and the Bradley–Terry fit of each."""

    def __init__(self, votes: Sequence[Vote], n_boot: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        n = len(votes)
        self.counts: F64 = (
            rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64) if n else np.zeros((0, 0))
        )
        arms = sorted({s.arm for v in votes for s in (v.left, v.right)})
        self.arms = arms
        index = {a: i for i, a in enumerate(arms)}
        k = len(arms)
        codes, a_win = [], []
        for v in votes:
            a, b = index[v.left.arm], index[v.right.arm]
            score = v.score_left
            if a > b:
                a, b, score = b, a, 1.0 - score
            codes.append(a * k + b if a != b else -1)
            a_win.append(score)
        code_arr = np.array(codes, dtype=np.int64)
        valid = code_arr >= 0
        pair_codes, inverse = np.unique(code_arr[valid], return_inverse=True)
        self.pairs = np.stack([pair_codes // max(k, 1), pair_codes % max(k, 1)], axis=1).astype(np.intp)
        onehot = np.zeros((n, len(pair_codes)))
        onehot[np.flatnonzero(valid), inverse] = 1.0
        self.onehot = onehot
        self.score = np.array(a_win, dtype=np.float64)
        self.k = k

    def strengths(self, counts: F64) -> F64:
        """(R, k) log-strengths for R rows of vote counts."""
        if not len(self.pairs):
            return np.zeros((counts.shape[0], self.k))
        n = counts @ self.onehot
        w = counts @ (self.onehot * self.score[:, None])
        return fit_bradley_terry(n, w, self.pairs, self.k)


def _tau(x: F64, y: F64) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def _interval(values: F64, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def arm_means(records: pd.DataFrame, column: str, arm_of_image: Mapping[str, str]) -> dict[str, float]:
    """arm -> mean of the signal over all of the arm's images (not only the voted ones)."""
    scores = image_scores(records, column)
    by_arm: dict[str, list[float]] = defaultdict(list)
    for sha, arm in arm_of_image.items():
        if sha in scores:
            by_arm[arm].append(scores[sha])
    return {a: float(np.mean(v)) for a, v in by_arm.items()}


def inter_rater(votes: Sequence[Vote]) -> InterRater:
    """Krippendorff's α (nominal) over image pairs that 2+ raters voted on.

    A pair's value is oriented by its images (not by screen side): first image (by sha256) preferred,
    second preferred, or no preference (tie / both bad). A rater's latest vote on a pair counts.
    """
    latest: dict[tuple[frozenset[str], str], float] = {}
    for v in sorted(votes, key=lambda v: v.ts):
        first = min(v.left.image_sha256, v.right.image_sha256)
        if v.choice in NO_PREFERENCE:
            value = 2.0
        else:
            winner = v.left.image_sha256 if v.choice == "left" else v.right.image_sha256
            value = 0.0 if winner == first else 1.0
        latest[(v.pair, v.rater)] = value
    raters_of: dict[frozenset[str], dict[str, float]] = defaultdict(dict)
    for (pair, rater), value in latest.items():
        raters_of[pair][rater] = value
    shared = {p: r for p, r in raters_of.items() if len(r) >= 2}
    raters = sorted({r for by in shared.values() for r in by})
    if not shared:
        return InterRater(float("nan"), 0, 0)
    data = np.full((len(raters), len(shared)), np.nan)
    for j, by in enumerate(shared.values()):
        for rater, value in by.items():
            data[raters.index(rater), j] = value
    values = data[np.isfinite(data)]
    if len(np.unique(values)) < 2:  # every rater gave the same answer everywhere: α is 0/0
        return InterRater(float("nan"), len(shared), len(raters))
    alpha = float(
        krippendorff.alpha(
            reliability_data=data, level_of_measurement="nominal", value_domain=[0.0, 1.0, 2.0]
        )
    )
    return InterRater(alpha, len(shared), len(raters))


def compute_agreement(
    votes: Sequence[Vote],
    records: pd.DataFrame,
    arm_of_image: Mapping[str, str],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """Agreement of every per-image signal present in `records` with `votes`.

    `arm_of_image`: sha256 -> arm label of the images of the folder (as the arena names them), for the
    arms' mean signal in Kendall's τ.
    """
    votes = [v for v in votes if v.left.arm != v.right.arm]
    boot = _VoteBootstrap(votes, n_boot, seed)
    point = boot.strengths(np.ones((1, len(votes))))[0] if votes else np.zeros(0)
    strengths = boot.strengths(boot.counts) if votes else np.zeros((0, 0))
    rows: list[SignalAgreement] = []
    for name, column in SIGNAL_COLUMNS.items():
        scores = image_scores(records, column)
        if not scores:
            continue
        agree, used, tied, unscored = vote_agreement(votes, scores)
        if used.sum() == 0 and tied == 0:
            continue  # present in records, but on none of the voted images
        acc = pairwise_accuracy(agree, used)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc_boot = (boot.counts @ (agree * used)) / (boot.counts @ used) if len(votes) else np.zeros(0)
        acc_low, acc_high = _interval(acc_boot, confidence)
        means = arm_means(records, column, arm_of_image)
        arms = [i for i, a in enumerate(boot.arms) if a in means]
        signal = np.array([means[boot.arms[i]] for i in arms])
        tau = _tau(signal, point[arms]) if len(arms) else float("nan")
        tau_boot = np.array([_tau(signal, s[arms]) for s in strengths]) if len(arms) >= 2 else np.zeros(0)
        tau_low, tau_high = _interval(tau_boot, confidence)
        rows.append(
            SignalAgreement(
                name,
                int(used.sum()),
                tied,
                unscored,
                acc,
                acc_low,
                acc_high,
                tau,
                tau_low,
                tau_high,
                len(arms),
            )
        )
    notes = []
    if not rows:
        notes.append("no automated per-image signal is scored on the voted images (run `bench score`)")
    return Agreement(rows, inter_rater(votes), len(votes), confidence, MIN_VOTES, notes)


def preferred_signal(agreement: Agreement | None, min_votes: int = MIN_VOTES) -> SignalAgreement | None:
    """The signal `auto` should trust: most accurate against >= min_votes scored decisive votes, above 50%."""
    if agreement is None:
        return None
    eligible = [r for r in agreement.rows if r.n_used >= min_votes and r.accuracy > 0.5]
    if not eligible:
        return None
    # Ties in accuracy go to the signal listed first in SIGNAL_COLUMNS (the report's default order).
    return max(eligible, key=lambda r: (r.accuracy, -list(SIGNAL_COLUMNS).index(r.signal)))
