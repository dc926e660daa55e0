"""Which torch device a command runs on: `--device auto|cpu|cuda|cuda:N|mps`.

`auto` picks a CUDA GPU when torch sees one, else Apple's MPS when available, else the CPU.
Naming a device that is not there (`cuda` on a machine without a GPU, `cuda:3` on a machine
with two, `mps` off a Mac) or a name torch does not know is a `DeviceError`: exit 2, bad
input, with a message that says what is available. The CPU path is the one every measured CPU
number in docs/ comes from; other devices run the same code with tensors placed there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from npi_dsl.errors import NpiError

if TYPE_CHECKING:  # torch is imported only when a device is resolved
    import torch

#: the names `--device` accepts (besides `cuda:N`)
DEVICES = ("auto", "cpu", "cuda", "mps")

_CUDA_N = re.compile(r"cuda:(\d+)\Z")


class DeviceError(NpiError, ValueError):
    """A device that is unknown or not available here. Exit 2: bad input."""

    exit_code = 2


def available() -> list[str]:
    """The devices torch can use on this machine, `cpu` first."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        found += ["cuda"] + [f"cuda:{i}" for i in range(n)] if n > 1 else ["cuda"]
    if _mps_available():
        found.append("mps")
    return found


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device `name` stands for; `DeviceError` when it is unknown or absent."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    spec = (name or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or _CUDA_N.match(spec):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r}: torch sees no CUDA GPU on this machine "
                              f"(available: {', '.join(available())}); use --device cpu or "
                              "--device auto")
        m = _CUDA_N.match(spec)
        if m and int(m.group(1)) >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0 "
                              f"(available: {', '.join(available())})")
        return torch.device(spec)
    if spec == "mps":
        if not _mps_available():
            raise DeviceError(f"device {name!r}: Apple's MPS backend is not available here "
                              f"(available: {', '.join(available())}); use --device cpu or "
                              "--device auto")
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}: use one of {', '.join(DEVICES)} or cuda:N "
                      f"(available here: {', '.join(available())})")


def describe(device: torch.device) -> str:
    """A device as a user reads it: `cpu`, `cuda:0 (NVIDIA H200)`, `mps`."""
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
