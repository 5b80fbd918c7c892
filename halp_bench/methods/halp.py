"""HaLP (Shah et al., CVPR 2023): MoCo plus mu * L_HaLP on hallucinated latent positives.

The math lives in `halp_bench.hallucination`; this file holds the state it needs (prototypes,
counters, a generator) and wires it into any MoCo-style method through `HallucinatedPositives`,
so HaLP = that term on MoCo and HaLP+CMD = the same term on CMD, per stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import RunConfig, added
from halp_bench.errors import ConfigError
from halp_bench.hallucination import T_SAMPLINGS, geomstats_kmeans, hallucinate, spherical_kmeans
from halp_bench.methods.base import Batch
from halp_bench.methods.components import KeyQueue
from halp_bench.methods.moco import MoCo, MoCoSettings, Streams
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged

KMEANS_BACKENDS = ("torch", "geomstats")


@dataclass
class HaLPSettings(MoCoSettings):
    """Hallucinated positives (paper values; the authors' scripts: refresh 10, mu 2 on NTU,
    t_sampling "official"). `cpu` preset: the term starts at epoch 25 of 60 (paper: 200 of 450)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {"start_epoch": 25},
        # the shipped scripts (papers/official_code.md §6): mu 2 on NTU, 1 on PKU-MMD II, resumed from
        # a MoCo checkpoint of epoch 200 (PKU: 500), geomstats' RiemannianKMeans
        "official": {"t_sampling": "official", "prototype_refresh": 10, "mu": 2.0, "kmeans_backend": "geomstats", "t_star": "atan", "refresh_order": "after"},
        "official:pku": {"mu": 1.0, "start_epoch": 500},
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "t_sampling": T_SAMPLINGS,
        "kmeans_backend": KMEANS_BACKENDS,
        "t_star": ("atan2", "atan"),
        "refresh_order": ("before", "after"),
    }
    num_prototypes: int = ranged(20, "[2, inf)")
    prototype_queue: int = ranged(256, "[2, inf)")
    prototype_refresh: int = ranged(5, "[1, inf)")
    num_positives: int = ranged(100, "[1, inf)")
    lam: float = ranged(0.8, "[0, 1]")
    mu: float = ranged(1.0, "[0, inf)")
    start_epoch: int = ranged(200, "[0, inf)")
    t_sampling: str = "paper"
    kmeans_backend: str = "torch"
    # atan2: the first zero of the boundary on the arc, in [0, 1]; atan: the authors' single-argument
    # arctan, negative where kappa + cos(omega) < 0 (sphere.authors_pair_step)
    t_star: str = added("atan2")
    # before: prototypes refreshed (when due) before this step's positives; after: after its loss, as
    # the authors' forward does
    refresh_order: str = added("before")

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.lam <= 1.0 or self.num_positives < 1:
            raise ConfigError(f"method.lam must be in [0, 1] and method.num_positives >= 1 (got {self.lam}, {self.num_positives})")
        if self.num_prototypes < 2 or self.prototype_queue < self.num_prototypes:
            raise ConfigError("method.num_prototypes must be >= 2 and <= method.prototype_queue")
        if self.prototype_queue > self.queue_size:
            raise ConfigError(f"method.prototype_queue ({self.prototype_queue}) exceeds method.queue_size ({self.queue_size})")


def halp_weight(cfg: HaLPSettings, epoch: int) -> float:
    """mu, switched on at `start_epoch` (paper: 0 for the first 200 epochs, then 1)."""
    return cfg.mu if epoch >= cfg.start_epoch else 0.0


def halp_loss(q: Tensor, positives: Tensor, keep: Tensor, temperature: float) -> Tensor:
    """L_HaLP = -(1/G_f) sum over kept positives of z_q . z^H / T (over the whole batch; 0 if none).

    q: (B, D) with grad; positives: (B, G, D) and keep: (B, G) without grad.
    """
    sims = torch.einsum("bd,bgd->bg", q, positives.to(q.dtype))
    kept = keep.sum()
    return -(sims * keep).sum() / (temperature * kept.clamp(min=1))


class PrototypeState(nn.Module):
    """Prototypes of one stream, refreshed every `prototype_refresh` calls from the most recent
    `prototype_queue` queue entries (after the batch is enqueued), plus the generator that drives
    hallucination. All of it is checkpointed (buffers and extra state)."""

    def __init__(self, cfg: HaLPSettings, dim: int, seed: int):
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.register_buffer("prototypes", torch.zeros(cfg.num_prototypes, dim))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self._generator: torch.Generator | None = None
        self._pending_state: dict[str, Any] | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        """The hallucination generator on `device`, continuing a restored state of the same device type."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            pending = self._pending_state
            if pending is not None and pending.get("generator") is not None and pending.get("device") == device.type:
                self._generator.set_state(pending["generator"])
            self._pending_state = None
        return self._generator

    def get_extra_state(self) -> Any:
        if self._generator is None:
            return self._pending_state or {"generator": None, "device": None}
        return {"generator": self._generator.get_state(), "device": self._generator.device.type}

    def set_extra_state(self, state: Any) -> None:
        self._generator, self._pending_state = None, dict(state)

    @torch.no_grad()
    def refresh_if_due(self, queue: KeyQueue, bank: int) -> None:
        """Re-cluster when due, once the queue holds `prototype_queue` real keys."""
        cfg = self.cfg
        if int(queue.filled) < cfg.prototype_queue:
            return
        if bool(self.ready) and int(self.calls) % cfg.prototype_refresh != 0:
            self.calls += 1
            return
        recent = queue.recent(cfg.prototype_queue, bank).float()
        if cfg.kmeans_backend == "geomstats":
            centroids = geomstats_kmeans(recent.cpu(), cfg.num_prototypes, tol=1e-3, seed=self.seed + int(self.calls)).to(recent.device)
        else:
            centroids = spherical_kmeans(recent, cfg.num_prototypes, tol=1e-3, generator=self.generator(recent.device))
        self.prototypes.copy_(centroids)
        self.ready.fill_(True)
        self.calls += 1


class HallucinatedPositives:
    """Mixin for MoCo-style methods: adds mu * L_HaLP per stream after the batch is enqueued.

    Ablations override one hook, `stream_positives` (which anchor, which targets, which steps).
    """

    streams: tuple[str, ...]
    queue: KeyQueue
    cfg: RunConfig
    settings: HaLPSettings
    t_sampling: str | None = None  # None: settings.t_sampling
    ablation_keys: ClassVar[dict[str, str]] = {"lam": "λ", "num_prototypes": "N"}  # what the paper's ablations vary
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"official": {"linear.lr": 0.005}, "official:pku": {"linear.lr": 0.001}}

    def init_hallucination(self) -> None:
        m = self.settings
        dim = self.queue.keys.shape[-1]
        self.prototype_states = nn.ModuleDict({s: PrototypeState(m, dim, self.cfg.seed * 1000 + i) for i, s in enumerate(self.streams)})

    def extra_losses(self, q: Streams, k: Streams, batch: Batch) -> dict[str, Tensor]:
        losses = super().extra_losses(q, k, batch)  # type: ignore[misc]
        weight = halp_weight(self.settings, batch.epoch)
        if weight == 0.0:
            return losses
        for bank, s in enumerate(self.streams):
            state = self.prototype_states[s]
            if self.settings.refresh_order == "before":
                state.refresh_if_due(self.queue, bank)
            if bool(state.ready):
                positives, keep = self.stream_positives(q[s].detach(), k[s], state)
                losses[f"halp_{s}"] = weight * halp_loss(q[s], positives, keep, self.settings.temperature)
            if self.settings.refresh_order == "after":
                state.refresh_if_due(self.queue, bank)
        return losses

    def stream_positives(self, q: Tensor, k: Tensor, state: PrototypeState) -> tuple[Tensor, Tensor]:
        """(positives (B, G, D), keep (B, G)) for one stream: the paper anchors on the key z_k."""
        m = self.settings
        return hallucinate(
            k,
            state.prototypes,
            m.num_positives,
            m.lam,
            t_sampling=self.t_sampling or m.t_sampling,
            generator=state.generator(k.device),
            boundary="pair_atan" if m.t_star == "atan" else "pair",
        )


@register_method("halp", "HaLP: MoCo + hallucinated latent positives (CVPR'23)", settings=HaLPSettings)
class HaLP(HallucinatedPositives, MoCo):
    compared_to = "moco"
    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 2
    citation: ClassVar[str] = "Shah et al., CVPR 2023"

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.init_hallucination()
