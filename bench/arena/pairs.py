"""Which two images to show next: uncertain arm pairs first, never the same image pair twice per rater.

An arm is a summary group (target and settings). For the next comparison the
scheduler weighs every pair of arms that share a prompt by how much a vote would
still teach: p(1-p) / (1 + votes so far), with p the current Bradley–Terry win
probability. Close, rarely compared pairs come first; lopsided, well-measured ones
rarely (but not never) come back. Within the chosen arm pair, the prompt, the
images (seeds, repeats) and the sides are random. With a baseline (`bench rate PATH
--against BASELINE`), AGAINST_SHARE of the offers pit a group against the same group of the
baseline on the same prompt: the comparison the gate's Elo check needs.

On a study with a verdict (`bench rate PATH --pairs settle`, the default there), the arm pairs come
from bench.arena.settle first: the pairs that settle the recommendation, until it is settled.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bench.arena.ratings import fit_bradley_terry
from bench.arena.votes import Side, Vote
from bench.group_names import DEFAULT_GROUP_KEYS, group_label

if TYPE_CHECKING:
    from bench.arena.settle import Settler

EXPLORE = 0.02  # floor on a pair's weight: a lopsided pair still gets an occasional check
# With `--against BASELINE`, the share of offers that pit a candidate group against the same group of
# the baseline (same prompt): the gate's Elo check rests on those votes. The rest keep the pool connected.
AGAINST_SHARE = 0.8


@dataclass(frozen=True)
class Image:
    sha256: str
    relpath: str  # relative to `root`
    arm: str
    target: str
    settings: dict[str, Any]
    run_path: str
    seed: float | None
    root: Path | None = None  # the folder the image must stay inside; None: the folder rated


@dataclass(frozen=True)
class Offer:
    """A pair served to a rater and not yet voted on."""

    token: str
    prompt_id: str
    prompt: str
    left: Image
    right: Image

    @property
    def pair(self) -> frozenset[str]:
        return frozenset((self.left.sha256, self.right.sha256))

    def side(self, image: Image) -> Side:
        return Side(image.arm, image.sha256, image.target, image.settings, image.run_path, image.seed)


def _none_if_nan(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def arm_label(key: dict[str, Any]) -> str:
    """What the rater is told after voting; joins use the key itself (target and settings)."""
    return group_label(key)


BASELINE_PREFIX = "baseline: "


def arm_images(
    records: pd.DataFrame, baseline: pd.DataFrame | None = None, baseline_root: Path | None = None
) -> dict[str, dict[str, list[Image]]]:
    """prompt_id -> arm -> its ok images of that prompt.

    With `baseline` (`bench rate PATH --against BASELINE`), the baseline's groups join as their own
    arms, labelled "baseline: ...", so the same target before and after a change can be compared.
    """
    out: dict[str, dict[str, list[Image]]] = defaultdict(lambda: defaultdict(list))
    _add_images(out, records, "", None)
    if baseline is not None and baseline_root is not None:
        _add_images(out, baseline, BASELINE_PREFIX, baseline_root.resolve())
    return {p: dict(arms) for p, arms in out.items()}


def _add_images(
    out: dict[str, dict[str, list[Image]]], records: pd.DataFrame, prefix: str, root: Path | None
) -> None:
    ok = records[(records["status"] == "ok") & records["image_sha256"].notna()]
    keys = [k for k in DEFAULT_GROUP_KEYS if k in ok.columns]
    relcol = "image_relpath" if "image_relpath" in ok.columns else "image_path"
    for row in ok.to_dict("records"):
        key = {k: _none_if_nan(row.get(k)) for k in keys}
        settings = {k: v for k, v in key.items() if k != "target"}
        arm = prefix + arm_label(key)
        seed = _none_if_nan(row.get("seed"))
        run_path = str(row.get("run_path") or "")
        out[str(row["prompt_id"])][arm].append(
            Image(
                str(row["image_sha256"]),
                str(row[relcol]),
                arm,
                str(row["target"]),
                settings,
                run_path if root is None else f"{BASELINE_PREFIX}{root / run_path}",
                None if seed is None else float(seed),
                root,
            )
        )


def information_weights(
    n: npt.NDArray[np.float64], w: npt.NDArray[np.float64], idx: npt.NDArray[np.intp], k: int
) -> npt.NDArray[np.float64]:
    """p(1-p)/(1 + n) per arm pair (votes n, first arm's points w, arm indices idx), p from a point
    Bradley–Terry fit: what a vote would still teach. The uncertainty scheduler's weights."""
    beta = fit_bradley_terry(n[None, :], w[None, :], idx, k)[0]
    p = 1.0 / (1.0 + np.exp(-(beta[idx[:, 0]] - beta[idx[:, 1]])))
    return np.asarray(np.maximum(p * (1.0 - p), EXPLORE) / (1.0 + n), dtype=np.float64)


@dataclass
class Scheduler:
    images: dict[str, dict[str, list[Image]]]
    prompts: dict[str, str]
    rng: np.random.Generator
    offers: dict[str, Offer] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # rater -> token of the unanswered offer
    settler: Settler | None = None  # `--pairs settle`: bench.arena.settle; None: uncertainty only

    @classmethod
    def from_records(
        cls,
        records: pd.DataFrame,
        seed: int | None = None,
        baseline: pd.DataFrame | None = None,
        baseline_root: Path | None = None,
    ) -> Scheduler:
        prompts = {str(p): str(t) for p, t in zip(records["prompt_id"], records["prompt"], strict=True)}
        images = arm_images(records, baseline, baseline_root)
        return cls(images, prompts, np.random.default_rng(seed))

    @property
    def arms(self) -> list[str]:
        return sorted({a for arms in self.images.values() for a in arms})

    def arm_pairs(self) -> list[tuple[str, str]]:
        """Pairs of arms that can be compared: both have an image of at least one prompt."""
        found: set[tuple[str, str]] = set()
        for arms in self.images.values():
            found.update(itertools.combinations(sorted(arms), 2))
        return sorted(found)

    def _candidates(self, a: str, b: str, seen: set[frozenset[str]]) -> list[tuple[str, Image, Image]]:
        out = []
        for pid, arms in self.images.items():
            if a in arms and b in arms:
                for x, y in itertools.product(arms[a], arms[b]):
                    if x.sha256 != y.sha256 and frozenset((x.sha256, y.sha256)) not in seen:
                        out.append((pid, x, y))
        return out

    def remaining(self, seen: set[frozenset[str]]) -> int:
        """Image pairs this rater has not seen yet (what the progress counter counts down)."""
        return sum(len(self._candidates(a, b, seen)) for a, b in self.arm_pairs())

    def weights(self, votes: list[Vote]) -> dict[tuple[str, str], float]:
        """p(1-p)/(1 + n) per arm pair, from a point fit of the votes so far (no bootstrap)."""
        pairs = self.arm_pairs()
        arms = self.arms
        index = {a: i for i, a in enumerate(arms)}
        n = np.zeros(len(pairs))
        w = np.zeros(len(pairs))
        where = {p: i for i, p in enumerate(pairs)}
        for v in votes:
            a, b = v.left.arm, v.right.arm
            key = (a, b) if a < b else (b, a)
            if key in where:
                n[where[key]] += 1
                w[where[key]] += v.score_left if key[0] == a else 1.0 - v.score_left
        if len(pairs) == 0:
            return {}
        idx = np.array([[index[a], index[b]] for a, b in pairs], dtype=np.intp).reshape(-1, 2)
        info = information_weights(n, w, idx, len(arms))
        return {pair: float(x) for pair, x in zip(pairs, info, strict=True)}

    def next_offer(self, rater: str, votes: list[Vote]) -> Offer | None:
        """The rater's unanswered offer if any, else a new one; None when nothing unseen is left."""
        token = self.pending.get(rater)
        if token in self.offers:
            return self.offers[token]
        # Besides the rater's own past pairs, the pairs waiting for someone else's vote right now: two
        # raters at once never get the same pair (a pair held by a rater who left stays held until they vote).
        seen = {v.pair for v in votes if v.rater == rater} | {o.pair for o in self.offers.values()}
        # On a study (`--pairs settle`): the pairs that settle the recommendation, until it is settled.
        focus = self.settler.weights() if self.settler is not None else None
        if focus:
            offer = self._offer_from(focus, seen, rater)
            if offer is not None:
                return offer
        weights = self.weights(votes)
        counterparts = {p: w for p, w in weights.items() if self._is_counterpart(p)}
        if counterparts and self.rng.random() < AGAINST_SHARE:
            offer = self._offer_from(counterparts, seen, rater)
            if offer is not None:
                return offer
        return self._offer_from(weights, seen, rater)

    @staticmethod
    def _is_counterpart(pair: tuple[str, str]) -> bool:
        """A candidate group and the same group of the baseline (`--against`)."""
        a, b = pair
        return b == BASELINE_PREFIX + a or a == BASELINE_PREFIX + b

    def _offer_from(
        self, weights: dict[tuple[str, str], float], seen: set[frozenset[str]], rater: str
    ) -> Offer | None:
        """An unseen image pair from an arm pair drawn by weight; None when none of them has one left."""
        weights = dict(weights)
        while weights:
            pairs = list(weights)
            probs = np.array([weights[p] for p in pairs])
            choice = pairs[int(self.rng.choice(len(pairs), p=probs / probs.sum()))]
            candidates = self._candidates(*choice, seen)
            if not candidates:
                del weights[choice]
                continue
            pid, x, y = candidates[int(self.rng.integers(len(candidates)))]
            left, right = (x, y) if self.rng.random() < 0.5 else (y, x)
            offer = Offer(secrets.token_urlsafe(12), pid, self.prompts.get(pid, ""), left, right)
            self.offers[offer.token] = offer
            self.pending[rater] = offer.token
            return offer
        return None

    def answer(self, rater: str, token: str) -> Offer | None:
        """Take the offer `token` off the rater's pending slot; None if it is unknown or not theirs."""
        if self.pending.get(rater) != token:
            return None
        del self.pending[rater]
        return self.offers.pop(token, None)
