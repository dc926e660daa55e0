"""Learning a new program with the core frozen (the paper's MAX experiment).

Of a trained network only the new programs' rows of the program memory (their keys in
`M_key` and embeddings in `M_prog`) train, and the encoder of an environment the network had
never seen; every other weight (core, LSTM, heads, the other encoders, the earlier programs'
rows) stays bit for bit as it was. The rows live in two memory tensors, so the earlier rows'
gradients are zeroed before each optimizer step (Adam then leaves them exactly as they are:
its moments stay zero) and, to make that a guarantee rather than a property of Adam, the
earlier rows are copied back after each step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from npi_runtime.model import NPI


class FrozenCore:
    """Which weights of `model` train: the memory rows from `first_new_row` on and the
    encoders `new_encoders`; `requires_grad` is switched off for everything else."""

    def __init__(self, model: NPI, first_new_row: int, new_encoders: Sequence[str] = ()) -> None:
        if first_new_row >= len(model.memory) and not new_encoders:
            raise ValueError("nothing new to train: every program is already in the memory")
        self.model = model
        self.first_new_row = first_new_row
        self.new_encoders = tuple(new_encoders)
        for p in model.parameters():
            p.requires_grad_(False)
        memory = model.memory
        memory.keys.requires_grad_(True)
        memory.progs.requires_grad_(True)
        for key in self.new_encoders:
            for p in model.encoders[key].parameters():
                p.requires_grad_(True)
        self._old = (memory.keys.detach()[:first_new_row].clone(),
                     memory.progs.detach()[:first_new_row].clone())

    def parameters(self) -> list[torch.nn.Parameter]:
        """What the optimizer updates."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def before_step(self) -> None:
        """Zero the earlier rows' gradients (call after backward, before clipping)."""
        for p in (self.model.memory.keys, self.model.memory.progs):
            if p.grad is not None:
                p.grad[: self.first_new_row] = 0.0

    @torch.no_grad()
    def after_step(self) -> None:
        """Put the earlier rows back exactly as they were."""
        memory = self.model.memory
        memory.keys[: self.first_new_row] = self._old[0]
        memory.progs[: self.first_new_row] = self._old[1]

    def describe(self) -> dict:
        """The manifest's record of what trained (`training_scope`)."""
        names = self.model.memory.names
        return {"freeze_core": True, "programs": names[self.first_new_row:],
                "encoders": list(self.new_encoders)}
