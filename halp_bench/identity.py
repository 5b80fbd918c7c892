"""What makes two cells, or two pretrainings, the same experiment.

A pretraining is identified by its method, that method's own settings, the encoder's settings,
the data, and (for a method that trains) its augmentation, optimiser schedule, precision and seed:
nothing another method owns. So `--set method.lam=0.6 --methods moco,halp` changes HaLP's
identity and leaves MoCo's checkpoint and stored cells in place, while an encoder setting changes
both. A cell adds the evaluation data and the protocol settings it reads (`register_protocol(uses=...)`).

Identities are computed from a configuration's dict form (`RunConfig.to_dict()`), so rows stored by
earlier versions can be given theirs (results/row.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from halp_bench.config import AugmentSettings, DataConfig, EncoderSettings, EvalConfig, FinetuneConfig, OptimConfig, RunConfig
from halp_bench.registry import ENCODERS, METHODS, PROTOCOLS

# eval settings every protocol reads (the stream, the test-time crop and the feature batches)
EVAL_COMMON = ("stream", "test_crop", "batch_size")


def short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=list).encode()).hexdigest()[:10]


def _as_dict(cfg: RunConfig | dict[str, Any]) -> dict[str, Any]:
    return cfg if isinstance(cfg, dict) else cfg.to_dict()


def _as_stored(value: Any) -> Any:
    """A value as a row stores it (JSON: tuples are lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _neutral_values(settings_class: type | None) -> dict[str, Any]:
    """{field: neutral value, as stored} of the settings added later (config.added) in `settings_class`."""
    if settings_class is None or not dataclasses.is_dataclass(settings_class):
        return {}
    return {f.name: _as_stored(f.metadata["neutral"]) for f in dataclasses.fields(settings_class) if "neutral" in f.metadata}


def without_neutral(values: dict[str, Any], settings_class: type | None) -> dict[str, Any]:
    """`values` less the settings that still hold their neutral value (config.added): settings
    added later leave the identities of what was stored before them unchanged."""
    neutral = _neutral_values(settings_class)
    return {k: v for k, v in values.items() if not (k in neutral and _as_stored(v) == neutral[k])}


def _plugin_classes(method: str, c: dict[str, Any]) -> dict[str, type | None]:
    """The settings classes of the plugin sections of `c` (None where the plugin is not registered)."""
    method_cls = METHODS.get(method) if method in METHODS else None
    encoder = c.get("encoder", {}).get("name")
    return {
        "method": method_cls.settings_class if method_cls else None,
        "augment": method_cls.augment_class if method_cls else AugmentSettings,
        "encoder": ENCODERS.get(encoder).settings_class if encoder in ENCODERS else EncoderSettings,
    }


SECTION_CLASSES = {"data": DataConfig, "pretrain": OptimConfig, "linear": OptimConfig, "transfer": OptimConfig, "finetune": FinetuneConfig, "eval": EvalConfig}


def neutral_items(method: str, encoder: str) -> dict[str, Any]:
    """`section.key -> neutral value` of every setting added after rows were first stored
    (config.added) for `method` with `encoder`: what a row without that key did."""
    classes = {**SECTION_CLASSES, **_plugin_classes(method, {"encoder": {"name": encoder}})}
    return {f"{section}.{key}": value for section, settings_class in classes.items() for key, value in _neutral_values(settings_class).items()}


def pretrain_signature(method: str, cfg: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """Every setting the pretraining of `method` depends on (a method that does not train: its
    construction only); settings at their neutral value are left out (`without_neutral`)."""
    c = _as_dict(cfg)
    classes = {**SECTION_CLASSES, **_plugin_classes(method, c)}
    section = lambda name: without_neutral(c[name], classes[name])
    signature = {"method_name": method, "method": section("method"), "encoder": section("encoder"), "data": section("data"), "seed": c["seed"]}
    if method not in METHODS or METHODS.get(method).pretrains:
        signature.update(augment=section("augment"), pretrain=section("pretrain"), precision=c["precision"], sync_batchnorm=c["sync_batchnorm"])
    return signature


def pretrain_id(method: str, cfg: RunConfig | dict[str, Any]) -> str:
    """A short hash of the pretraining: every protocol, and a transfer from this dataset, whatever
    its own settings, reuses the same checkpoint."""
    return short_hash(pretrain_signature(method, cfg))


def protocol_settings(protocol: str, cfg: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """The settings of `cfg` that `protocol` reads: the common eval ones and those it registered."""
    c = _as_dict(cfg)
    uses = PROTOCOLS.get(protocol).uses if protocol in PROTOCOLS else ()
    chosen: dict[str, Any] = {f"eval.{key}": c.get("eval", {}).get(key) for key in EVAL_COMMON}
    for item in uses:
        section, _, key = item.partition(".")
        values = without_neutral(c.get(section, {}), SECTION_CLASSES.get(section))
        if key:
            if key in values:
                chosen[item] = values[key]
        else:
            chosen[item] = values
    return chosen


def cell_identity(protocol: str, cfg: RunConfig | dict[str, Any], pretraining: dict[str, Any]) -> dict[str, Any]:
    """What one cell's number depends on, without its seed: the pretraining (`pretrain_signature`),
    the evaluation data and the settings the protocol reads; `config_id` hashes it and the tables
    name a cell's settings from it, so a label says exactly what made two cells' ids differ."""
    return {
        "pretraining": {k: v for k, v in pretraining.items() if k != "seed"},
        "data": without_neutral(_as_dict(cfg)["data"], DataConfig),
        "protocol": protocol_settings(protocol, cfg),
    }


def config_id(method: str, protocol: str, cfg: RunConfig | dict[str, Any], pretrain_cfg: RunConfig | dict[str, Any]) -> str:
    """A short hash of one cell's settings without its seed, so the rows of several seeds of the
    same settings share it (tables average exactly those). `cfg` holds the evaluation data and
    protocol settings; `pretrain_cfg` the pretraining's (they differ for transfer)."""
    return short_hash(cell_identity(protocol, cfg, pretrain_signature(method, pretrain_cfg)))


def weights_config_id(weights_sha: str, protocol: str, cfg: RunConfig) -> str:
    """The config id of a cell evaluating weights read from a file (`eval --checkpoint`): the file
    stands for the pretraining; the encoder, the data and the protocol's settings complete it."""
    return short_hash(
        {
            "weights": weights_sha,
            "encoder": cfg.encoder.describe(),
            "data": without_neutral(dataclasses.asdict(cfg.data), DataConfig),
            "protocol": protocol_settings(protocol, cfg),
        }
    )


def comparison_key(
    protocol: str,
    cfg: RunConfig | dict[str, Any],
    pretraining: dict[str, Any],
    *,
    preset: str,
    transfer_from: str | None,
    data: str | None,
    weights: str | None = None,
) -> str:
    """A short hash of everything that defines a cell's number except the method: the pretraining
    (`pretrain_signature` less the method's name, its own settings and the seed: encoder, views,
    schedule, precision, data), the evaluation data and its fingerprint (`data`), the protocol and
    the settings it reads, the preset and the transfer source; for released weights the file's
    hash stands for the pretraining. Rows of two methods with one key differ only in the method,
    so tables pair them (over the seeds both have); the seed stays out so that seeds share a key."""
    c = _as_dict(cfg)
    if weights is not None or not pretraining:
        trained = {"weights": weights, "encoder": c.get("encoder", {})}
    else:
        trained = {k: v for k, v in pretraining.items() if k not in ("method_name", "method", "seed")}
    return short_hash(
        {
            "pretraining": trained,
            "data": without_neutral(c.get("data", {}), DataConfig),
            "protocol": protocol,
            "protocol_settings": protocol_settings(protocol, c),
            "preset": preset,
            "transfer_from": transfer_from,
            "data_id": data,
        }
    )
