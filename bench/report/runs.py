"""Load a run folder, or a sweep folder (a Hydra multirun: one run folder per job), as one table.

Image paths are rewritten relative to the folder given, so a report written
there links every image whether it sits in one run or in a sweep's jobs.
Scores computed differently (different CLIP or Inception fingerprints) are never
merged: loading refuses with FingerprintMismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from bench.metrics.errors import FingerprintMismatch
from bench.metrics.fingerprint import require_same
from bench.store import RECORDS, BrokenRecords

METRICS = "metrics.parquet"


class NotARunFolder(FileNotFoundError):
    """The path holds no records.parquet, neither directly nor in a sweep's job folders."""


def find_run_dirs(path: Path) -> list[Path]:
    """[path] for a run folder; the job folders (any depth ≤ 2) holding records.parquet for a sweep."""
    path = Path(path)
    if (path / RECORDS).is_file():
        return [path]
    if not path.is_dir():
        raise NotARunFolder(f"{path} does not exist")
    found = sorted({p.parent for pattern in (f"*/{RECORDS}", f"*/*/{RECORDS}") for p in path.glob(pattern)})
    if not found:
        raise NotARunFolder(
            f"{path} has no {RECORDS}, nor do its subfolders: is it a run or sweep folder (made by `bench run`)?"
        )
    return found


def read_records(path: Path) -> pd.DataFrame:
    """records.parquet as a DataFrame; BrokenRecords (saying how to rebuild it) when it is damaged."""
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BrokenRecords(
            path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None


def _check_fingerprints(values: pd.Series, what: str) -> str | None:
    present = values.dropna()
    if present.empty:
        return None
    return require_same((str(v) for v in present), what)


@dataclass(frozen=True)
class RunSet:
    root: Path
    run_dirs: tuple[Path, ...]
    records: pd.DataFrame
    metrics: pd.DataFrame | None
    clip_fingerprint: str | None
    fid_fingerprint: str | None

    @property
    def is_sweep(self) -> bool:
        return len(self.run_dirs) > 1 or self.run_dirs[0] != self.root

    @classmethod
    def load(cls, path: Path) -> RunSet:
        root = Path(path)
        run_dirs = find_run_dirs(root)
        frames, metric_frames = [], []
        for run_dir in run_dirs:
            df = read_records(run_dir / RECORDS)
            rel = run_dir.relative_to(root).as_posix() if run_dir != root else ""
            df["run_path"] = rel
            df["image_relpath"] = [
                None if p is None or pd.isna(p) else (f"{rel}/{p}" if rel else str(p))
                for p in df["image_path"]
            ]
            frames.append(df)
            if (run_dir / METRICS).is_file():
                m = pd.read_parquet(run_dir / METRICS)
                m["run_path"] = rel
                metric_frames.append(m)
        records = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        metrics = pd.concat(metric_frames, ignore_index=True) if metric_frames else None
        clip_fp = _check_fingerprints(
            records.get("clip_fingerprint", pd.Series(dtype=object)), f"CLIP scores in {root}"
        )
        fid_fp = None
        if metrics is not None and "fid_fingerprint" in metrics:
            fid_fp = _check_fingerprints(metrics["fid_fingerprint"], f"FID/KID in {root}")
            if "reference_id" in metrics and metrics["reference_id"].dropna().nunique() > 1:
                refs = sorted(str(r) for r in metrics["reference_id"].dropna().unique())
                raise FingerprintMismatch(
                    f"FID/KID in {root}: runs use different references: {'; '.join(refs)}"
                )
        return cls(root, tuple(run_dirs), records, metrics, clip_fp, fid_fp)
