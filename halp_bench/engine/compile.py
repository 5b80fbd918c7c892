"""`--compile`: torch.compile of the encoders while a pretraining runs.

Each outermost `Encoder` of the method (query and key encoders of every stream) is
compiled in place with `nn.Module.compile`, which leaves parameter names, and so checkpoints and
resume, unchanged. The eager forward is restored when pretraining ends, so the protocols run the
same code as without `--compile`.

On CPU, Dynamo traces through `nn.GRU` (`allow_rnn`): the GRU is unrolled over the frames with its
input projection batched, and Inductor fuses each step's gate arithmetic. On the `cpu` preset this
made the training step typically 1.2-1.3x faster (docs/performance.md). Compilation takes longer
the more frames x layers the GRU has. On CUDA, the GRU stays cuDNN's fused kernel (a graph
break), and only the code around it is compiled.

A method that calls an encoder's optional hooks (`Method.needs_hooks`, e.g. MAMP's `tokens` and
`run_blocks` on a kept subset) does not go through the encoder's `__call__`: those hook functions
are compiled too (as instance attributes, removed afterwards), and so are the modules the method
names in `Method.compiled_modules()` (MAMP's decoder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from halp_bench.encoders import ENCODER_HOOKS, Encoder
from halp_bench.errors import ConfigError


def outermost_encoders(method: nn.Module) -> list[Encoder]:
    """The method's encoders, skipping those nested inside another encoder (e.g. a multi-stream one)."""
    found: list[Encoder] = []

    def visit(module: nn.Module) -> None:
        if isinstance(module, Encoder):
            found.append(module)
            return
        for child in module.children():
            visit(child)

    visit(method)
    return found


def _check_compiler(device: torch.device) -> None:
    """Inductor writes C++ for the CPU: without a compiler it fails deep inside its first step."""
    if device.type != "cpu":
        return
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    if not any(shutil.which(c) for c in candidates):
        raise ConfigError(f"--compile on CPU needs a C++ compiler (looked for {', '.join(candidates)}); install g++ or run without --compile")


@contextmanager
def compiled_encoders(method: nn.Module, device: torch.device, enabled: bool) -> Iterator[None]:
    """Compile the method's encoders for the duration of the block (no-op unless `enabled`)."""
    if not enabled:
        yield
        return
    _check_compiler(device)
    encoders = outermost_encoders(method)
    if not encoders:
        raise ConfigError("--compile: this method has no Encoder to compile")
    hooks = [f for hook in getattr(method, "needs_hooks", ()) for f in ENCODER_HOOKS[hook]]
    modules = [*encoders, *getattr(method, "compiled_modules", lambda: [])()]
    for module in modules:
        module.compile()
    for encoder in encoders:
        for name in hooks:
            setattr(encoder, name, torch.compile(getattr(encoder, name)))  # an instance attribute shadows the method
    try:
        with torch._dynamo.config.patch(allow_rnn=device.type == "cpu"):  # traced at the first step, inside this block
            yield
    finally:
        for module in modules:
            module._compiled_call_impl = None  # what nn.Module.compile set: back to the eager forward
        for encoder in encoders:
            for name in hooks:
                encoder.__dict__.pop(name, None)
