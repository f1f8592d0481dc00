"""Where the Hydra configs live, and composing them outside `bench run` (estimate, ls, score)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bench.errors import ConfigError

# configs/ sits beside the package in a checkout (the supported install is `pip install -e .`);
# T2I_BENCH_CONFIG_DIR points elsewhere, e.g. for a wheel install or a team's own configs.
CONFIG_DIR = Path(os.environ.get("T2I_BENCH_CONFIG_DIR", Path(__file__).resolve().parents[2] / "configs"))
CONFIG_NAME = "config"


FOLDER_NAME_MAX = 80  # characters of a multirun job folder's name after its number


def slug(text: str) -> str:
    """A folder-name-safe version of Hydra's override_dirname, for multirun job folders.

    A name longer than FOLDER_NAME_MAX is cut and ends in a short hash of the whole text, so two
    jobs whose names differ only past the cut still get names that say they differ.
    """
    unbracketed = re.sub(r"[\[\]'\"{}]", "", text)  # sweep.steps=[8] -> sweep.steps=8
    cleaned = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", unbracketed).strip("_")
    if len(cleaned) > FOLDER_NAME_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: FOLDER_NAME_MAX - 9]}~{digest}"
    return cleaned or "default"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("bench_slug"):
        OmegaConf.register_new_resolver("bench_slug", slug)


def override_problem(exc: Exception) -> str:
    """Hydra's error as one line, with the fix for the most common case (a key that does not exist)."""
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if first_line.startswith("Could not override") or (
        "Key '" in first_line and "is not in struct" in first_line
    ):
        return (
            f"{first_line} No such key: check its spelling (`bench run --cfg job` prints every key), "
            "or add a new key with +key=value"
        )
    return first_line


def plain_config(cfg: Any) -> dict[str, Any]:
    """A composed DictConfig as the resolved plain dict `bench run` works with."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def compose_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config for these overrides, as `bench run` would see it (without hydra's node)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    if not (CONFIG_DIR / f"{CONFIG_NAME}.yaml").is_file():
        raise ConfigError(
            "T2I_BENCH_CONFIG_DIR", str(CONFIG_DIR), "point it at the project's configs/ folder"
        )
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides))
        return plain_config(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError("overrides", " ".join(overrides), override_problem(exc)) from None
