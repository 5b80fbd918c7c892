"""Typed run configuration: one dataclass per part, defaults in one place, two presets.

`paper` is the published recipe (papers/halp.md, official_code.md); `cpu` shrinks the encoder, the
queue and the schedules so that a full default run finishes in minutes on a 2-core laptop.
Overrides use dotted paths: `--set method.temperature=0.1`. Unknown keys and values of the wrong type
are a `ConfigError` naming the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from halp_bench.errors import ConfigError


@dataclass
class EncoderConfig:
    """The CMD BiGRU and its projection head (feature = 2 * hidden_size)."""

    name: str = "bigru"
    hidden_size: int = 1024
    num_layers: int = 3
    proj_hidden: int = 2048
    proj_dim: int = 128


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    split: str = ""  # empty: the dataset's default split
    frames: int = 64  # every view is resized to this many frames
    data_root: str = ""  # empty: $HALP_BENCH_DATA or ./data
    synthetic_samples: int = 1800  # size of the built-in synthetic dataset


@dataclass
class AugmentConfig:
    """Pretraining augmentations (official values): crop-resize, then shear or joint corruption."""

    crop_min_scale: float = 0.1
    crop_max_scale: float = 1.0
    min_crop_frames: int = 64
    shear_prob: float = 0.5
    shear_amplitude: float = 1.0
    corrupt_joints: int = 15
    corrupt_zero_prob: float = 0.5
    corrupt_amplitude: float = 1.0


@dataclass
class MethodConfig:
    """Hyper-parameters of every built-in method; each method reads the fields it needs."""

    # MoCo v2
    queue_size: int = 16384
    momentum: float = 0.999
    temperature: float = 0.07
    # HaLP (paper values; the authors' scripts: refresh 10, mu 2 on NTU, t_sampling "official")
    num_prototypes: int = 20
    prototype_queue: int = 256
    prototype_refresh: int = 5
    num_positives: int = 100
    lam: float = 0.8
    mu: float = 1.0
    start_epoch: int = 200
    t_sampling: str = "paper"
    kmeans_backend: str = "torch"
    # CMD
    cmd_topk: int = 8192
    cmd_teacher_temperature: float = 0.05
    cmd_student_temperature: float = 0.1
    cmd_weight: float = 1.0


@dataclass
class OptimConfig:
    """SGD with step decay."""

    epochs: int = 451
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (351,)
    gamma: float = 0.1


@dataclass
class EvalConfig:
    """Downstream protocols. `report`: 'final' epoch (default) or the official 'best' test accuracy."""

    knn_k: int = 1
    test_crop: float = 0.95
    train_crop_min: float = 0.5
    train_crop_max: float = 1.0
    batch_size: int = 64
    report: str = "final"
    eval_every: int = 5  # epochs between test evaluations when report == "best"
    stream: str = "joint"
    semi_fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)  # labelled fractions of the `semi` protocol
    monitor_every: int = 0  # pretraining epochs between kNN checks written to monitor.csv (0: off)


@dataclass
class RunConfig:
    preset: str = "paper"
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 10  # epochs (0 = only at the end)
    checkpoint_every_iters: int = 0  # iterations, for long epochs (0 = off)
    precision: str = "32"  # pretraining: 32 | bf16 | 16-mixed (engine/precision.py)
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    pretrain: OptimConfig = field(default_factory=OptimConfig)
    linear: OptimConfig = field(
        default_factory=lambda: OptimConfig(epochs=80, lr=0.1, weight_decay=0.0, milestones=(50, 70))
    )
    transfer: OptimConfig = field(
        default_factory=lambda: OptimConfig(epochs=80, lr=0.01, weight_decay=0.0, milestones=(50, 70))
    )
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def paper_preset() -> RunConfig:
    """The paper's recipe: 3x1024 BiGRU, queue 16384, 451 epochs (x0.1 at 351), linear 80 epochs."""
    return RunConfig(preset="paper")


def cpu_preset() -> RunConfig:
    """Minutes on a 2-core CPU: 1x128 BiGRU, 16-frame views, queue 1024, 60 short epochs.

    Measured choices (README, "Presets"): key momentum 0.99 instead of 0.999 (with a few hundred
    steps a 0.999 key encoder barely leaves its random initialisation), lr 0.05, and gentler
    augmentations (crop scale U(0.5, 1), shear amplitude 0.3, no joint corruption): with the
    official ones MoCo did not beat the random encoder within this budget. HaLP starts at epoch 25
    of 60 (the paper: 200 of 450) with mu = 1 and the paper's K=256, N=20, G=100.
    """
    cfg = RunConfig(preset="cpu", checkpoint_every=10)
    cfg.encoder = EncoderConfig(hidden_size=128, num_layers=1, proj_hidden=256, proj_dim=64)
    cfg.data.frames = 16
    cfg.augment = AugmentConfig(
        crop_min_scale=0.5, min_crop_frames=16, shear_prob=1.0, shear_amplitude=0.3,
    )
    cfg.method.queue_size = 1024
    cfg.method.momentum = 0.99
    cfg.method.cmd_topk = 512
    cfg.method.start_epoch = 25
    cfg.pretrain = OptimConfig(epochs=60, batch_size=64, lr=0.05, milestones=(50,))
    cfg.linear = OptimConfig(epochs=20, batch_size=64, lr=0.1, weight_decay=0.0, milestones=(14, 18))
    cfg.transfer = OptimConfig(epochs=10, batch_size=64, lr=0.01, weight_decay=0.0, milestones=(7, 9))
    cfg.eval.eval_every = 2
    return cfg


PRESETS = {"paper": paper_preset, "cpu": cpu_preset}
PRESET_DESCRIPTIONS = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in PRESETS.items()}


def make_config(preset: str = "cpu", overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A preset with `key=value` overrides applied (dotted keys, e.g. `method.lam=0.6`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    cfg = PRESETS[preset]()
    for item in overrides:
        apply_override(cfg, item)
    check_choices(cfg)
    return cfg


# Settings that take one of a few words; checked when the config is made, not hours later when
# the part that reads them runs. Precision, k-means backend and report are read from here by their
# parts; t_sampling and stream follow the hallucination math and the modalities (a test keeps those
# two in step, since config must not import torch).
CHOICES: dict[str, tuple[str, ...]] = {
    "precision": ("32", "bf16", "16-mixed"),
    "method.t_sampling": ("paper", "official", "hardest"),
    "method.kmeans_backend": ("torch", "geomstats"),
    "eval.report": ("final", "best"),
    "eval.stream": ("joint", "motion", "bone", "ensemble"),
}


def check_choices(cfg: RunConfig) -> None:
    values = flat_items(cfg)
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            raise ConfigError(f"--set {key}={values[key]}: choose one of {', '.join(allowed)}")


def apply_override(cfg: RunConfig, item: str) -> None:
    """Apply one `a.b=value` override in place, converting the value to the field's type."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected KEY=VALUE, e.g. method.temperature=0.1")
    key, raw = item.split("=", 1)
    key, raw = key.strip(), raw.strip()
    target: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            prefix = ".".join(parts[:depth])
            valid = ", ".join(f"{prefix}.{n}" if prefix else n for n in names)
            raise ConfigError(f"--set '{key}': unknown key '{part}'; valid keys here: {valid}")
        hints = typing.get_type_hints(type(target))
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(target, part)):
                raise ConfigError(f"--set '{key}': is a section; set one of its fields, e.g. {key}.<field>")
            setattr(target, part, _convert(key, raw, hints[part]))
        else:
            target = getattr(target, part)
            if not dataclasses.is_dataclass(target):
                raise ConfigError(f"--set '{key}': '{part}' is a value, not a section")


def _convert(key: str, raw: str, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if hint in (int, float, str):
            return hint(raw)
        if origin is tuple:
            (item_type, _) = typing.get_args(hint)
            text = raw.strip("()[] ")
            return tuple(item_type(v) for v in text.split(",") if v.strip()) if text else ()
        if origin in (typing.Union, types.UnionType):
            return raw
    except ValueError:
        expected = getattr(hint, "__name__", str(hint))
        if origin is tuple:
            expected = "a comma-separated list of " + typing.get_args(hint)[0].__name__
        raise ConfigError(f"--set {key}={raw}: expected {expected}") from None
    raise ConfigError(f"--set {key}: unsupported field type {hint}")


def flat_items(cfg: RunConfig) -> dict[str, Any]:
    """Every setting as `section.key -> value` (for tables and result rows)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                walk(f"{prefix}.{f.name}" if prefix else f.name, getattr(value, f.name))
        else:
            out[prefix] = value

    walk("", cfg)
    return out
