"""`--compile`: torch.compile of the encoders while a pretraining runs.

Each outermost `SequenceEncoder` of the method (query and key encoders of every stream) is
compiled in place with `nn.Module.compile`, which leaves parameter names, and so checkpoints and
resume, unchanged. Dynamo normally splits the graph at every `nn.GRU` call. Tracing through the
GRU (`allow_rnn`) lets Inductor fuse the framewise input work and the projection head around it.
On the `cpu` preset this made a MoCo step 1.6x faster after a compile of about a minute (see
README, Performance). The eager forward is restored when pretraining ends, so the protocols run
the same code as without `--compile`.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from halp_bench.encoders import SequenceEncoder
from halp_bench.errors import ConfigError


def outermost_encoders(method: nn.Module) -> list[SequenceEncoder]:
    """The method's encoders, skipping those nested inside another encoder (e.g. a multi-stream one)."""
    found: list[SequenceEncoder] = []

    def visit(module: nn.Module) -> None:
        if isinstance(module, SequenceEncoder):
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
        raise ConfigError("--compile: this method has no SequenceEncoder to compile")
    for encoder in encoders:
        encoder.compile()
    try:
        with torch._dynamo.config.patch(allow_rnn=True):  # traced when the first step runs, inside this block
            yield
    finally:
        for encoder in encoders:
            encoder._compiled_call_impl = None  # what nn.Module.compile set: back to the eager forward
