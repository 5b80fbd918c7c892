"""Settings given to a configuration: the user's `--set KEY=VALUE` text, split once at the edge and
converted to the type of the field it sets, and the program's own values (`Override`: the dataset,
split, seed and device a cell is made for), which are typed already and never go through text.
Also what a mistyped key could have been."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from halp_bench.errors import ConfigError
from halp_bench.registry import ENCODERS, METHODS

PLUGIN_SECTIONS = ("method", "encoder", "augment")


@dataclasses.dataclass(frozen=True)
class Override:
    """One setting the program gives a configuration, as a typed value (no text to parse)."""

    key: str
    value: Any


def parse_override(item: str | Override) -> tuple[str, Any]:
    """(key, value): an `Override` as it is, `--set` text split at its first `=`."""
    if isinstance(item, Override):
        return item.key, item.value
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected KEY=VALUE, e.g. pretrain.lr=0.1")
    key, raw = item.split("=", 1)
    return key.strip(), raw.strip()


def convert_value(key: str, raw: Any, hint: Any) -> Any:
    """`raw` as the field's type: `--set` text parsed; a typed value checked, not parsed."""
    origin = typing.get_origin(hint)
    if not isinstance(raw, str):
        return _typed(key, raw, hint, origin)
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


def _typed(key: str, value: Any, hint: Any, origin: Any) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (bool, int, float, str) and isinstance(value, hint) and (hint is bool or not isinstance(value, bool)):
        return value
    if origin is tuple and isinstance(value, (tuple, list)):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    raise ConfigError(f"{key}={value!r}: expected {getattr(hint, '__name__', str(hint))}")


def unknown_key_message(key: str, configs: list[Any], methods: list[str]) -> str:
    """What `--set KEY` could have been: the valid keys at the level where KEY went wrong."""
    section = key.split(".")[0]
    if section in PLUGIN_SECTIONS and len(key.split(".")) == 2:
        part = key.split(".")[1]
        owner = "the encoder" if section == "encoder" else "the selected method" + ("s" if len(methods) > 1 else "")
        valid = sorted({f"{section}.{f.name}" for cfg in configs for f in dataclasses.fields(getattr(cfg, section))})
        which = ", ".join(f"{name} ({type(getattr(cfg, section)).__name__})" for name, cfg in zip(methods, configs))
        return f"--set '{key}': unknown key '{part}' for {owner} ({which}); valid keys here: {', '.join(valid)}"
    parts, target = key.split("."), configs[0]
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            prefix = ".".join(parts[:depth])
            valid = ", ".join(f"{prefix}.{n}" if prefix else n for n in names)
            return f"--set '{key}': unknown key '{part}'; valid keys here: {valid}"
        target = getattr(target, part)
    return f"--set '{key}': unknown key"


def known_to_a_plugin(key: str) -> bool:
    """Whether `section.field` names a field of some registered method's, augmentation's or encoder's settings."""
    section, _, leaf = key.partition(".")
    classes = {
        "method": [m.settings_class for m in (e.factory for e in METHODS.entries())],
        "augment": [m.augment_class for m in (e.factory for e in METHODS.entries())],
        "encoder": [e.factory.settings_class for e in ENCODERS.entries()],
    }.get(section, [])
    return any(leaf in {f.name for f in dataclasses.fields(c)} for c in classes)
