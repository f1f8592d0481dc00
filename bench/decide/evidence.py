"""The evidence a decision pairs on: per-prompt means over seeds, and bootstrap replicates for
group-level signals (Elo over votes; FID/KID over images)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]
GROUP_KEYS = ("target", "steps", "guidance", "size")


@dataclass(frozen=True)
class Replicates:
    """Bootstrap replicates of a group-level signal: boot[:, j] is group `groups[j]`'s value per replicate,
    all drawn jointly (one resample of votes or images per row), so differences pair correctly."""

    groups: tuple[str, ...]
    estimate: F64
    boot: F64
    n: int  # resampled units: votes, or images
    unit: str  # "votes" | "images"


# group-level signal -> (its replicate list column in metrics.parquet, its summary column)
REPLICATE_COLUMNS = {"fid": ("fid_boot", "fid"), "kid": ("kid_boot", "kid_mean")}


def metric_replicates(summary: pd.DataFrame, metrics: pd.DataFrame | None, name: str) -> Replicates | None:
    """FID or KID replicates over images (bench.metrics.fid_replicates, stored per group in metrics.parquet),
    one column per summary group (NaN: none stored). Runs of a sweep drawn from the same prompts with the
    same seed share their draws; otherwise their groups were resampled independently, which is also valid
    (different images). n is the smallest number of images a group with replicates has."""
    column, value = REPLICATE_COLUMNS[name]
    if metrics is None or metrics.empty or column not in metrics or "group" not in summary:
        return None
    keys = [k for k in GROUP_KEYS if k in summary.columns and k in metrics.columns]
    if not keys:
        return None
    right = metrics[[*keys, column, *(["n"] if "n" in metrics else [])]].drop_duplicates(subset=keys)
    merged = summary[keys].reset_index(drop=True).merge(right, on=keys, how="left")
    lists = [_floats(v) for v in merged[column]]
    sizes = [len(v) for v in lists if len(v)]
    if not sizes:
        return None
    n_boot = min(sizes)
    boot = np.full((n_boot, len(lists)), np.nan)
    for j, v in enumerate(lists):
        if len(v):
            boot[:, j] = v[:n_boot]
    counts = merged["n"] if "n" in merged else pd.Series(np.nan, index=merged.index)
    n = int(min((float(c) for c, v in zip(counts, lists, strict=True) if len(v) and pd.notna(c)), default=0))
    estimate = pd.to_numeric(summary[value], errors="coerce").to_numpy(dtype=np.float64)
    return Replicates(tuple(str(g) for g in summary["group"]), estimate, boot, n, "images")


def _floats(value: object) -> F64:
    if value is None or isinstance(value, float | int):
        return np.array([], dtype=np.float64)
    return np.asarray(list(value), dtype=np.float64)  # type: ignore[call-overload]


def group_of_records(records: pd.DataFrame, summary: pd.DataFrame) -> pd.Series:
    """The summary's `group` label for each record (NaN keys match NaN keys, as in a pandas merge)."""
    keys = [k for k in GROUP_KEYS if k in records.columns and k in summary.columns]
    if not keys or "group" not in summary:
        return pd.Series([None] * len(records), index=records.index, dtype=object)
    right = summary[[*keys, "group"]].drop_duplicates(subset=keys)
    merged = records[keys].reset_index(drop=True).merge(right, on=keys, how="left")
    return pd.Series(merged["group"].to_numpy(dtype=object), index=records.index, dtype=object)


def prompt_table(
    records: pd.DataFrame, summary: pd.DataFrame, column: str, groups: Sequence[str]
) -> pd.DataFrame:
    """Prompts x groups: each group's mean score per prompt over its seeds and images (NaN: not answered)."""
    if column not in records:
        return pd.DataFrame(columns=list(groups), dtype=float)
    ok = records[(records["status"] == "ok") & records[column].notna()]
    labelled = pd.DataFrame(
        {"prompt_id": ok["prompt_id"].astype(str), "_group": group_of_records(ok, summary), "v": ok[column]}
    )
    labelled = labelled[labelled["_group"].isin(list(groups))]
    table = labelled.groupby(["prompt_id", "_group"], sort=True)["v"].mean().unstack("_group")
    return table.reindex(columns=list(groups)).astype(float)


def categories_of(records: pd.DataFrame) -> dict[str, str]:
    """prompt_id -> category ("(none)" when the suite has none)."""
    if "category" not in records:
        return {}
    pairs = records[["prompt_id", "category"]].drop_duplicates("prompt_id")
    return {str(p): ("(none)" if pd.isna(c) else str(c)) for p, c in pairs.itertuples(index=False)}
