"""The CMD BiGRU encoder (moco/GRU.py of CMD; HaLP copies it), in two registered flavours.

The official `EncoderRNN.forward` feeds a bidirectional `nn.GRU` one frame at a time, carrying the
hidden state. On a one-frame sequence the "_reverse" direction also runs forward in time, so every
layer is really two independent forward GRUs whose outputs are concatenated for the next layer, and
the feature is the top layer's output at the last frame (papers/official_code.md, section 1).

- `bigru_official` computes exactly that math with whole-sequence (cuDNN) GRU calls;
- `bigru` is what the architecture names: a true bidirectional GRU over the whole sequence.

Both take the official weights (`load_official_state_dict`), so official checkpoints can be imported
into either and the two readings compared on the same parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from halp_bench.config import EncoderConfig
from halp_bench.encoders.base import SequenceEncoder, flatten_frames, projection_head
from halp_bench.errors import CheckpointError
from halp_bench.registry import register_encoder

_GRU_TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _xavier_(gru: nn.GRU) -> None:
    """The official `weights_init_gru`: xavier_uniform_ on every 2-D GRU weight, biases left as built."""
    for p in gru.parameters():
        if p.dim() == 2:
            nn.init.xavier_uniform_(p)


class _CMDBiGRU(SequenceEncoder):
    """What both flavours share: input BatchNorm, MLP head, feature = 2 * hidden, checkpoint import."""

    def __init__(self, in_channels: int, cfg: EncoderConfig):
        super().__init__(in_channels, cfg)
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.feature_dim = 2 * cfg.hidden_size
        self.input_norm = nn.BatchNorm1d(in_channels)
        self.head = projection_head(self.feature_dim, cfg)

    def _frames(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T, V*C*M), BatchNorm'd per channel over (N, T) like the official code."""
        frames = flatten_frames(x, self.in_channels)
        return self.input_norm(frames.transpose(1, 2)).transpose(1, 2).contiguous()

    def _gru_key_map(self) -> dict[str, str]:
        """Official `nn.GRU` parameter name (`weight_ih_l0_reverse`, ...) -> this encoder's key."""
        raise NotImplementedError

    def official_key_map(self) -> dict[str, str]:
        """Official `BIGRU` state_dict key -> this encoder's state_dict key (input BN, GRU, MLP head)."""
        keys = {f"input_norm.{name}": f"input_norm.{name}" for name in _BN_TENSORS}
        keys.update({f"encoder.gru.{name}": own for name, own in self._gru_key_map().items()})
        keys.update({f"fc.{i}.{name}": f"head.{i}.{name}" for i in (0, 2) for name in ("weight", "bias")})
        return keys

    def load_official_state_dict(
        self, state_dict: Mapping[str, Tensor], prefix: str = "", source: str = "official checkpoint"
    ) -> list[str]:
        """Copy an official CMD/HaLP `BIGRU`'s weights into this encoder; return the keys not used.

        `prefix` picks one encoder out of a pretraining checkpoint, e.g. 'module.encoder_q.' in
        `torch.load(path)["state_dict"]`. The input BN and every GRU tensor are required (a different
        layer count or size is a `CheckpointError`); the MLP head (`fc.0`, `fc.2`) is copied when
        present, so a downstream checkpoint's classifier (`fc.weight`) comes back among the unused keys.
        """
        entries = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        mapping = self.official_key_map()
        head = [key for key in mapping if key.startswith("fc.")]
        optional = set(head) | {"input_norm.num_batches_tracked"}
        missing = [key for key in mapping if key not in optional and key not in entries]
        if any(key in entries for key in head):
            missing += [key for key in head if key not in entries]
        extra = [key for key in entries if key.startswith("encoder.gru.") and key not in mapping]
        if missing or extra:
            problems = [f"missing {', '.join(prefix + k for k in missing)}"] if missing else []
            problems += [f"unexpected {', '.join(prefix + k for k in extra)}"] if extra else []
            raise CheckpointError(
                source,
                f"not an official {self.num_layers}-layer BIGRU for this encoder "
                f"(hidden {self.hidden_size}): {'; '.join(problems)}",
            )
        own = self.state_dict()
        pairs = [(key, own[target]) for key, target in mapping.items() if key in entries]
        for key, target in pairs:
            if tuple(entries[key].shape) != tuple(target.shape):
                raise CheckpointError(
                    source,
                    f"{prefix + key} has shape {tuple(entries[key].shape)}, "
                    f"this encoder expects {tuple(target.shape)}",
                )
        with torch.no_grad():
            for key, target in pairs:
                target.copy_(entries[key])
        return sorted(prefix + key for key in entries if key not in mapping)


@register_encoder("bigru", "CMD BiGRU as a true bidirectional GRU; feature = final states of both directions")
class BiGRU(_CMDBiGRU):
    """A standard bidirectional GRU over the whole sequence: the backward direction reads the
    sequence from its last frame, and the feature joins both directions' final states of the top
    layer (forward after frame T-1, backward after frame 0)."""

    def __init__(self, in_channels: int, cfg: EncoderConfig):
        super().__init__(in_channels, cfg)
        self.gru = nn.GRU(in_channels, cfg.hidden_size, cfg.num_layers, batch_first=True, bidirectional=True)
        _xavier_(self.gru)

    def _gru_key_map(self) -> dict[str, str]:
        return {name: f"gru.{name}" for name, _ in self.gru.named_parameters()}

    def features(self, x: Tensor) -> Tensor:
        _, h_n = self.gru(self._frames(x))
        return torch.cat([h_n[-2], h_n[-1]], dim=1)


@register_encoder(
    "bigru_official", "CMD BiGRU with the official per-frame code's math (two forward GRUs per layer), fast"
)
class OfficialBiGRU(_CMDBiGRU):
    """The official per-frame loop's exact function, computed with whole-sequence GRU calls.

    Layer k is two forward GRUs: `gru_fwd[k]` holds the official `*_l{k}` weights and `gru_rev[k]`
    the `*_l{k}_reverse` ones (which the per-frame loop also runs forward in time). Two plain
    unidirectional calls per layer keep the weights in cuDNN's flat layout and do no extra work. The
    fused alternatives in benchmarks/bench_encoder.py (one bidirectional call on the batch plus its
    time-reversed copy; one 2H-wide block-diagonal GRU) do up to twice the arithmetic and were slower
    on a CPU from hidden 128 up; on a GPU the first runs both directions concurrently (unmeasured).
    """

    def __init__(self, in_channels: int, cfg: EncoderConfig):
        super().__init__(in_channels, cfg)
        sizes = [in_channels] + [2 * cfg.hidden_size] * (cfg.num_layers - 1)
        self.gru_fwd = nn.ModuleList(nn.GRU(size, cfg.hidden_size, batch_first=True) for size in sizes)
        self.gru_rev = nn.ModuleList(nn.GRU(size, cfg.hidden_size, batch_first=True) for size in sizes)
        for gru in (*self.gru_fwd, *self.gru_rev):
            _xavier_(gru)

    def _gru_key_map(self) -> dict[str, str]:
        return {
            f"{tensor}_l{k}{suffix}": f"{group}.{k}.{tensor}_l0"
            for k in range(self.num_layers)
            for suffix, group in (("", "gru_fwd"), ("_reverse", "gru_rev"))
            for tensor in _GRU_TENSORS
        }

    def features(self, x: Tensor) -> Tensor:
        h = self._frames(x)
        for fwd, rev in zip(self.gru_fwd[:-1], self.gru_rev[:-1]):
            h = torch.cat([fwd(h)[0], rev(h)[0]], dim=2)
        # the top layer's output at the last frame is its final hidden state
        return torch.cat([self.gru_fwd[-1](h)[1][0], self.gru_rev[-1](h)[1][0]], dim=1)
