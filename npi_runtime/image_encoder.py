"""The encoder of environments that show images (the camera): a CNN, as in the paper.

The paper's canonicalisation encoder is a CNN trained from scratch (three conv + pool blocks)
beside the target pad and the program's arguments. Here:

* the image slot's value in an observation is a *frame key*, an integer from which the
  environment renders the view again (`Environment.render_images`); traces store keys, never
  pixels (DESIGN.md). `tensorize` renders each distinct key once per call and returns one
  uint8 tensor per step: the flattened RGB image followed by the symbol slots' values. The
  network sees the pixels and the symbols only; the key is gone after `tensorize`;
* `forward`: three blocks of 3x3 convolution, leaky ReLU and 2x2 max-pooling (the first
  convolutions have stride 2 on images larger than 32 pixels, so the last block always ends
  at 4x4, as the paper's 128-pixel renders do with stride 2 everywhere), then a linear layer;
  the symbol slots and the three arguments add embedding rows as in `SymbolEncoder`; then the
  encoder's hidden layers and its output layer.

It has no `numpy_export`: the executor runs it in torch at every step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from npi_dsl.envs.base import ObsSlot
from npi_runtime.encoders import LEAK, Encoder

#: channels of the three convolution blocks
CHANNELS = (16, 32, 32)
#: the side of the last block's feature map
FINAL_SIDE = 4

Renderer = Callable[[Sequence[int]], np.ndarray]


def renderer_for(env_name: str, slot: str, shape: Sequence[int]) -> Renderer:
    """The environment's function from frame keys to uint8 images [N, *shape]."""
    from npi_dsl.envs.registry import get_env_class

    cls = get_env_class(env_name)
    render = cls.render_images

    def images(keys: Sequence[int]) -> np.ndarray:
        out = render(slot, keys, tuple(shape))
        if out.shape[1:] != tuple(shape) or out.dtype != np.uint8:
            raise ValueError(f"env {env_name} rendered {out.dtype} images of shape "
                             f"{tuple(out.shape[1:])}, not uint8 {tuple(shape)}")
        return out

    return images


def _strides(side: int) -> list[int]:
    """Strides of the three convolutions: stride 2 in as many leading blocks as keep the last
    map at least FINAL_SIDE after the three 2x2 pools (none at 32 px, one at 64, two at 128)."""
    k = 0
    while k < 3 and side // 2 ** (k + 1) // 8 >= FINAL_SIDE:
        k += 1
    return [2] * k + [1] * (3 - k)


class ImageEncoder(Encoder):
    """A CNN over the image slot, plus embeddings of the symbol slots and the arguments."""

    def __init__(self, env: str, image_slot: int, image_name: str, image_shape: Sequence[int],
                 slots: Sequence[int], arg_range: int, hidden: int, state_dim: int,
                 layers: int = 2, render: Renderer | None = None) -> None:
        super().__init__()
        self.env = str(env)
        self.image_slot = int(image_slot)
        self.image_name = str(image_name)
        self.image_shape = tuple(int(x) for x in image_shape)
        if len(self.image_shape) != 3 or self.image_shape[1] != self.image_shape[2]:
            raise ValueError(f"image shape must be [channels, side, side], got "
                             f"{list(self.image_shape)}")
        self.slots = [int(s) for s in slots]
        if any(s > 256 for s in self.slots):
            raise ValueError("an image environment's symbol slots must have at most 256 "
                             "symbols each (they travel beside the pixels as bytes)")
        self.arg_range = int(arg_range)
        self.hidden = int(hidden)
        self.state_dim = int(state_dim)
        self.layers = int(layers)
        self._render = render
        channels, side, _ = self.image_shape
        self.pixels = channels * side * side
        convs: list[nn.Module] = []
        c_in = channels
        for c_out, stride in zip(CHANNELS, _strides(side), strict=True):
            convs += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                      nn.LeakyReLU(LEAK), nn.MaxPool2d(2)]
            c_in = c_out
            side = side // stride // 2
        if side < 1:
            raise ValueError(f"images of side {self.image_shape[1]} are too small for three "
                             "conv + pool blocks (at least 8 pixels)")
        self.cnn = nn.Sequential(*convs, nn.Flatten())
        self.image_in = nn.Linear(c_in * side * side, self.hidden)
        sizes = self.slots + [self.arg_range] * 3
        offsets = torch.tensor([0] + sizes[:-1], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.first = nn.Embedding(sum(sizes), self.hidden)
        nn.init.normal_(self.first.weight, std=(1.0 / len(sizes)) ** 0.5)
        deeper: list[nn.Module] = []
        for _ in range(self.layers - 1):
            deeper += [nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(LEAK)]
        self.deeper = nn.Sequential(*deeper)
        self.out = nn.Linear(self.hidden, self.state_dim)
        self.act = nn.LeakyReLU(LEAK)

    # ---- observations -> tensors
    def render(self, keys: Sequence[int]) -> np.ndarray:
        if self._render is None:
            self._render = renderer_for(self.env, self.image_name, self.image_shape)
        return self._render(keys)

    def tensorize(self, observations: Sequence[Sequence[Any]]) -> torch.Tensor:
        """uint8 [N, pixels + symbol slots]: each step's image (rendered from its frame key,
        every distinct key once) followed by its symbol slots' values."""
        obs = np.asarray(observations, dtype=np.int64).reshape(len(observations), -1)
        n_slots = len(self.slots) + 1
        if obs.shape[1] != n_slots:
            raise ValueError(f"an observation of env {self.env} has {n_slots} slots, "
                             f"got {obs.shape[1]}")
        keys, where = np.unique(obs[:, self.image_slot], return_inverse=True)
        images = self.render(keys.tolist()).reshape(len(keys), -1)
        symbols = np.delete(obs, self.image_slot, axis=1)
        if symbols.size and (symbols.min() < 0 or (symbols >= np.asarray(self.slots)).any()):
            raise ValueError(f"a symbol of env {self.env}'s observation is outside its slot")
        out = np.empty((len(obs), self.pixels + len(self.slots)), dtype=np.uint8)
        out[:, : self.pixels] = images[where.reshape(-1)]
        out[:, self.pixels :] = symbols
        return torch.from_numpy(out)

    def forward(self, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        c, side, _ = self.image_shape
        image = obs[:, : self.pixels].reshape(-1, c, side, side).float().div_(255.0)
        symbols = obs[:, self.pixels :].long()
        idx = torch.cat([symbols, args.clamp(0, self.arg_range - 1)], dim=1) + self.offsets
        h = self.image_in(self.cnn(image)) + self.first(idx).sum(1)
        h = self.act(h)
        h = self.deeper(h)
        return self.out(h)

    def describe(self) -> dict:
        return {
            "kind": "image",
            "env": self.env,
            "image_slot": self.image_slot,
            "image_name": self.image_name,
            "image_shape": list(self.image_shape),
            "slots": self.slots,
            "arg_range": self.arg_range,
            "hidden": self.hidden,
            "state_dim": self.state_dim,
            "layers": self.layers,
        }

    @classmethod
    def from_description(cls, desc: dict) -> ImageEncoder:
        return cls(desc["env"], desc["image_slot"], desc["image_name"], desc["image_shape"],
                   desc["slots"], desc["arg_range"], desc["hidden"], desc["state_dim"],
                   desc.get("layers", 2))


def image_factory(env_name: str, slots: Sequence[ObsSlot], arg_range: int, hidden: int,
                  state_dim: int, layers: int) -> ImageEncoder:
    """The encoder of an observation with exactly one image slot; the others are symbols."""
    images = [i for i, s in enumerate(slots) if s.kind == "image"]
    if len(images) != 1:
        raise ValueError(f"env {env_name}'s observation has {len(images)} image slots; the "
                         "image encoder takes exactly one")
    i = images[0]
    symbols = [s.symbols for j, s in enumerate(slots) if j != i]
    return ImageEncoder(env_name, i, slots[i].name, slots[i].shape, symbols, arg_range, hidden,
                        state_dim, layers)
