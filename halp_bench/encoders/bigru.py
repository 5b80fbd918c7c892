"""The CMD BiGRU encoder (moco/GRU.py of CMD; HaLP copies it), in two registered flavours.

The official `EncoderRNN.forward` feeds a bidirectional `nn.GRU` one frame at a time, carrying the
hidden state. On a one-frame sequence the "_reverse" direction also runs forward in time, so every
layer is really two independent forward GRUs whose outputs are concatenated for the next layer, and
the feature is the top layer's output at the last frame (papers/official_code.md, section 1).

- `bigru_official` computes exactly that math with whole-sequence (cuDNN) GRU calls;
- `bigru` is what the architecture names: a true bidirectional GRU over the whole sequence.

Both take the official weights (`load_official_state_dict`), so official checkpoints can be imported
into either and the two readings compared on the same parameters. The official model's MLP head
(`fc`) is the method's projection head here, not part of the encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders.base import Encoder, flatten_frames
from halp_bench.errors import CheckpointError
from halp_bench.registry import register_encoder
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged
from halp_bench.weights_checks import shape_in_data_words

_GRU_TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass
class BiGRUSettings(EncoderSettings):
    """CMD's BiGRU: `num_layers` bidirectional layers of `hidden_size`; feature = 2 * hidden_size.
    `cpu` preset: 1 x 128."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"hidden_size": 128, "num_layers": 1}}
    hidden_size: int = ranged(1024, "[1, inf)")
    num_layers: int = ranged(3, "[1, inf)")

    def describe(self) -> str:
        return f"{self.name} {self.num_layers}x{self.hidden_size}"


def _xavier_(gru: nn.GRU) -> None:
    """The official `weights_init_gru`: xavier_uniform_ on every 2-D GRU weight, biases left as built."""
    for p in gru.parameters():
        if p.dim() == 2:
            nn.init.xavier_uniform_(p)


class _CMDBiGRU(Encoder):
    """What both flavours share: input BatchNorm over the C*V*M frame features, feature = 2 *
    hidden, checkpoint import."""

    def __init__(self, data: DataSpec, settings: BiGRUSettings):
        super().__init__(data, settings)
        self.in_channels = data.in_channels
        self.hidden_size = settings.hidden_size
        self.num_layers = settings.num_layers
        self.feature_dim = 2 * settings.hidden_size
        self.input_norm = nn.BatchNorm1d(self.in_channels)

    def _frames(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T, V*C*M), BatchNorm'd per channel over (N, T) like the official code."""
        frames = flatten_frames(x, self.in_channels)
        return self.input_norm(frames.transpose(1, 2)).transpose(1, 2).contiguous()

    def _gru_key_map(self) -> dict[str, str]:
        """Official `nn.GRU` parameter name (`weight_ih_l0_reverse`, ...) -> this encoder's key."""
        raise NotImplementedError

    def official_key_map(self) -> dict[str, str]:
        """Official `BIGRU` state_dict key -> this encoder's state_dict key (input BN and GRU)."""
        keys = {f"input_norm.{name}": f"input_norm.{name}" for name in _BN_TENSORS}
        keys.update({f"encoder.gru.{name}": own for name, own in self._gru_key_map().items()})
        return keys

    def load_official_state_dict(self, state_dict: Mapping[str, Tensor], prefix: str = "", source: str = "official checkpoint") -> list[str]:
        """Copy an official CMD/HaLP `BIGRU`'s weights into this encoder; return the keys not used.

        `prefix` picks one encoder out of a pretraining checkpoint, e.g. 'module.encoder_q.' in
        `torch.load(path)["state_dict"]`. The input BN and every GRU tensor are required (a different
        layer count or size is a `CheckpointError`); the MLP head (`fc.0`, `fc.2`) or a downstream
        checkpoint's classifier (`fc.weight`) comes back among the unused keys.
        """
        entries = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
        mapping = self.official_key_map()
        missing = [key for key in mapping if key != "input_norm.num_batches_tracked" and key not in entries]
        extra = [key for key in entries if key.startswith("encoder.gru.") and key not in mapping]
        if missing or extra:
            problems = [f"missing {', '.join(prefix + k for k in missing)}"] if missing else []
            problems += [f"unexpected {', '.join(prefix + k for k in extra)}"] if extra else []
            raise CheckpointError(source, f"not an official {self.num_layers}-layer BIGRU for this encoder (hidden {self.hidden_size}): {'; '.join(problems)}")
        own = self.state_dict()
        pairs = [(key, own[target]) for key, target in mapping.items() if key in entries]
        for key, target in pairs:
            if tuple(entries[key].shape) != tuple(target.shape):
                raise CheckpointError(
                    source,
                    f"{prefix + key} has shape {tuple(entries[key].shape)}, "
                    f"this encoder expects {tuple(target.shape)}" + shape_in_data_words(tuple(entries[key].shape), tuple(target.shape), self.data),
                )
        with torch.no_grad():
            for key, target in pairs:
                target.copy_(entries[key])
        return sorted(prefix + key for key in entries if key not in mapping)


@register_encoder("bigru", "CMD BiGRU as a true bidirectional GRU; feature = final states of both directions", settings=BiGRUSettings)
class BiGRU(_CMDBiGRU):
    """A standard bidirectional GRU over the whole sequence: the backward direction reads the
    sequence from its last frame, and the feature joins both directions' final states of the top
    layer (forward after frame T-1, backward after frame 0)."""

    def __init__(self, data: DataSpec, settings: BiGRUSettings):
        super().__init__(data, settings)
        self.gru = nn.GRU(self.in_channels, settings.hidden_size, settings.num_layers, batch_first=True, bidirectional=True)
        _xavier_(self.gru)

    def _gru_key_map(self) -> dict[str, str]:
        return {name: f"gru.{name}" for name, _ in self.gru.named_parameters()}

    def forward(self, x: Tensor) -> Tensor:
        _, h_n = self.gru(self._frames(x))
        return torch.cat([h_n[-2], h_n[-1]], dim=1)


@register_encoder("bigru_official", "CMD BiGRU with the official per-frame code's math (two forward GRUs per layer), fast", settings=BiGRUSettings)
class OfficialBiGRU(_CMDBiGRU):
    """The official per-frame loop's exact function, computed with whole-sequence GRU calls.

    Layer k is two forward GRUs: `gru_fwd[k]` holds the official `*_l{k}` weights and `gru_rev[k]`
    the `*_l{k}_reverse` ones (which the per-frame loop also runs forward in time). Two plain
    unidirectional calls per layer keep the weights in cuDNN's flat layout and do no extra work. The
    fused alternatives in benchmarks/bench_encoder.py (one bidirectional call on the batch plus its
    time-reversed copy; one 2H-wide block-diagonal GRU) do up to twice the arithmetic and were slower
    on a CPU from hidden 128 up; on a GPU the first runs both directions concurrently (unmeasured).
    """

    def __init__(self, data: DataSpec, settings: BiGRUSettings):
        super().__init__(data, settings)
        sizes = [self.in_channels] + [2 * settings.hidden_size] * (settings.num_layers - 1)
        self.gru_fwd = nn.ModuleList(nn.GRU(size, settings.hidden_size, batch_first=True) for size in sizes)
        self.gru_rev = nn.ModuleList(nn.GRU(size, settings.hidden_size, batch_first=True) for size in sizes)
        for gru in (*self.gru_fwd, *self.gru_rev):
            _xavier_(gru)

    def _gru_key_map(self) -> dict[str, str]:
        return {
            f"{tensor}_l{k}{suffix}": f"{group}.{k}.{tensor}_l0"
            for k in range(self.num_layers)
            for suffix, group in (("", "gru_fwd"), ("_reverse", "gru_rev"))
            for tensor in _GRU_TENSORS
        }

    def forward(self, x: Tensor) -> Tensor:
        h = self._frames(x)
        for fwd, rev in zip(self.gru_fwd[:-1], self.gru_rev[:-1]):
            h = torch.cat([fwd(h)[0], rev(h)[0]], dim=2)
        # the top layer's output at the last frame is its final hidden state
        return torch.cat([self.gru_fwd[-1](h)[1][0], self.gru_rev[-1](h)[1][0]], dim=1)


class PerFrameBIGRU(nn.Module):
    """The official `BIGRU`'s feature path exactly as the authors run it: input BatchNorm, then
    their bidirectional `nn.GRU` fed one frame at a time with the hidden state carried. Slow; it is
    the reference `eval` checks imported weights against, and benchmarks time against. Its state
    dict has the official names (`input_norm.*`, `encoder.gru.*`)."""

    def __init__(self, in_channels: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_channels)
        self.encoder = nn.Module()
        self.encoder.gru = nn.GRU(in_channels, hidden_size, num_layers=num_layers, bidirectional=True, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        _, c, t, v, m = x.shape
        seq = flatten_frames(x, c * v * m)
        seq = self.input_norm(seq.transpose(1, 2)).transpose(1, 2).contiguous()
        hidden = None
        for frame in range(t):
            out, hidden = self.encoder.gru(seq[:, frame : frame + 1], hidden)
        return out[:, 0]
