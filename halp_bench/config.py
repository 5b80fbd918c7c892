"""Typed configuration of one cell: run-level sections, settings owned by each plugin, presets, `--set`.

A cell's `RunConfig` has run-level sections (data, pretrain, linear, transfer, eval and a few
scalars) and three sections whose type belongs to a plugin: `method` (the settings the method
registered), `encoder` (those of the encoder chosen by `encoder.name`) and `augment` (the
augmentation settings of the method's views). Defaults are the paper's values. Values are resolved
in this order:

1. the preset's run-level values (presets.py);
2. each plugin settings class's `presets[preset]` (merged along its base classes, so a subclass
   extends its parent's);
3. the method's own run-level defaults (`Method.run_defaults`, e.g. its optimiser or encoder);
4. `--set section.key=value`, checked against the selected method's settings. With several
   methods, a key applies to the methods that have it and is an error only if none does.

Unknown keys and values of the wrong type are a `ConfigError` naming the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from halp_bench.errors import ConfigError, UnknownNameError
from halp_bench.overrides import PLUGIN_SECTIONS, Override, convert_value, known_to_a_plugin, parse_override, unknown_key_message
from halp_bench.registry import ENCODERS, METHODS, load_plugins
from halp_bench.validation import check_probe_head, check_ranges, declared_choices, one_of, ranged

DEFAULT_ENCODER = "bigru"
PROTOCOL_SECTIONS = ("linear", "transfer", "finetune", "eval")  # what `eval.protocol=common` keeps out of a method's run_defaults
COMMON_KEYS = ("data.pipeline",)  # and these single keys: every method on one data pipeline


def added(default: Any) -> Any:
    """A setting added after results were first stored, whose `default` is the behaviour from
    before it existed: while it keeps that value it stays out of every identity (identity.py), so
    cells and checkpoints stored earlier keep theirs. Plugins adding a setting later do the same."""
    return field(default=default, metadata={"neutral": default})


@dataclass
class Settings:
    """Base of every plugin's settings. `presets` maps a preset name to field values; `choices`
    maps a field to its allowed words (checked when the config is made, not hours later)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def for_preset(cls, preset: str, dataset: str = "") -> Settings:
        """The defaults with every base class's values for `preset` applied, parents first
        (`preset_keys`: a dataset-family key such as "official:pku" after the plain one)."""
        values: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            declared = vars(klass).get("presets", {})
            for key in preset_keys(preset, dataset):
                values.update(declared.get(key, {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}.presets['{preset}'] sets unknown field(s) {', '.join(unknown)}")
        return cls(**values)

    def check(self) -> None:
        """Refuse values the plugin cannot use; subclasses add their own rules (call super)."""
        for key, allowed in self.choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"--set {self.section}.{key}={getattr(self, key)}: choose one of {', '.join(allowed)}")

    section: ClassVar[str] = "settings"


@dataclass
class MethodSettings(Settings):
    """Settings of a method with none of its own (the reference rows)."""

    section: ClassVar[str] = "method"


@dataclass
class EncoderSettings(Settings):
    """Settings of an encoder; `name` is the registered encoder they belong to."""

    section: ClassVar[str] = "encoder"
    name: str = DEFAULT_ENCODER

    def describe(self) -> str:
        """How tables and settings lines name this encoder (e.g. 'bigru 3x1024')."""
        return self.name


@dataclass
class ViewSettings(Settings):
    """Base of every method's view settings (section `augment`): a method that makes views of its
    own (`Method.make_views`) may register any subclass; one that inherits its parent's views
    must extend the parent's settings (registry.register_method)."""

    section: ClassVar[str] = "augment"


@dataclass
class AugmentSettings(ViewSettings):
    """The standard pretraining views (official CMD/HaLP values): crop-resize, then shear or
    joint corruption (datasets/views/cmd.py `pretrain_view`).

    `cpu`: gentler augmentations, measured (docs/presets.md): with the official ones MoCo did
    not beat the random encoder within the cpu preset's budget.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"crop_min_scale": 0.5, "min_crop_frames": 16, "shear_prob": 1.0, "shear_amplitude": 0.3}}
    crop_min_scale: float = ranged(0.1, "(0, 1]")
    crop_max_scale: float = ranged(1.0, "(0, 1]")
    min_crop_frames: int = ranged(64, "[1, inf)")
    shear_prob: float = ranged(0.5, "[0, 1]")
    shear_amplitude: float = ranged(1.0, "[0, inf)")
    corrupt_joints: int = ranged(15, "[0, inf)")
    corrupt_zero_prob: float = ranged(0.5, "[0, 1]")
    corrupt_amplitude: float = ranged(1.0, "[0, inf)")


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    split: str = ""  # empty: the dataset's default split
    frames: int = ranged(64, "[1, inf)")  # every view is resized to this many frames
    data_root: str = ""  # empty: $HALP_BENCH_DATA or ./data
    synthetic_samples: int = ranged(1800, "[1, inf)")  # size of the built-in synthetic dataset
    normalize: str = one_of("none", ("none", "center", "center_first", "agcn"), neutral=True)  # for data held in memory (datasets/raw/normalize.py)
    # the field's data pipelines, applied at load (datasets/pipelines.py); auto: the method family's
    pipeline: str = one_of("auto", ("auto", "given", "agcn", "stgcn", "mamp"), neutral=True)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule of one training phase (common/optim.py).

    `optimizer`: sgd (momentum, nesterov) or adamw (betas). `schedule`: multistep (x gamma at each
    milestone epoch) or cosine (per step, from lr down to min_lr); either after `warmup_epochs` of
    linear warm-up from 0.
    """

    epochs: int = ranged(451, "[1, inf)")
    batch_size: int = ranged(64, "[1, inf)")
    lr: float = ranged(0.01, "(0, inf)")
    momentum: float = ranged(0.9, "[0, 1]")
    weight_decay: float = ranged(1e-4, "[0, inf)")
    milestones: tuple[int, ...] = ranged((351,), "[0, inf)")
    gamma: float = ranged(0.1, "(0, inf)")
    optimizer: str = one_of("sgd", ("sgd", "adamw"), neutral=True)
    nesterov: bool = added(False)
    betas: tuple[float, ...] = ranged((0.9, 0.999), "[0, 1)", neutral=True, min_items=2, max_items=2)
    schedule: str = one_of("multistep", ("multistep", "cosine"), neutral=True)
    warmup_epochs: int = ranged(0, "[0, inf)", neutral=True)
    min_lr: float = ranged(0.0, "[0, inf)", neutral=True)


@dataclass
class FinetuneConfig(OptimConfig):
    """The finetune protocol: the whole encoder and a new head trained on the pretraining data.
    `layer_decay` < 1 scales block i's lr by layer_decay^(depth + 1 - layer) (encoders with a
    `layer_id`), `label_smoothing` of the cross-entropy, `drop_path` for encoders with stochastic
    depth (`set_drop_path`), `head` (with `head_hidden`, `head_dropout`) the classifier trained."""

    layer_decay: float = ranged(1.0, "(0, 1]")
    label_smoothing: float = ranged(0.0, "[0, 1)")
    drop_path: float = ranged(0.0, "[0, 1)")
    # "linear" on the pooled feature, or "mamp_mlp": MAMP's MLP on the encoder's tokens (protocols/token_head.py)
    head: str = one_of("linear", ("linear", "mamp_mlp"), neutral=True)
    head_hidden: int = ranged(2048, "[1, inf)", neutral=True)
    head_dropout: float = ranged(0.3, "[0, 1)", neutral=True)


@dataclass
class EvalConfig:
    """Downstream protocols. `report`: 'final' epoch (default) or the official 'best' test accuracy."""

    knn_k: int = ranged(1, "[1, inf)")
    test_crop: float = ranged(0.95, "(0, 1]")
    train_crop_min: float = ranged(0.5, "(0, 1]")
    train_crop_max: float = ranged(1.0, "(0, 1]")
    # radians: the classifier protocols' training crops rotated by U(-r, r) about x, y and z (MAMP's recipe)
    train_rotation: float = ranged(0.0, "[0, 3.1416]", neutral=True)
    batch_size: int = ranged(64, "[1, inf)")
    report: str = one_of("final", ("final", "best"))
    eval_every: int = ranged(5, "[1, inf)")  # epochs between test evaluations when report == "best"
    stream: str = one_of("joint", ("joint", "motion", "bone", "ensemble", "concat"))
    semi_fractions: tuple[float, ...] = ranged((0.01, 0.05, 0.1, 0.2), "(0, 1]", min_items=1)  # labelled fractions of the `semi` protocol
    monitor_every: int = ranged(0, "[0, inf)")  # pretraining epochs between kNN checks written to monitor.csv (0: off)
    # "method": each method's own protocol values (its `run_defaults` for linear.*, transfer.*, eval.*,
    # e.g. the ST-GCN family's probe at lr 3.0); "common": the preset's for every method (`--common-protocol`)
    protocol: str = one_of("method", ("method", "common"), neutral=True)
    # std of the new classifier's N(0, std) weights (bias 0): CMD's and HaLP's 0.01; the ST-GCN
    # family's `weights_init` 0.02 (their `official` protocol)
    head_std: float = ranged(0.01, "(0, inf)", neutral=True)
    # "batchnorm_linear": MAMP's probe head (BatchNorm without affine, then linear); "per_stream_mean": with
    # eval.stream=concat, one head per stream, logits averaged, as CrosSCLR's code (protocols/stream_heads.py)
    linear_head: str = one_of("linear", ("linear", "batchnorm_linear", "per_stream_mean"), neutral=True)


@dataclass
class RunConfig:
    """One cell's configuration. `method`, `encoder` and `augment` are instances of the classes the
    cell's method and encoder registered (filled in by `make_config`)."""

    preset: str = "paper"
    seed: int = ranged(0, "[0, 4294967295]")
    device: str = "auto"
    checkpoint_every: int = ranged(10, "[0, inf)")  # epochs (0 = only at the end)
    checkpoint_every_iters: int = ranged(0, "[0, inf)")  # iterations, for long epochs (0 = off)
    precision: str = one_of("32", ("32", "bf16", "16-mixed"))  # pretraining (engine/precision.py)
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    data: DataConfig = field(default_factory=DataConfig)
    augment: ViewSettings = field(default_factory=AugmentSettings)
    method: MethodSettings = field(default_factory=MethodSettings)
    pretrain: OptimConfig = field(default_factory=OptimConfig)
    linear: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=80, lr=0.1, weight_decay=0.0, milestones=(50, 70)))
    transfer: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=80, lr=0.01, weight_decay=0.0, milestones=(50, 70)))
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(epochs=80, lr=0.01, weight_decay=0.0, milestones=(50, 70)))
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_preset(preset: str | None, dataset: str) -> str:
    """`auto` (or none given): `cpu` for the built-in synthetic data, which exists to run in minutes,
    `paper` for every real dataset; any other name is kept."""
    if preset in (None, "auto"):
        return "cpu" if dataset.startswith("synthetic") else "paper"
    return preset


def preset_keys(preset: str, dataset: str) -> list[str]:
    """The keys under which plugins give values for `preset` on `dataset`: the preset's name, then
    "<preset>:pku" for PKU-MMD data, whose official scripts differ from the NTU ones (every other
    dataset takes the NTU values)."""
    return [preset] + ([f"{preset}:pku"] if is_pku(dataset) else [])


def is_pku(dataset: str) -> bool:
    return dataset.replace("\\", "/").split("/")[-1].lower().startswith("pku")


# Run-level settings that take one of a few words, as their fields declare them (validation.one_of);
# plugin settings declare their own (`choices`).
CHOICES: dict[str, tuple[str, ...]] = declared_choices(RunConfig)


def _presets() -> dict[str, Any]:
    """presets.PRESETS, imported when first needed (presets.py builds on the classes above)."""
    from halp_bench.presets import PRESETS

    return PRESETS


def make_config(preset: str = "cpu", overrides: Sequence[str | Override] = (), method: str = "moco") -> RunConfig:
    """The configuration of `method`'s cells: every override must be one of its keys."""
    return make_configs(preset, overrides, [method])[method]


def make_configs(preset: str, overrides: Sequence[str | Override], methods: list[str], ignore_others: bool = False) -> dict[str, RunConfig]:
    """One configuration per method. A `--set` key applies to the methods whose settings have it
    and is an error only if none of them does (the error lists their valid keys). With
    `ignore_others`, a key that some other registered method or encoder has is ignored too."""
    if preset not in _presets():
        raise ConfigError(f"unknown preset '{preset}'; choose one of: {', '.join(_presets())}")
    load_plugins()
    parsed = [parse_override(item) for item in overrides]
    configs, unknown = {}, {}
    for name in methods:
        configs[name], unknown[name] = _resolve(preset, parsed, name)
    for key, _ in parsed:
        if all(key in unknown[name] for name in methods) and not (ignore_others and known_to_a_plugin(key)):
            raise ConfigError(unknown_key_message(key, [configs[name] for name in methods], methods))
    return configs


def _resolve(preset: str, parsed: list[tuple[str, Any]], method_name: str) -> tuple[RunConfig, dict[str, str]]:
    """(config, {key: reason}) for one method; keys this method does not have are returned, not raised."""
    method_cls = METHODS.get(method_name)
    dataset = next((raw for key, raw in reversed(parsed) if key == "data.dataset"), DataConfig.dataset)
    cfg = _presets()[preset](dataset)
    defaults = method_cls.defaults_for(preset, dataset)
    encoder_name = next((raw for key, raw in reversed(parsed) if key == "encoder.name"), defaults.get("encoder.name", cfg.encoder.name))
    defaults = method_cls.defaults_for(preset, dataset, encoder_name)  # with e.g. "cpu@stgcn"'s values
    try:
        encoder_cls = ENCODERS.get(encoder_name)
    except UnknownNameError as exc:
        raise ConfigError(f"--set encoder.name={encoder_name}: {exc}") from None
    cfg.encoder = dataclasses.replace(encoder_cls.settings_class.for_preset(preset, dataset), name=encoder_name)
    cfg.method = method_cls.settings_class.for_preset(preset, dataset)
    cfg.augment = method_cls.augment_class.for_preset(preset, dataset)
    common_protocol = next((raw for key, raw in reversed(parsed) if key == "eval.protocol"), cfg.eval.protocol) == "common"
    for key, value in defaults.items():
        if key != "encoder.name" and not (common_protocol and (key.partition(".")[0] in PROTOCOL_SECTIONS or key in COMMON_KEYS)):
            _set(cfg, key, value, source=f"{method_cls.__name__}.run_defaults")
    unknown: dict[str, str] = {}
    for key, raw in parsed:
        if key == "encoder.name":
            continue
        target, leaf = _locate(cfg, key)
        if target is None:
            unknown[key] = leaf
            continue
        setattr(target, leaf, convert_value(key, raw, typing.get_type_hints(type(target))[leaf]))
    check_config(cfg)
    return cfg, unknown


def _locate(cfg: RunConfig, key: str) -> tuple[Any, str]:
    """(the dataclass holding `key`'s last part, that part), or (None, the unknown part)."""
    target: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            return None, part
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(target, part)):
                raise ConfigError(f"--set '{key}': is a section; set one of its fields, e.g. {key}.<field>")
            return target, part
        target = getattr(target, part)
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"--set '{key}': '{part}' is a value, not a section")
    return None, key


def has_key(cfg: RunConfig, key: str) -> bool:
    """Whether `--set key=...` names a setting of this configuration."""
    return _locate(cfg, key)[0] is not None or key == "encoder.name"


def _set(cfg: RunConfig, key: str, value: Any, source: str) -> None:
    target, leaf = _locate(cfg, key)
    if target is None:
        raise ConfigError(f"{source}: unknown key '{key}'")
    setattr(target, leaf, value)


def check_config(cfg: RunConfig) -> None:
    """Declared ranges (validation.py), run-level word settings and each plugin section's own rules."""
    check_ranges(cfg)
    for name in ("pretrain", "linear", "transfer", "finetune"):
        opt = getattr(cfg, name)
        if not 0 <= opt.warmup_epochs <= opt.epochs:
            raise ConfigError(f"--set {name}.warmup_epochs={opt.warmup_epochs}: expected 0 to {name}.epochs ({opt.epochs})")
    check_probe_head(cfg.eval.linear_head, cfg.eval.stream)
    for section in PLUGIN_SECTIONS:
        getattr(cfg, section).check()


def flat_items(cfg: Any) -> dict[str, Any]:
    """Every setting of a configuration (or of its dict form) as `section.key -> value`."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            out[prefix] = value

    walk("", cfg)
    return out


def config_from_dict(method: str, values: dict[str, Any]) -> RunConfig:
    """A configuration stored as a dict (a result row's `config`, a checkpoint's pretraining
    signature) rebuilt as typed settings for `method`: the stored preset's configuration with every
    stored value put back. Sections or keys this version does not know are a ConfigError."""
    preset = values.get("preset", "paper") if values.get("preset") in _presets() else "paper"
    encoder = values.get("encoder", {}).get("name", DEFAULT_ENCODER)
    dataset = values.get("data", {}).get("dataset", DataConfig.dataset)
    cfg = make_config(preset, [Override("encoder.name", encoder), Override("data.dataset", dataset)], method=method)
    known = {f.name for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in known:
            continue  # e.g. `method_name` of a pretraining signature
        if isinstance(value, dict):
            section = getattr(cfg, key)
            names = {f.name for f in dataclasses.fields(section)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ConfigError(
                    f"stored {key} settings {', '.join(unknown)} are unknown to {type(section).__name__} "
                    f"(written by another version of '{method}' or its plugin)"
                )
            hints = typing.get_type_hints(type(section))
            for name, item in value.items():
                setattr(section, name, tuple(item) if typing.get_origin(hints[name]) is tuple else item)
        else:
            setattr(cfg, key, value)
    check_config(cfg)
    return cfg
