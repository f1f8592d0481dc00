"""FID/KID reference sets: an image folder, a pytorch-fid .npz, another run, or a target of this run.

Reference statistics are computed once per (reference content, Inception
fingerprint) and cached; the content id changes when any reference image does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.parquet as pq

from bench.metrics.cache import atomic_save_npz
from bench.metrics.config import ReferenceConfig
from bench.metrics.errors import MetricsError
from bench.metrics.fid import GaussianStats, gaussian_stats
from bench.metrics.images import bytes_sha256, list_image_files

F32 = npt.NDArray[np.float32]
# (key, path) pairs -> features in the same order; supplied by the scorer (it owns the cache and model).
FeatureFn = Callable[[list[tuple[str, Path]]], F32]


@dataclass(frozen=True)
class ReferenceSet:
    id: str
    stats: GaussianStats
    features: F32 | None  # None for .npz statistics: FID only, no KID


def ok_images(run_dir: Path, target: str | None = None) -> list[tuple[str, Path]]:
    """(image sha256, absolute path) of a run's ok images, optionally of one target."""
    records = run_dir / "records.parquet"
    if not records.is_file():
        raise MetricsError(f"{records} does not exist: not a run directory")
    df = pq.read_table(records, columns=["status", "target", "image_path", "image_sha256"]).to_pandas()
    return images_of(df, run_dir, target)


def images_of(df: pd.DataFrame, run_dir: Path, target: str | None = None) -> list[tuple[str, Path]]:
    rows = df[(df["status"] == "ok") & df["image_path"].notna()]
    if target is not None:
        rows = rows[rows["target"] == target]
    out = []
    for sha, rel in zip(rows["image_sha256"], rows["image_path"], strict=True):
        path = run_dir / str(rel)
        out.append((str(sha) if isinstance(sha, str) and sha else bytes_sha256(path), path))
    return out


def _content_id(kind: str, label: str, keys: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"{kind}:{label}:{digest}"


def load_npz_stats(path: Path) -> GaussianStats:
    """pytorch-fid layout: arrays mu (d,) and sigma (d, d); n is unknown there, so 0."""
    try:
        with np.load(path) as data:
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            n = int(data["n"]) if "n" in data else 0
    except (OSError, KeyError, ValueError) as exc:
        raise MetricsError(
            f"reference statistics {path}: need an .npz with arrays mu and sigma ({exc})"
        ) from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise MetricsError(f"reference statistics {path}: mu {mu.shape} and sigma {sigma.shape} do not match")
    return GaussianStats(mu=mu, sigma=sigma, n=n)


def resolve_reference(
    ref: ReferenceConfig,
    *,
    run_dir: Path,
    run_records: pd.DataFrame,
    fingerprint: str,
    cache_dir: Path,
    features_of: FeatureFn,
) -> ReferenceSet:
    if ref.kind == "npz":
        path = Path(str(ref.path)).expanduser()
        if not path.is_file():
            raise MetricsError(f"metrics.fid.reference.path={ref.path!r}: file not found")
        stats = load_npz_stats(path)
        if stats.mu.shape[0] != 2048:
            raise MetricsError(f"reference statistics {path} are {stats.mu.shape[0]}-d, FID here uses 2048-d")
        return ReferenceSet(id=f"npz:{path.name}:{bytes_sha256(path)[:16]}", stats=stats, features=None)
    items, label, kind = _reference_items(ref, run_dir, run_records)
    if len(items) < 2:
        raise MetricsError(f"reference {kind}:{label} has {len(items)} image(s); FID needs at least 2")
    ref_id = _content_id(kind, label, [k for k, _ in items])
    key = hashlib.sha256(f"{fingerprint}|{ref_id}".encode()).hexdigest()[:32]
    cached = cache_dir / "reference" / f"{key}.npz"
    if cached.is_file():
        with np.load(cached) as data:
            features = np.asarray(data["features"], np.float32)
            stats = GaussianStats(mu=data["mu"], sigma=data["sigma"], n=int(data["n"]))
        if stats.n <= features.shape[1]:
            # Small sets: rebuild the low-rank factor (cheap) so a re-score takes the same exact path.
            stats = gaussian_stats(features)
        return ReferenceSet(id=ref_id, stats=stats, features=features)
    features = features_of(items)
    stats = gaussian_stats(features)
    atomic_save_npz(cached, mu=stats.mu, sigma=stats.sigma, n=np.array(stats.n), features=features)
    return ReferenceSet(id=ref_id, stats=stats, features=features)


def _reference_items(
    ref: ReferenceConfig, run_dir: Path, run_records: pd.DataFrame
) -> tuple[list[tuple[str, Path]], str, str]:
    if ref.kind == "folder":
        folder = Path(str(ref.path)).expanduser()
        if not folder.is_dir():
            raise MetricsError(f"metrics.fid.reference.path={ref.path!r}: folder not found")
        return [(bytes_sha256(p), p) for p in list_image_files(folder)], str(folder.resolve()), "folder"
    if ref.kind == "run":
        other = Path(str(ref.path)).expanduser()
        label = other.name + (f"/{ref.target}" if ref.target else "")
        return ok_images(other, ref.target), label, "run"
    if ref.target not in set(run_records["target"].dropna()):
        raise MetricsError(f"metrics.fid.reference.target={ref.target!r} is not a target of run {run_dir}")
    return images_of(run_records, run_dir, ref.target), str(ref.target), "target"


def describe(ref: ReferenceConfig | None) -> dict[str, Any]:
    return {} if ref is None else {"kind": ref.kind, "path": ref.path, "target": ref.target}
