"""What a method declares for the tables: its family, its place in it, its base and citation, and
the settings its ablations vary.

A result row carries its method's declaration (`ResultRow.declaration`) and the label part its
ablation settings make (`ResultRow.variant`, e.g. "λ=0.6"), so that `halp-bench table` orders,
groups and pairs rows from the stored JSON alone, with no plugin (and no torch) imported: a store
keeps rendering after the plugin that made it is uninstalled. Rows written before rows carried
them get theirs from the registry when they are read (`row_table_fields`, which imports the plugins).

This module imports nothing from the project at import time; the registry is imported only by the
functions that read a method class.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

# The families of rows, in table order; a method that declares none is an external plugin's.
FAMILIES: dict[str, str] = {"paper": "the paper's rows", "ablations": "the paper's ablations", "field": "the field's methods", "plugins": "external plugins"}
DEFAULT_FAMILY = "plugins"


@dataclass(frozen=True)
class Declaration:
    """One method's table declaration, as stored in its rows (`to_dict`)."""

    family: str = DEFAULT_FAMILY
    order: int = 0  # the row's place within its family (ties: by label)
    compared_to: str | None = None  # the method it builds on: paired differences and cost ratios
    citation: str = ""
    ablation_keys: dict[str, str] = field(default_factory=dict)  # method setting -> symbol in labels, e.g. {"lam": "λ"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Declaration:
        values = values or {}
        known = {k: values[k] for k in ("family", "order", "compared_to", "citation", "ablation_keys") if k in values}
        return cls(**known)

    @property
    def sort_key(self) -> tuple[int, int]:
        """Families in FAMILIES order (an unknown family after them), then the declared order."""
        families = list(FAMILIES)
        return (families.index(self.family) if self.family in families else len(families), self.order)


def declaration_of(method_cls: type) -> Declaration:
    """A method class's declaration. Family, order and citation describe the registered class
    itself and are not inherited (a plugin built on `moco` is a plugin unless it says otherwise);
    `compared_to` and `ablation_keys` are inherited like any class attribute."""
    own = vars(method_cls)
    return Declaration(
        family=str(own.get("family", DEFAULT_FAMILY)),
        order=int(own.get("table_order", 0)),
        compared_to=getattr(method_cls, "compared_to", None),
        citation=str(own.get("citation", "")),
        ablation_keys=dict(getattr(method_cls, "ablation_keys", {}) or {}),
    )


def variant_text(declaration: Declaration, settings: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The label part of a row whose declared ablation settings differ from the method's preset
    defaults, e.g. "λ=0.6, N=10"; "" when none differs."""
    changed = [
        f"{symbol}={settings[key]}"
        for key, symbol in declaration.ablation_keys.items()
        if key in settings and key in defaults and settings[key] != defaults[key]
    ]
    return ", ".join(changed)


@functools.cache
def method_defaults(preset: str, method: str) -> dict[str, Any]:
    """The method's own settings under `preset` without any --set ({} for an unknown preset or method)."""
    from halp_bench.config import make_config
    from halp_bench.errors import ConfigError

    try:
        return make_config(preset, method=method).to_dict()["method"]
    except ConfigError:
        return {}


def row_table_fields(row: dict[str, Any]) -> dict[str, Any]:
    """`declaration`, `variant` and `comparison_key` of a row (its dict form), from the registry
    (imports the plugins) and the row's stored configuration: what the cell pipeline stores in a
    new row, and what a reader computes for a row stored before rows carried them, so both agree
    by construction. A method no longer registered gets the default declaration and no variant."""
    from halp_bench.identity import comparison_key
    from halp_bench.registry import METHODS, load_plugins

    load_plugins()
    method = str(row.get("method"))
    declaration = declaration_of(METHODS.get(method)) if method in METHODS else Declaration()
    released = bool(row.get("weights")) and row["weights"].get("layout") != "halp-bench"  # its method settings are unknown
    variant = (
        ""
        if released or not declaration.ablation_keys
        else variant_text(declaration, row.get("config", {}).get("method", {}), method_defaults(str(row.get("preset")), method))
    )
    key = comparison_key(
        str(row.get("protocol")),
        row.get("config") or {},
        row.get("pretrain_config") or {},
        preset=str(row.get("preset")),
        transfer_from=row.get("transfer_from"),
        data=_data_id(row),
        weights=(row.get("weights") or {}).get("sha256"),
    )
    return {"declaration": declaration.to_dict(), "variant": variant, "comparison_key": key}


def _data_id(row: dict[str, Any]) -> str | None:
    from halp_bench.results.row import data_id

    return data_id(row.get("data_fingerprint") or {})


def method_overview(name: str) -> dict[str, Any]:
    """What `halp-bench list` states of a registered method, from the same declarations the rows
    carry: family, base, citation, its encoder per preset, its run_defaults and where it runs (a
    bare `run`, and the shipped suites that name it). run_defaults are those in effect per preset
    (on NTU-style data; PKU-MMD may add its own). Imports the plugins and the suites."""
    from halp_bench.config import make_config
    from halp_bench.presets import PRESETS
    from halp_bench.registry import METHODS, load_plugins
    from halp_bench.suites import load_suite, suite_names

    load_plugins()
    cls = METHODS.get(name)
    suites = [suite for suite in suite_names() if any(name in (entry.get("methods") or []) for entry in load_suite(suite)["entries"])]
    encoders = {preset: make_config(preset, method=name).encoder.name for preset in PRESETS}
    run_defaults = {preset: values for preset in PRESETS if (values := cls.defaults_for(preset, encoder=encoders[preset]))}  # merged over its bases
    for key in sorted({key for klass in cls.__mro__ for key in vars(klass).get("run_defaults", {}) if "@" in key}):
        preset, _, encoder = key.partition("@")  # an encoder's own recipe: what it adds with that encoder
        run_defaults[key] = cls.defaults_for(preset, encoder=encoder)
    return {
        "declaration": declaration_of(cls),
        "encoders": encoders,
        "run_defaults": run_defaults,
        "bare_run": bool(getattr(cls, "in_default_grid", True)),
        "suites": suites,
    }
