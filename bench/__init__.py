"""t2i-bench: benchmark and evaluate text-to-image generation."""

from bench._torchvision_compat import install_hook as _install_torchvision_hook

__version__ = "0.1.0"

_install_torchvision_hook()
