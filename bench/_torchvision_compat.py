"""Let torchvision import when its compiled ops cannot load (CPU torch + CUDA-linked torchvision).

The pinned torchvision 0.28.0 wheel's `_C.so` links CUDA libraries, so with the
CPU build of torch 2.13.0 loading it fails and `import torchvision` dies with
"operator torchvision::nms does not exist" (its Python code registers fake
kernels for ops it expects `_C.so` to have declared). Declaring the two op
schemas first lets it import; transforms and models work, the C++ ops (nms,
roi_align, decode_jpeg) do not, and t2i-bench uses none of them.

The fix is applied lazily, by an import hook that runs just before the first
`import torchvision`, so `import bench` does not pay for importing torch. On a
machine whose torchvision ops load, it does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: Any = None  # the torch.library.Library must outlive this function, or the schemas vanish
_applied = False


def ensure_torchvision_ops() -> bool:
    """Declare the torchvision op schemas if its compiled library fails to load. True if it did."""
    global _library, _applied
    if _applied:
        return _library is not None
    _applied = True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch

    libs = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    try:
        if not libs:
            raise OSError("torchvision/_C.so not found")
        torch.ops.load_library(str(libs[0]))  # type: ignore[no-untyped-call]
        return False
    except (OSError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
    for schema in _SCHEMAS:
        library.define(schema)  # type: ignore[no-untyped-call]
    _library = library
    return True


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision":
            uninstall_hook()
            ensure_torchvision_ops()
        return None  # let the normal finders import it


_hook = _TorchvisionHook()


def install_hook() -> None:
    if "torchvision" in sys.modules or _hook in sys.meta_path:
        return
    sys.meta_path.insert(0, _hook)


def uninstall_hook() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)


# ---- for programs that import torchvision (or diffusers, transformers) before bench ----------
# A .pth file in site-packages runs its `import` line when any interpreter of the environment
# starts, so `from diffusers import StableDiffusionPipeline` in a user's own script works on such
# a machine too. `make setup` writes it; by hand:
#   python -c 'from bench._torchvision_compat import install_pth; print(install_pth())'
PTH_NAME = "t2i_bench_torchvision_compat.pth"
# One line (a .pth runs lines that start with `import`); never an error at start-up if bench
# is gone or broken: then torchvision fails as it would without t2i-bench.
PTH_LINE = (
    "import sys; exec('try:\\n import bench._torchvision_compat as _t2i\\n _t2i.install_hook()\\n"
    "except Exception:\\n pass')\n"
)


def install_pth(site_packages: Path | None = None) -> Path:
    """Write the .pth file into this environment's site-packages (or the folder given)."""
    import sysconfig

    folder = site_packages or Path(sysconfig.get_paths()["purelib"])
    path = folder / PTH_NAME
    path.write_text(PTH_LINE, encoding="utf-8")
    return path
