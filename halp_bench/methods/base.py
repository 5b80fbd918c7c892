"""The thin contract every method fulfils; optimiser, precision, DDP and data belong to the engine.

A method owns its networks (encoders, projection heads, predictors, queues), its settings (a
dataclass registered with it: `@register_method("name", settings=...)`), how it makes its views of
a batch (`make_views`, default: the two standard augmented views) and its losses
(`training_step`). Variants subclass and override one named hook.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import AugmentSettings, MethodSettings, RunConfig, ViewSettings, preset_keys
from halp_bench.datasets.views.cmd import pretrain_view
from halp_bench.encoders import Encoder
from halp_bench.methods.components import ema_update
from halp_bench.registry import METHODS
from halp_bench.skeleton import DataSpec


@dataclass
class Batch:
    """The views of one batch of samples, on the training device, and where training stands."""

    views: tuple[Tensor, ...]  # each (B, C, T, V, M), as made by `Method.make_views`
    epoch: int  # 0-based
    iteration: int  # batch within the epoch, 0-based
    step: int = 0  # batches trained before this one, over the whole pretraining
    total_steps: int = 1  # batches of the whole pretraining
    seed: int = 0  # the run's seed
    rank: int = 0  # this process's rank under torchrun (0 in a single process)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator on the views' device for this step's draws (masks, noise), seeded by
        (seed, rank, step, stream): a resumed run draws the same, ranks draw differently, and no
        state needs checkpointing. Each call starts the same stream again: use one per purpose."""
        key = hashlib.sha256(f"{self.seed}:{self.rank}:{self.step}:{stream}".encode()).digest()
        return torch.Generator(device=self.views[0].device).manual_seed(int.from_bytes(key[:8], "little") >> 1)

    @property
    def progress(self) -> float:
        """Fraction of the pretraining done before this batch, in [0, 1) (for momentum or loss schedules)."""
        return self.step / max(self.total_steps, 1)


class Method(nn.Module):
    """Base class. `pretrains = False` marks reference rows (e.g. `random`) the engine does not train.

    Class-level declarations read when a cell's config is made (config.py):
    - `settings_class`: set by `register_method(settings=...)`; `cfg.method` is an instance of it;
    - `augment_class`: the settings of this method's views (`cfg.augment`);
    - `run_defaults`: run-level values this method needs, per preset name or "*" for every preset,
      as `{"section.key": value}` (e.g. `{"*": {"pretrain.optimizer": "adamw"}}`); `--set` wins;
      "<preset>@<encoder>" (e.g. "cpu@stgcn") adds values for that encoder, applied last;
    - `compared_to`: the method it builds on; tables show their paired difference over seeds
      (between rows whose comparison keys agree) and cost ratios to it;
    - `family`, `table_order`, `citation`: which rows it belongs with in tables (declarations.FAMILIES:
      "paper", "ablations", "field", "plugins"), its place there, and where it was published; not
      inherited, so a subclass registered by a plugin is an external plugin's row unless it says so;
    - `ablation_keys`: its own settings the ablations vary, with the symbol labels use (HaLP's
      `{"lam": "λ", "num_prototypes": "N"}`: a row with λ=0.6 is "halp (λ=0.6)");
    - `data_pipeline`: how the method's authors prepared NTU data (`agcn`, `stgcn` or `mamp`);
    - `needs_hooks`: the optional encoder hooks it calls ("feature_map", "tokens"); a grid whose
      encoder lacks one is refused before anything trains (methods/requirements.py);
    - `in_default_grid`: whether a bare `halp-bench run` trains it (False keeps the first run short:
      the field's methods run by name or in the `field` suite).
    """

    pretrains: ClassVar[bool] = True
    compared_to: ClassVar[str | None] = None
    family: ClassVar[str] = "plugins"
    table_order: ClassVar[int] = 0
    citation: ClassVar[str] = ""
    ablation_keys: ClassVar[dict[str, str]] = {}
    in_default_grid: ClassVar[bool] = True
    settings_class: ClassVar[type[MethodSettings]] = MethodSettings
    augment_class: ClassVar[type[ViewSettings]] = AugmentSettings
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    data_pipeline: ClassVar[str] = "agcn"  # the family's data pipeline (datasets/pipelines.py), what `data.pipeline=auto` picks
    needs_hooks: ClassVar[tuple[str, ...]] = ()  # optional encoder hooks it calls (encoders.base.ENCODER_HOOKS)

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__()
        self.cfg, self.data = cfg, data

    @classmethod
    def defaults_for(cls, preset: str, dataset: str = "", encoder: str = "") -> dict[str, Any]:
        """`run_defaults` for `preset` on `dataset` with `encoder`, merged along the base classes
        (parents first; "*", then the preset, then e.g. "official:pku": config.preset_keys), then
        e.g. "cpu@stgcn" along them: a recipe for one encoder, more specific than any preset's."""
        values: dict[str, Any] = {}
        for keys in (["*", *preset_keys(preset, dataset)], [f"{preset}@{encoder}"] if encoder else []):
            for klass in reversed(cls.__mro__):
                declared = vars(klass).get("run_defaults", {})
                for key in keys:
                    values.update(declared.get(key, {}))
        return values

    @classmethod
    def check_data(cls, cfg: RunConfig, data: DataSpec) -> None:
        """Raise a ConfigError if this method cannot train on `data` with `cfg`'s encoder and views
        (e.g. a flip on a layout without a left-right mirror). Called for every method of a grid
        before any of them trains (validation.check_grid); default: no needs beyond the settings'."""

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        """The views of one batch of raw sequences x (B, C, T_max, V, M) with valid `lengths` (B,),
        drawn from `generator` only. Default: two standard augmented views (`cfg.augment`)."""
        frames = self.cfg.data.frames
        return tuple(pretrain_view(x, lengths, frames, self.cfg.augment, generator) for _ in range(2))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        """Named losses for one batch; the entry `loss` is what the engine back-propagates."""
        raise NotImplementedError

    def encoder_for_eval(self) -> Encoder:
        """The encoder the downstream protocols evaluate (the joint-stream query encoder)."""
        raise NotImplementedError

    def momentum_pairs(self, batch: Batch) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) modules whose target follows the online one by EMA (MoCo's key
        encoders, BYOL's target network). The engine moves them before each `training_step`
        (`step_momentum_targets`); a method only declares them. Default: none."""
        return []

    def target_momentum(self, batch: Batch) -> float:
        """The EMA coefficient m of this batch (target <- m * target + (1 - m) * online): a
        constant, or a schedule of `batch.progress`."""
        return 1.0

    @torch.no_grad()
    def step_momentum_targets(self, batch: Batch) -> None:
        """One EMA step of every declared pair; the engine calls it before `training_step`."""
        pairs = self.momentum_pairs(batch)
        if pairs:
            momentum = self.target_momentum(batch)
            for online, target in pairs:
                ema_update(target, online, momentum)

    def compiled_modules(self) -> list[nn.Module]:
        """Modules besides the encoders that `--compile` compiles (default: none; e.g. MAMP's decoder)."""
        return []

    def param_groups(self) -> list[dict]:
        """Parameter groups for the optimiser (default: every trainable parameter, one group)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


def default_methods() -> list[str]:
    """The methods a run trains when none are named: every registered one in the default grid."""
    return [name for name in METHODS.names() if METHODS.get(name).in_default_grid]


def create_method(name: str, cfg: RunConfig, data: DataSpec) -> Method:
    """Build a registered method by name."""
    return METHODS.get(name)(cfg, data)


def check_finite(losses: dict[str, Tensor]) -> None:
    """Raise FloatingPointError naming the first non-finite loss (the engine reports the epoch).

    One device-to-host sync per step (all losses checked together), not one per loss."""
    values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
    if bool(torch.isfinite(values).all()):
        return
    for name, value in losses.items():
        if not torch.isfinite(value).all():
            raise FloatingPointError(f"loss '{name}' is {value.item()}")
