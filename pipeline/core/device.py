"""Where torch runs: ``compute.device`` (``auto`` | ``cpu`` | ``cuda``) as a ``torch.device``.

``auto`` is the first CUDA device when torch sees one, else the CPU. The device-aware components
(the smoothing engine ``Smooth``, the training loops ``training.fit`` and DP-SGD's
``fit_private``, BREP-MI's generator and labellers, gradient inversion) take the device this
returns (a stage reads it from params; a compute task resolves the ``compute.device`` name where
it runs) and create their tensors on it; random draws made on the CPU stay there and their
result is moved. On the CPU they run exactly the code they ran before the setting existed, so
every output stays byte for byte the same. On a GPU the noise comes from CUDA generators
(another stream than the CPU's for the same seed) and float rounding differs, so GPU numbers
differ from CPU numbers; a GPU run is reproducible on its own device: seeded generators, and
torch's deterministic algorithms (``select`` turns them on).
"""
from __future__ import annotations

import copy
import os
import platform

import torch
from torch import nn

from .errors import PipelineError

CHOICES = ("auto", "cpu", "cuda")


def select(name: str, where: str = "params.yaml: compute.device") -> torch.device:
    """The device ``name`` names (see the module docstring); ``where`` it was set, for errors."""
    if name not in CHOICES:
        raise PipelineError(f"{where} is {name!r}; fix: one of {', '.join(CHOICES)}")
    if name == "cpu" or not torch.cuda.is_available():
        if name == "cuda":
            raise PipelineError(f"{where} is 'cuda' but torch sees no CUDA device; "
                                "fix: use auto (or cpu), or install a CUDA build of torch")
        return torch.device("cpu")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode needs it
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device("cuda")


def describe(device: torch.device) -> str:
    """The device as a bench reports it: the GPU's name, or the CPU's kind and core count."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def on(module: nn.Module, device: torch.device | str) -> nn.Module:
    """``module`` itself on the CPU (as before devices), else a copy on ``device`` (the caller's
    module stays where it is)."""
    return module if torch.device(device).type == "cpu" else copy.deepcopy(module).to(device)
