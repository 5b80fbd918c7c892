"""Mixed precision for the training step: `32` (off), `bf16` (autocast, CPU and GPU) and `16-mixed`
(float16 autocast with a gradient scaler, CUDA only).

Only the encoders run in low precision: methods compute their losses, queue similarities and the
hallucination math inside `methods.components.full_precision` (float32), where a bf16 cosine (3
significant digits) divided by a 0.07 temperature would otherwise move logits by ~0.1.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor

from halp_bench.errors import ConfigError

PRECISIONS = ("32", "bf16", "16-mixed")  # config.CHOICES["precision"], which cannot import torch


class Precision:
    """The autocast context and (for `16-mixed`) the gradient scaler of one training run."""

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            raise ConfigError(f"precision '{name}': choose one of {', '.join(PRECISIONS)}")
        if name == "16-mixed" and device.type != "cuda":
            raise ConfigError(f"precision 16-mixed needs a CUDA device (got {device.type}); use bf16 on {device.type}")
        self.name, self.device = name, device
        self.dtype = {"32": None, "bf16": torch.bfloat16, "16-mixed": torch.float16}[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "16-mixed" else None

    def autocast(self) -> AbstractContextManager[Any]:
        """Wrap the forward pass and the loss (not the backward)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_and_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
