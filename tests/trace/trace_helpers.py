"""Reference programs written in Python (the .npi programs' semantics, DESIGN.md) that drive
the real environments and record real `npi-trace/1` steps, for the trace tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from npi_dsl.envs import create_env, vocabulary
from npi_dsl.trace import make_record, make_step, source_hash

Body = Callable[[Callable[..., None]], None]


class Recorder:
    """Runs Python 'programs' on an environment, recording one step per decision."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.steps: list[dict[str, Any]] = []
        self.frames = 0

    def run(self, program: str, args: list[int], depth: int, body: Body) -> None:
        frame = self.frames
        self.frames += 1
        env, steps = self.env, self.steps

        def call(name: str, call_args: list[int], sub: Body | None = None) -> None:
            steps.append(
                make_step(frame, depth, program, args, list(env.observe()), name, call_args)
            )
            if name == "ACT":
                env.act(*call_args)
            else:
                assert sub is not None
                self.run(name, call_args, depth + 1, sub)

        body(call)
        steps.append(make_step(frame, depth, program, args, list(env.observe()), None, [0, 0, 0]))


def addition_programs(env: Any) -> Body:
    read = env.query_fn("read")
    digit = env.query_fn("digit")
    IN1, IN2, CARRY, OUT = 0, 1, 2, 3
    BLANK = 10

    def CARRY_(call: Callable[..., None]) -> None:
        call("ACT", [0, CARRY, 0])
        call("ACT", [1, CARRY, 1])
        call("ACT", [0, CARRY, 1])

    def ADD1(call: Callable[..., None]) -> None:
        total = digit(IN1) + digit(IN2) + digit(CARRY)
        call("ACT", [1, OUT, total % 10])
        if total >= 10:
            call("CARRY", [0, 0, 0], CARRY_)

    def LSHIFT(call: Callable[..., None]) -> None:
        for row in (IN1, IN2, CARRY, OUT):
            call("ACT", [0, row, 0])

    def ADD(call: Callable[..., None]) -> None:
        while read(IN1) != BLANK or read(IN2) != BLANK or read(CARRY) != BLANK:
            call("ADD1", [0, 0, 0], ADD1)
            call("LSHIFT", [0, 0, 0], LSHIFT)

    return ADD


ADDITION_PROGRAMS = ["addition.ADD", "addition.ADD1", "addition.CARRY", "addition.LSHIFT"]


def addition_record(numbers: Any, seed: int | None = None) -> dict[str, Any]:
    env = create_env("scratchpad")
    value = env.parse_input(numbers)
    env.reset(value)
    rec = Recorder(env)
    rec.run("ADD", [0, 0, 0], 0, addition_programs(env))
    return make_record(
        task="add",
        env=vocabulary("scratchpad"),
        programs=ADDITION_PROGRAMS,
        source_hash=source_hash("addition.npi"),
        seed=seed,
        length=env.input_length(value),
        input=value,
        result=env.result(),
        steps=rec.steps,
    )


def sampled_addition_records(n: int, max_length: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    env = create_env("scratchpad")
    out = []
    for i in range(n):
        length = 1 + i % max_length
        out.append(addition_record(env.sample_input(rng, length), seed=seed))
    return out
