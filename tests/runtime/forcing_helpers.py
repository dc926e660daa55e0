"""Networks with a known behaviour, for tests and benchmarks: always call one program.

`force_calls(model, program, args)` sets the output head so that, whatever it observes, the
network never returns and always calls `program` with `args`: a network that loops (the
executor's budgets must stop it), or a fixed-length workload (every step costs the same).

A test helper, not part of the installed package: the tests of this folder import it as
`forcing_helpers` (pytest puts the folder on sys.path), benchmarks/bench_executor.py puts
this folder on sys.path itself.
"""

from __future__ import annotations

import torch

from npi_runtime.model import NPI


def force_calls(model: NPI, program: str, args: tuple[int, int, int],
                keep: float = 0.0) -> NPI:
    """Make `model` always call `program` (a memory name, e.g. "ACT") with `args`, in place.

    `keep` scales the output layer's weights instead of zeroing them: the step still
    computes everything (for benchmarks), but the biases decide."""
    c = model.config
    with torch.no_grad():
        out = model.heads[2]
        out.weight.mul_(keep)
        out.bias.zero_()
        out.bias[0] = -50.0  # never end
        out.bias[1] = 1.0  # the key is the first unit vector ...
        model.memory.keys.zero_()
        model.memory.keys[model.memory.index(program), 0] = 50.0  # ... and selects `program`
        for i, a in enumerate(args):
            out.bias[1 + c.key_dim + i * c.arg_range + a] = 50.0
    return model
