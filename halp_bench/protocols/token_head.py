"""MAMP's fine-tuning head (`finetune.head=mamp_mlp`; papers/mamp.md §1.9, §10): an MLP on the
encoder's per-token outputs rather than a linear layer on the pooled feature.

The tokens after the blocks and the final norm (N*M, T'*V, D), time-major, go through dropout, are
averaged over time, the V joints concatenated (V*D), averaged over the persons, then
Linear(V*D -> hidden), BatchNorm1d, ReLU, Linear(hidden -> classes): 13,236,284 parameters at
MAMP's size (25 joints x 256, hidden 2048, 60 classes), twice the encoder. The authors initialise it
with their model (MAMP@09e6252:model/transformer.py:281-292: xavier-uniform Linear weights, zero
biases; BatchNorm at PyTorch's defaults; the manual head init of main_finetune.py:259-260 is
commented out), as here.

`TokenHeadClassifier` holds the encoder and the head as one model whose forward gives the logits,
so the finetune protocol trains and tests it through the same loop as the linear head (with an
identity head), and layer-wise lr decay puts the head in the top layer, as the authors' groups do.
"""

from __future__ import annotations

from torch import Tensor, nn

from halp_bench.encoders import Encoder
from halp_bench.encoders.base import encoder_hooks
from halp_bench.encoders.transformer import init_transformer_weights
from halp_bench.errors import ConfigError
from halp_bench.methods.requirements import missing_tokens_message


class TokenMLPHead(nn.Module):
    """tokens (N*M, T'*V, D) -> logits (N, classes), MAMP's `ActionHeadFinetune`."""

    def __init__(self, joints: int, token_dim: int, num_classes: int, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(joints * token_dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)
        self.apply(init_transformer_weights)

    def forward(self, tokens: Tensor, grid: tuple[int, int], persons: int) -> Tensor:
        """`grid` (T', V): the tokens' time steps and joints, token t*V + v; `persons` M."""
        frames, joints = grid
        samples = tokens.shape[0] // persons
        x = self.dropout(tokens).reshape(samples, persons, frames, joints, -1).mean(dim=2)  # (N, M, V, D)
        x = x.reshape(samples, persons, -1).mean(dim=1)  # (N, V*D)
        return self.fc2(self.relu(self.bn(self.fc1(x))))


class TokenHeadClassifier(Encoder):
    """An encoder with tokens and MAMP's head, forward(x) = logits (N, classes)."""

    def __init__(self, encoder: Encoder, num_classes: int, hidden: int, dropout: float):
        nn.Module.__init__(self)
        if "tokens" not in encoder_hooks(type(encoder)):
            raise ConfigError(missing_tokens_message(getattr(getattr(encoder, "settings", None), "name", type(encoder).__name__)))
        self.encoder = encoder
        self.head = TokenMLPHead(encoder.token_grid[1], encoder.token_dim, num_classes, hidden, dropout)
        self.feature_dim = num_classes
        if hasattr(encoder, "layer_id"):  # layered only if the encoder is (finetune.layer_decay checks once)
            self.layer_id = self._layer_id

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.run_blocks(self.encoder.tokens(x)), self.encoder.token_grid, x.shape[-1])

    def _layer_id(self, name: str) -> int:
        """The encoder's layer of its parameters; the head's: the encoder's top layer (with the final norm)."""
        if name.startswith("head."):
            return max(self.encoder.layer_id(inner) for inner, _ in self.encoder.named_parameters())
        return self.encoder.layer_id(name.removeprefix("encoder."))
