"""One method's fully resolved recipe: every setting, where its value came from, and the identities
(pretraining, cells) a run of it would have (`halp-bench config`).

A value comes from, in the order `config.make_configs` applies them: the settings classes'
defaults ("default"), the preset ("preset <name>", including a plugin's `presets` for it), the
method's `run_defaults` ("run_defaults <Class>") and `--set` (or --dataset, --split, --seed). A
stored result row turns back into the same listing (`recipe_from_row`): the keys where its stored
configuration differs from its preset's recipe become `--set` values, and the identities it
prints are those the row was stored under.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halp_bench.config import PROTOCOL_SECTIONS, DataConfig, RunConfig, config_from_dict, flat_items, make_configs
from halp_bench.errors import ConfigError
from halp_bench.identity import config_id, pretrain_id
from halp_bench.overrides import Override
from halp_bench.presets import PRESETS
from halp_bench.registry import ENCODERS, METHODS, load_plugins
from halp_bench.results.row import ResultRow
from halp_bench.results.store import load_results

SAME_DATA_PROTOCOLS = ("knn", "linear", "semi")  # transfer's identity also needs its source's pretraining
EDGE_KEYS = {"data.dataset": "--dataset", "data.split": "--split", "seed": "--seed"}
NOT_RECIPE = ("device",)  # where it runs, not what it trains


@dataclass
class Recipe:
    """The listing of one method's recipe (`to_dict` for --json)."""

    method: str
    preset: str
    dataset: str
    split: str
    seed: int
    overrides: list[str]
    values: dict[str, Any]  # section.key -> value
    sources: dict[str, str]  # section.key -> where the value came from
    pretrain_id: str
    run_dir: str
    cells: dict[str, str] = field(default_factory=dict)  # protocol -> config id

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The text listing: a header, the identities, then `key = value  (source)` by section."""
        out = [
            f"{self.method} — preset {self.preset}, dataset {self.dataset}"
            + (f"/{self.split}" if self.split else "")
            + f", seed {self.seed}"
            + (f", --set {' '.join(self.overrides)}" if self.overrides else ""),
            f"pretraining id {self.pretrain_id}" + (f"  (run directory runs/{self.run_dir})" if self.run_dir else ""),
        ]
        out += [f"cell id {protocol}: {cid}" for protocol, cid in self.cells.items()]
        if not self.split:
            out.append("(no --split: identities use the split unset; a run names the dataset's default split)")
        width = max(map(len, self.values), default=0)
        out += [f"  {key.ljust(width)} = {_text(value)}  ({self.sources[key]})" for key, value in self.values.items()]
        return out


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)


def resolve_recipe(
    method: str, preset: str, dataset: str = DataConfig.dataset, split: str | None = None, seed: int = 0, overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """`method`'s configuration as `halp-bench run` makes it, with each value's source."""
    load_plugins()
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    edge = [Override("data.dataset", dataset), *([Override("data.split", split)] if split else []), Override("seed", seed)]
    cfg = make_configs(preset, [*overrides, *edge], [method], ignore_others=True)[method]
    values = {k: v for k, v in flat_items(cfg).items() if k not in NOT_RECIPE}
    given = ["data.dataset", "seed", *(["data.split"] if split else [])]
    sources = value_sources(method, preset, dataset, cfg, [item.split("=", 1)[0].strip() for item in overrides], given)
    cells = {protocol: config_id(method, protocol, cfg, cfg) for protocol in SAME_DATA_PROTOCOLS}
    from halp_bench.orchestration.run_dirs import run_dir_name  # imports torch: only when a recipe is made

    return Recipe(
        method,
        preset,
        dataset,
        split or "",
        seed,
        list(overrides),
        values,
        sources,
        pretrain_id(method, cfg),
        run_dir_name(method, cfg) if split else "",
        cells,
    )


def value_sources(method: str, preset: str, dataset: str, cfg: RunConfig, set_keys: list[str], given: list[str]) -> dict[str, str]:
    """Where each setting of `cfg` came from: --set or the command's own options (`given`: e.g.
    data.dataset for --dataset), the method's run_defaults, the preset (where it differs from the
    settings classes' defaults), else default."""
    method_cls = METHODS.get(method)
    declared = method_cls.defaults_for(preset, dataset, cfg.encoder.name)
    if cfg.eval.protocol == "common":  # the method's protocol values are not applied (config._resolve)
        declared = {k: v for k, v in declared.items() if k.partition(".")[0] not in PROTOCOL_SECTIONS}
    recipe = PRESETS[preset](dataset)
    preset_encoder = recipe.encoder.name  # e.g. official: bigru_official
    recipe.encoder = ENCODERS.get(cfg.encoder.name).settings_class.for_preset(preset, dataset)
    recipe.method = method_cls.settings_class.for_preset(preset, dataset)
    recipe.augment = method_cls.augment_class.for_preset(preset, dataset)
    plain = RunConfig(encoder=ENCODERS.get(cfg.encoder.name).settings_class(), method=method_cls.settings_class(), augment=method_cls.augment_class())
    by_preset, by_default = flat_items(recipe), flat_items(plain)
    sources = {}
    for key in flat_items(cfg):
        if key in set_keys:
            sources[key] = "--set"
        elif key in given:
            sources[key] = EDGE_KEYS[key]
        elif key in declared:
            sources[key] = f"run_defaults {method_cls.__name__}"
        elif (key != "encoder.name" and _differs(by_preset.get(key), by_default.get(key))) or key == "preset":
            sources[key] = f"preset {preset}"
        else:
            sources[key] = "default"
    if "encoder.name" not in set_keys and "encoder.name" not in declared and preset_encoder != plain.encoder.name:
        sources["encoder.name"] = f"preset {preset}"
    return sources


def _differs(a: Any, b: Any) -> bool:
    as_list = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    return as_list(a) != as_list(b)


def read_row(reference: str) -> ResultRow:
    """The row `FILE:N` names (N counts the file's complete rows from 1)."""
    path, _, number = reference.rpartition(":")
    if not path or not number.isdigit():
        raise ConfigError(f"--from-row {reference}: expected RESULTS.jsonl:N, e.g. results/results.jsonl:1")
    rows = load_results(Path(path))
    if not 1 <= int(number) <= len(rows):
        raise ConfigError(f"--from-row {reference}: {path} has {len(rows)} row(s)")
    return ResultRow.from_dict(rows[int(number) - 1])


def recipe_from_row(row: ResultRow) -> Recipe:
    """The listing that reproduces a stored row: its preset, data and seed, with `--set` for every
    key where its stored configuration differs from what that preset makes for the method."""
    if row.weights:
        raise ConfigError(
            f"the row of {row.method} {row.protocol} was evaluated from a weights file ({row.weights.get('path')}); its pretraining is that file, not a recipe"
        )
    load_plugins()
    stored = flat_items(config_from_dict(row.method, row.config))
    edge = [Override("data.dataset", row.dataset), Override("data.split", row.split), Override("seed", row.seed)]
    made = flat_items(make_configs(row.preset, edge, [row.method], ignore_others=True)[row.method])
    overrides = [
        f"{key}={_as_override(stored[key])}"
        for key in stored
        if key not in NOT_RECIPE and key not in EDGE_KEYS and key != "preset" and _differs(stored[key], made.get(key))
    ]
    encoder = [item for item in overrides if item.startswith("encoder.name=")]
    return resolve_recipe(row.method, row.preset, row.dataset, row.split, row.seed, encoder + [o for o in overrides if o not in encoder])


def _as_override(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
