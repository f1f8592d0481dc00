"""The decision rule: summary + per-image scores in, a Verdict out.

1. Constraints (cost, p90 latency, refusal rate, ok rate; point estimates) split the groups into
   feasible and excluded; a group without a score on the signal is not a contender.
2. Best: the feasible group with the highest value of the signal.
3. Non-inferior set: group g is in it when it is shown not worse than *every* other contender h by
   the margin M: H0 mean(q_g - q_h) <= -M is rejected by a one-sided paired BCa test on per-prompt
   means (bench.decide.paired). Testing against every contender, not only the observed best,
   keeps the error rate when noise makes a worse group look best; g's p-value is its largest
   against any h (an intersection-union test), and Holm's correction runs over the contenders.
4. Recommendation: the cheapest group of that set (unknown cost last), ties by p90 latency.

Elo and FID/KID have no per-prompt pairing: their differences come from joint bootstrap
replicates (Elo: over votes; FID/KID: over images, drawn by prompt with one draw for every group and
the reference's statistics fixed, bench.metrics.fid_replicates), with the percentile bootstrap's p-value.
tests/test_decide_simulation.py measures the rule's error rates; docs/decision.md states them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from bench.decide.evidence import Replicates, categories_of, prompt_table
from bench.decide.paired import PairTest, holm, pair_tests, prompts_to_decide
from bench.decide.settings import Constraints, DecideSettings
from bench.decide.signals import QUALITY_ORDER, SHORT_NAME, Signal, signal
from bench.metrics.fingerprint import is_random_init

VERDICT_FILE = "verdict.json"
# status -> `bench recommend` exit code
EXIT_CODES = {"recommended": 0, "excluded": 1, "undecided": 1, "no_signal": 2}
NO_SIGNAL_HINT = (
    "rate images with `bench rate RUN_DIR`, run the VLM judge (metrics.judge.enabled=true; offline: "
    "`bench emulate chat`), or provide CLIP / PickScore / HPSv2 weights"
)


@dataclass(frozen=True)
class GroupVerdict:
    group: str
    quality: float
    quality_low: float
    quality_high: float
    cost_per_1k_usd: float
    latency_p90_s: float
    refusal_rate: float
    ok_rate: float
    excluded: str  # "" when it meets the constraints, else why not
    diff_to_best: float = math.nan  # this group's value minus the best's (higher-is-better units)
    diff_low: float = math.nan  # one-sided bounds at the verdict's confidence
    diff_high: float = math.nan
    n_pairs: int = 0  # prompts shared with the best (votes / images for Elo, FID/KID)
    p_adjusted: float = math.nan  # Holm-adjusted p of "worse than every other contender by >= margin"
    non_inferior: bool = False


@dataclass(frozen=True)
class CategoryDiff:
    category: str
    n: int  # prompts of this category both groups answered
    diff: float  # recommended minus best
    low: float
    high: float


@dataclass(frozen=True)
class Verdict:
    status: str  # recommended | excluded | undecided | no_signal
    reason: str  # one line: why this outcome
    signal: str  # the signal's name ("" when none)
    signal_label: str
    fingerprint: str
    emulated: bool  # the signal's judge is the in-process chat emulator, not a VLM
    margin: float
    margin_source: str  # default | set
    confidence: float
    method: str
    constraints: dict[str, float | None]
    n: int  # shared prompts (or votes, images) of the widest comparison
    unit: str  # prompts | votes | images
    best: str | None = None
    recommended: str | None = None
    groups: list[GroupVerdict] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    categories: list[CategoryDiff] = field(default_factory=list)
    category_pair: tuple[str, str] | None = None  # (recommended, best) when they differ
    notes: list[str] = field(default_factory=list)  # e.g. a better-ranked signal skipped for too few votes

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def non_inferior(self) -> list[str]:
        return [g.group for g in self.groups if g.non_inferior]

    @property
    def signal_name(self) -> str:
        """The signal as tables and plots name it, e.g. "judge adherence (emulated judge)"."""
        if not self.signal:
            return "no quality signal"
        return SHORT_NAME[self.signal] + (" (emulated judge)" if self.emulated else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["non_inferior"] = self.non_inferior
        out["exit_code"] = self.exit_code
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        d = {k: v for k, v in data.items() if k not in ("non_inferior", "exit_code")}
        d["groups"] = [GroupVerdict(**{k: _nan(v) for k, v in g.items()}) for g in d.get("groups", [])]
        d["categories"] = [
            CategoryDiff(**{k: _nan(v) for k, v in c.items()}) for c in d.get("categories", [])
        ]
        pair = d.get("category_pair")
        d["category_pair"] = tuple(pair) if pair else None
        return cls(**d)


def _nan(v: Any) -> Any:
    return math.nan if v is None else v


def judge_is_emulated(fingerprint: str | None) -> bool:
    """Whether judge scores came from the chat emulator (pixel measurements), not a VLM: its fingerprint
    carries the "emulated" stamp (bench.judge), or names the emulator's model or in-process endpoint."""
    fp = str(fingerprint or "")
    return any(mark in fp for mark in ("emulated", "chat-emulator", "inprocess-emulator"))


def _value(summary: pd.DataFrame, column: str) -> pd.Series:
    if column and column in summary:
        return pd.to_numeric(summary[column], errors="coerce").astype(float)
    return pd.Series(np.nan, index=summary.index, dtype=float)


def _exclusion(row: Mapping[str, Any], c: Constraints) -> str:
    checks: list[tuple[float | None, str, str, bool, Callable[[float], str]]] = [
        (c.max_cost_per_1k, "cost_per_1k_usd", "cost", True, lambda v: f"${v:,.2f}/1k"),
        (c.max_p90_latency, "latency_p90_s", "p90 latency", True, lambda v: f"{v:.3g} s"),
        (c.max_refusal_rate, "refusal_rate", "refusal rate", True, lambda v: f"{100 * v:.0f}%"),
        (c.min_ok_rate, "ok_rate", "ok rate", False, lambda v: f"{100 * v:.0f}%"),
    ]
    why = []
    for limit, column, name, is_max, fmt in checks:
        if limit is None:
            continue
        v = float(row.get(column, math.nan))
        if math.isnan(v):
            why.append(f"{name} unknown")
        elif (v > limit) if is_max else (v < limit):
            why.append(f"{name} {fmt(v)} {'>' if is_max else '<'} {fmt(limit)}")
    return "; ".join(why)


def _unusable(summary: pd.DataFrame, name: str) -> str:
    """Why this signal cannot carry a choice in this run ("" when it can)."""
    sig = signal(name)
    values = _value(summary, sig.column)
    if not values.notna().any():
        return f"{sig.short} has no values in this run"
    fps = summary[sig.fingerprint_column].dropna() if sig.fingerprint_column in summary else pd.Series([])
    if any(is_random_init(str(f)) for f in fps):
        return f"{sig.short} comes from random-init weights: it measures nothing"
    refs = summary["reference_id"].dropna() if "reference_id" in summary else pd.Series([])
    if name in ("fid", "kid") and any(str(r).startswith("target:") for r in refs):
        return f"{sig.short} is measured against one of the run's own targets: likeness to it, not quality"
    if name in ("fid", "kid") and refs.nunique() > 1:
        return f"{sig.short} is measured against {refs.nunique()} different references here: not comparable"
    return ""


def choose_signal(summary: pd.DataFrame, wanted: str) -> tuple[Signal | None, str]:
    """The signal the decision rests on (auto: the best usable one) or None and why not, in one line."""
    if wanted != "auto":
        why = _unusable(summary, wanted)
        return (
            (None, f"cannot recommend on report.quality_metric={wanted}: {why}")
            if why
            else (signal(wanted), "")
        )
    refused = []
    for name in QUALITY_ORDER:
        why = _unusable(summary, name)
        if not why:
            return signal(name), ""
        if "no values" not in why:
            refused.append(why)
    if refused:
        return None, "no quality signal can carry a choice: " + "; ".join(
            refused
        ) + f" (to get one: {NO_SIGNAL_HINT})"
    return None, f"no quality signal in this run (to get one: {NO_SIGNAL_HINT})"


def _replicate_tests(
    rep: Replicates, groups: list[str], sign: float, margin: float, conf: float
) -> dict[tuple[int, int], PairTest]:
    """Pair tests from joint bootstrap replicates: percentile bounds, p = share of replicates at or below -margin."""
    col = {g: i for i, g in enumerate(rep.groups)}
    out: dict[tuple[int, int], PairTest] = {}
    for a, ga in enumerate(groups):
        for b, gb in enumerate(groups):
            if a == b:
                continue
            if ga not in col or gb not in col:
                out[(a, b)] = PairTest(0, math.nan, math.nan, math.nan, math.nan, math.nan)
                continue
            est = sign * float(rep.estimate[col[ga]] - rep.estimate[col[gb]])
            d = sign * (rep.boot[:, col[ga]] - rep.boot[:, col[gb]])
            d = d[np.isfinite(d)]
            if d.size == 0:
                out[(a, b)] = PairTest(rep.n, est, math.nan, math.nan, math.nan, math.nan)
                continue
            if rep.unit == "images":
                # A resample repeats images, so its covariance has fewer distinct images than the
                # sample's and its FID sits higher: a shift that is not uncertainty. The replicates
                # are re-centred on the estimate (their median on it) and only their spread is used.
                d = d - float(np.median(d)) + est
            p = float((np.sum(d <= -margin) + 0.5) / (d.size + 1))
            low, high = np.quantile(d, [1 - conf, conf])
            # sd of the estimate scaled to one unit, so "more votes" uses the same formula as prompts
            out[(a, b)] = PairTest(rep.n, est, float(low), float(high), p, float(d.std()) * math.sqrt(rep.n))
    return out


def _category_view(
    table: pd.DataFrame,
    cats: Mapping[str, str],
    rec: str,
    best: str,
    confidence: float,
    limit: int,
    seed: int,
) -> list[CategoryDiff]:
    """Per category, the recommended group minus the best on shared prompts, BCa interval (scipy)."""
    shared = table[[rec, best]].dropna()
    if shared.empty or not cats:
        return []
    d = (shared[rec] - shared[best]).rename("d").to_frame()
    d["category"] = [cats.get(str(p), "(none)") for p in d.index]
    out = []
    for cat, grp in d.groupby("category", sort=True):
        v = grp["d"].to_numpy(float)
        low = high = math.nan
        if len(v) >= 3 and np.ptp(v) > 0:
            res = bootstrap((v,), np.mean, confidence_level=confidence, method="BCa", n_resamples=999,
                            random_state=np.random.default_rng(seed))  # fmt: skip
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        elif len(v) >= 1 and np.ptp(v) == 0:
            low = high = float(v[0])
        out.append(CategoryDiff(str(cat), len(v), float(v.mean()), low, high))
    out.sort(key=lambda c: (-abs(c.diff), c.category))
    return out[:limit]


def decide(
    summary: pd.DataFrame,
    records: pd.DataFrame | None = None,
    settings: DecideSettings | None = None,
    *,
    replicates: Mapping[str, Replicates] | None = None,
) -> Verdict:
    """The verdict for one run or sweep. `summary`: bench.report.summary's table (one row per group);
    `records`: the per-image records with scores (for per-prompt pairing); `replicates`: bootstrap
    replicates for group-level signals by signal name ("arena_elo", "fid", "kid").

    With signal "auto", the signals are tried best first (QUALITY_ORDER); one that has values but
    too few prompts or votes to carry a choice is skipped, with a note, for the next one."""
    st = settings or DecideSettings()
    if st.signal == "auto":
        skipped: list[str] = []
        first: Verdict | None = None
        for name in QUALITY_ORDER:
            if _unusable(summary, name):
                continue
            got = decide(summary, records, replace(st, signal=name), replicates=replicates)
            if got.status != "no_signal":
                return replace(got, notes=[*skipped, *got.notes]) if skipped else got
            first = first or got
            skipped.append(f"{SHORT_NAME[name]} not used: {got.reason}")
        if first is not None:
            return replace(first, notes=skipped[1:])
    replicates = replicates or {}
    sig, why = choose_signal(summary, st.signal)
    base: dict[str, Any] = {
        "confidence": st.confidence,
        "constraints": st.constraints.as_dict(),
        "method": "",
    }
    if sig is None:
        return Verdict("no_signal", why, "", "", "", False, math.nan, "", n=0, unit="prompts", **base)
    margin, source = st.margin(sig.name)
    fps = sorted({str(f) for f in summary.get(sig.fingerprint_column, pd.Series(dtype=object)).dropna()})
    fingerprint = ";".join(fps)
    emulated = sig.name.startswith("judge_") and judge_is_emulated(fingerprint)
    sign = 1.0 if sig.higher_is_better else -1.0
    quality = _value(summary, sig.column) * sign
    low, high = _value(summary, sig.low) * sign, _value(summary, sig.high) * sign
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in summary.to_dict("records")]
    excluded = [_exclusion(r, st.constraints) for r in rows]
    labels = [str(r["group"]) for r in rows]
    contenders = [
        g for g, ex, q in zip(labels, excluded, quality, strict=True) if not ex and not math.isnan(q)
    ]
    common = {
        "signal": sig.name, "signal_label": sig.label, "fingerprint": fingerprint, "emulated": emulated,
        "margin": margin, "margin_source": source, **base,
    }  # fmt: skip

    def group_rows(
        tests: Mapping[str, PairTest], padj: Mapping[str, float], best: str | None
    ) -> list[GroupVerdict]:
        out = []
        for i, r in enumerate(rows):
            g = labels[i]
            t = tests.get(g) if g != best else None
            p = padj.get(g, math.nan)
            lo_hi = sorted((sign * float(low.iloc[i]), sign * float(high.iloc[i])))
            out.append(
                GroupVerdict(
                    group=g,
                    quality=sign * float(quality.iloc[i]),
                    quality_low=lo_hi[0],
                    quality_high=lo_hi[1],
                    cost_per_1k_usd=float(r.get("cost_per_1k_usd", math.nan)),
                    latency_p90_s=float(r.get("latency_p90_s", math.nan)),
                    refusal_rate=float(r.get("refusal_rate", math.nan)),
                    ok_rate=float(r.get("ok_rate", math.nan)),
                    excluded=excluded[i],
                    diff_to_best=0.0 if g == best else (t.diff if t else math.nan),
                    diff_low=t.low if t else math.nan,
                    diff_high=t.high if t else math.nan,
                    n_pairs=t.n if t else 0,
                    p_adjusted=p,
                    non_inferior=bool(not math.isnan(p) and p <= 1.0 - st.confidence),
                )
            )
        return out

    if not contenders:
        what = "constraints exclude every group" if any(excluded) else "no group has a score on the signal"
        detail = "; ".join(f"{g}: {e}" for g, e in zip(labels, excluded, strict=True) if e)
        return Verdict("excluded", f"{what} ({st.constraints.describe()})" + (f": {detail}" if detail else ""),
                       n=0, unit="prompts", groups=group_rows({}, {}, None), **common)  # fmt: skip
    qmap = {g: float(quality.iloc[labels.index(g)]) for g in contenders}
    best = max(contenders, key=lambda g: (qmap[g], -contenders.index(g)))
    # --- pair tests among the contenders
    table = pd.DataFrame()
    if sig.per_image_column is not None:
        if records is None:
            return Verdict("no_signal", f"{sig.short} needs the per-image records to pair prompts", n=0,
                           unit="prompts", **common)  # fmt: skip
        table = prompt_table(records, summary, sig.per_image_column, contenders)
        pairs = pair_tests(table.to_numpy(float), margin, n_boot=st.n_boot, confidence=st.confidence,
                           seed=st.seed, min_n=st.min_prompts)  # fmt: skip
        unit, minimum = "prompts", st.min_prompts
        method = (f"one-sided paired BCa bootstrap ({st.n_boot} replicates) on per-prompt means over seeds, "
                  f"against every other contender; Holm over {len(contenders)} contenders")  # fmt: skip
    else:
        rep = replicates.get(sig.name)
        if rep is None:
            fix = ("; `bench score RUN_DIR` stores them (FID: groups of at most 768 images)"
                   if sig.name in ("fid", "kid") else "")  # fmt: skip
            return Verdict("no_signal", f"{sig.short} has no bootstrap replicates in this run: no interval to decide on{fix}",
                           n=0, unit="prompts", **common)  # fmt: skip
        pairs = _replicate_tests(rep, contenders, sign, margin, st.confidence)
        unit, minimum = rep.unit, (st.min_votes if rep.unit == "votes" else 2 * st.min_prompts)
        how = (" (images drawn by prompt, one draw for every group; the reference's statistics fixed)"
               if rep.unit == "images" else "")  # fmt: skip
        method = (f"percentile bootstrap over {rep.unit}{how} ({rep.boot.shape[0]} joint replicates), one-sided, "
                  f"against every other contender; Holm over {len(contenders)} contenders")  # fmt: skip
    common["method"] = method
    n_max = max((t.n for t in pairs.values()), default=0)
    if len(contenders) == 1 and not table.empty:
        n_max = int(table.notna().sum().max())  # one group: how many prompts it was scored on
    if len(contenders) > 1 and n_max < minimum:
        return Verdict("no_signal", f"only {n_max} {unit} shared between groups: at least {minimum} are needed to "
                       f"recommend on {sig.short} (report.decide.min_{'votes' if unit == 'votes' else 'prompts'})",
                       n=n_max, unit=unit, best=best, groups=group_rows({}, {}, best), **common)  # fmt: skip
    index = {g: i for i, g in enumerate(contenders)}
    # Intersection-union: g is non-inferior only if shown so against every other contender.
    raw = np.array([max((pairs[(index[g], index[h])].p for h in contenders if h != g), default=0.0)
                    for g in contenders])  # fmt: skip
    padj_arr = holm(raw)
    padj = {g: float(padj_arr[i]) for i, g in enumerate(contenders)}
    vs_best = {g: pairs[(index[g], index[best])] for g in contenders if g != best}
    groups = group_rows(vs_best, padj, best)
    in_set = [gv for gv in groups if gv.non_inferior]
    alpha = (1.0 - st.confidence) / max(1, len(contenders))
    short = {"prompts": "prompts", "votes": "votes", "images": "images"}[unit]

    def undecided_line(g: str) -> str:
        t = vs_best[g]
        if math.isnan(t.p):
            return f"{g} and {best} share only {t.n} {short}: at least {minimum} are needed to compare them"
        more = prompts_to_decide(t.diff, t.sd, t.n, margin, alpha)
        tail = f"about {more} more {short} would decide it" if more > 0 else "more data would decide it"
        return f"{g} and {best} cannot be separated at margin {margin:g}: {tail}"

    def straddles(g: str) -> bool:
        t = vs_best[g]
        return math.isnan(t.p) or (t.low <= -margin <= t.high) or t.low <= -margin < t.diff

    cost_key = _cost_order(groups)
    straddlers = sorted((gv for gv in groups if gv.group in vs_best and not gv.non_inferior and straddles(gv.group)),
                        key=cost_key)  # fmt: skip
    if not in_set:
        return Verdict("undecided", f"no group is shown within {margin:g} of every other contender on {sig.short}; "
                       f"the best so far is {best}", n=n_max, unit=unit, best=best, groups=groups,
                       undecided=[undecided_line(gv.group) for gv in straddlers][:5], **common)  # fmt: skip
    rec_row = sorted(in_set, key=cost_key)[0]
    rec = rec_row.group
    # Only cheaper groups left undecided could change the recommendation.
    undecided = [undecided_line(gv.group) for gv in straddlers if cost_key(gv) < cost_key(rec_row)]
    cats: list[CategoryDiff] = []
    pair: tuple[str, str] | None = None
    if rec != best and not table.empty and records is not None and st.max_categories > 0:
        pair = (rec, best)
        cats = _category_view(
            table, categories_of(records), rec, best, st.confidence, st.max_categories, st.seed
        )
    why = (f"{rec} is the cheapest of {len(in_set)} group(s) shown within {margin:g} of every other contender "
           f"on {sig.short}" + ("" if rec != best else " (it is also the best)"))  # fmt: skip
    return Verdict("recommended", why, n=n_max, unit=unit, best=best, recommended=rec, groups=groups,
                   undecided=undecided[:5], categories=cats, category_pair=pair, **common)  # fmt: skip


def _cost_order(groups: list[GroupVerdict]) -> Callable[[GroupVerdict], tuple[float, float, float, str]]:
    """Cheapest first (unknown cost last), then lower p90 latency, then higher quality, then name."""

    def key(g: GroupVerdict) -> tuple[float, float, float, str]:
        cost = g.cost_per_1k_usd if not math.isnan(g.cost_per_1k_usd) else math.inf
        lat = g.latency_p90_s if not math.isnan(g.latency_p90_s) else math.inf
        return (cost, lat, -g.quality if not math.isnan(g.quality) else math.inf, g.group)

    return key
