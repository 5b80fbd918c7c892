"""Valid ranges of numeric settings, declared where each setting is declared, and the checks that
refuse a bad configuration before anything trains.

A numeric field of a settings dataclass declares its range with `ranged(default, "[low, high]")`
(interval notation; `inf` for no bound; round brackets exclude the bound). The range is kept in the
field's metadata, so a plugin's settings class declares its own the same way. `check_ranges`
refuses a value outside its range (and any NaN or infinity the range does not include) in one line
naming the key, the value and what is allowed; a tuple field's range applies to each item.
`check_grid` asks every method of a grid whether it can use the data, the encoder and the layout
before the first cell trains (`Method.check_data`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from halp_bench.errors import ConfigError
from halp_bench.overrides import Override

RANGE_KEY = "range"
CHOICES_KEY = "choices"


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; `min_items` for tuple settings (e.g. 1: never empty)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    min_items: int = 0
    max_items: int | None = None

    def allows(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """'> 0', '>= 1', 'in [0, 1]': how a message says what is allowed."""
        low, high = _number(self.low), _number(self.high)
        if math.isinf(self.high) and self.high_open:
            return f"{'>' if self.low_open else '>='} {low}"
        if math.isinf(self.low) and self.low_open:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value == int(value) else f"{value:g}"


def parse_interval(text: str, min_items: int = 0, max_items: int | None = None) -> Range:
    """'[0, 1]', '(0, inf)', '[1, inf)' -> Range; a malformed declaration is a programming error."""
    text = text.strip()
    if text[:1] not in "[(" or text[-1:] not in "])" or text.count(",") != 1:
        raise ValueError(f"range '{text}': expected interval notation such as '[0, 1]' or '(0, inf)'")
    low, high = (float(part) for part in text[1:-1].split(","))
    return Range(low, high, text[0] == "(", text[-1] == ")", min_items, max_items)


def ranged(default: Any, interval: str, *, neutral: bool = False, min_items: int = 0, max_items: int | None = None) -> Any:
    """A dataclass field whose values must lie in `interval` (each item, for a tuple).
    `neutral`: also the `config.added` marker (a setting added later, neutral at `default`)."""
    metadata: dict[str, Any] = {RANGE_KEY: parse_interval(interval, min_items, max_items)}
    if neutral:
        metadata["neutral"] = default
    return field(default=default, metadata=metadata)


def one_of(default: str, choices: tuple[str, ...], *, neutral: bool = False) -> Any:
    """A dataclass field that takes one of a few words. `neutral`: as in `ranged`."""
    metadata: dict[str, Any] = {CHOICES_KEY: tuple(choices)}
    if neutral:
        metadata["neutral"] = default
    return field(default=default, metadata=metadata)


def declared_choices(settings_class: type, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """`section.key -> words` of every `one_of` field of a settings class and the sections it holds."""
    found: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(settings_class)
    for item in dataclasses.fields(settings_class):
        if CHOICES_KEY in item.metadata:
            found[prefix + item.name] = item.metadata[CHOICES_KEY]
        elif dataclasses.is_dataclass(hints[item.name]):
            found.update(declared_choices(hints[item.name], f"{prefix}{item.name}."))
    return found


def range_of(settings_field: dataclasses.Field) -> Range | None:
    return settings_field.metadata.get(RANGE_KEY)


def allowed_words(settings_field: dataclasses.Field, settings_class: type) -> str:
    """' (> 0)', ' (sgd|adamw)' or '': what `halp-bench list` shows after a setting's value."""
    allowed = range_of(settings_field)
    words = settings_field.metadata.get(CHOICES_KEY) or getattr(settings_class, "choices", {}).get(settings_field.name)
    return f" ({allowed.describe()})" if allowed else f" ({'|'.join(words)})" if words else ""


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def field_problem(value: Any, hint: Any, allowed: Range) -> str | None:
    """What is wrong with `value` for a field of type `hint` and range `allowed`, or None."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (tuple, list)):
            return f"expected a comma-separated list, each item {allowed.describe()}"
        if len(value) < allowed.min_items:
            return "expected a non-empty list" if allowed.min_items == 1 else f"expected at least {allowed.min_items} values"
        if allowed.max_items is not None and len(value) > allowed.max_items:
            return f"expected at most {allowed.max_items} values"
        bad = [item for item in value if not allowed.allows(item)]
        return f"{bad[0]} is not {allowed.describe()} (each item must be)" if bad else None
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected a whole number {allowed.describe()}"
    if not allowed.allows(value):
        unbounded = math.isinf(allowed.low) or math.isinf(allowed.high)
        what = "a whole number" if hint is int else "a finite number" if unbounded else "a number"
        return f"expected {what} {allowed.describe()}"
    return None


def check_ranges(settings: Any, prefix: str = "") -> None:
    """Refuse the first value outside its declared range in `settings` (a dataclass) and in the
    dataclasses it holds, naming the key as `--set` spells it."""
    hints = typing.get_type_hints(type(settings))
    for item in dataclasses.fields(settings):
        value, key = getattr(settings, item.name), f"{prefix}{item.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, key + ".")
            continue
        words = item.metadata.get(CHOICES_KEY)
        if words is not None and value not in words:
            raise ConfigError(f"--set {key}={value}: choose one of {', '.join(words)}")
        allowed = range_of(item)
        problem = field_problem(value, hints[item.name], allowed) if allowed is not None else None
        if problem:
            raise ConfigError(f"--set {key}={_shown(value)}: {problem}")


PER_STREAM_MEAN = "per_stream_mean"  # eval.linear_head: one head per stream (protocols/stream_heads.py)


def check_probe_head(linear_head: str, stream: str) -> None:
    """`eval.linear_head=per_stream_mean` splits the concatenated features into their streams, so
    it is refused with any `eval.stream` but concat."""
    if linear_head == PER_STREAM_MEAN and stream != "concat":
        raise ConfigError(
            f"--set eval.linear_head={PER_STREAM_MEAN}: needs eval.stream=concat (one head per stream of the "
            f"concatenated features), not eval.stream={stream}; add --set eval.linear_head=linear for one head"
        )


def numeric_fields(settings_class: type) -> list[dataclasses.Field]:
    """The int, float and tuple fields of a settings class: those that must declare a range."""
    hints = typing.get_type_hints(settings_class)
    return [f for f in dataclasses.fields(settings_class) if hints[f.name] in (int, float) or typing.get_origin(hints[f.name]) is tuple]


def check_grid(methods: list[str], config_for: Callable[[str], Any], data: Any, train_size: int, where: str) -> None:
    """Before any cell trains: each method's needs of the data, the encoder and the layout
    (`Method.check_data`, given `config_for(method)` and the `SkeletonData` it pretrains on), and
    a pretraining batch that fits the `train_size` samples of `where` (a larger one trains no step:
    the row would be the random encoder's), so that a grid does not stop, or store a wrong row,
    after hours of training."""
    from halp_bench.methods.stream_encoders import MULTI_STREAM
    from halp_bench.registry import METHODS

    for name in methods:
        cfg, method = config_for(name), METHODS.get(name)
        if method.pretrains and cfg.pretrain.batch_size > train_size:
            raise ConfigError(
                f"--set pretrain.batch_size={cfg.pretrain.batch_size}: more than the {train_size} training samples of "
                f"{where}; an epoch would train no step (at most {train_size})"
            )
        streams = getattr(method, "streams", None)
        if isinstance(streams, tuple) and cfg.eval.stream not in (*streams, *MULTI_STREAM):
            raise ConfigError(f"--set eval.stream={cfg.eval.stream}: {name} trains only the {', '.join(streams)} stream(s)")
        if cfg.eval.linear_head == PER_STREAM_MEAN and not (isinstance(streams, tuple) and len(streams) > 1):
            raise ConfigError(
                f"--set eval.linear_head={PER_STREAM_MEAN}: {name} trains one stream; one head per stream needs a method "
                f"that trains several (e.g. crossclr), or eval.linear_head=linear"
            )
        try:
            method.check_data(cfg, data.spec(cfg.data.frames))
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}" if not str(exc).startswith(name) else str(exc)) from None


# `--set` keys a command decides itself: given with --set they would be silently overwritten
# (run: the grid's own axes) or never read (eval: there is no pretraining).
COMMAND_OWNED: dict[str, dict[str, str]] = {
    "run": {"data.dataset": "use --dataset", "data.split": "use --split", "seed": "use --seed or --seeds"},
    "eval": {
        "data.dataset": "use --dataset",
        "data.split": "use --split",
        "seed": "use --seeds",
        "pretrain.": "eval does not pretrain (the checkpoint's own pretraining settings are kept)",
        "augment.": "eval makes no pretraining views",
    },
    "show": {
        "data.dataset": "give the dataset as the argument",
        "data.split": "use --split",
        "seed": "use --seed",
        "device": "show draws on the CPU",
        **{f"{section}.": "show draws samples and views; it trains nothing" for section in ("pretrain", "linear", "transfer", "eval")},
    },
}


def check_settings(specs: list[Any]) -> None:
    """Every run spec's settings (ranges, choices, rules, known keys and methods) before the first
    one trains: a suite must not stop at its third entry over a value the first could have shown."""
    from halp_bench.config import make_configs
    from halp_bench.methods.base import default_methods
    from halp_bench.registry import load_plugins

    load_plugins()
    for spec in specs:
        make_configs(spec.preset, [*spec.overrides, Override("device", spec.device)], spec.methods or default_methods())


def refuse_inapplicable(command: str, overrides: tuple[str, ...] | list[str]) -> None:
    """Refuse a `--set` key that `command` does not read (see COMMAND_OWNED)."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        for owned, why in COMMAND_OWNED.get(command, {}).items():
            if key == owned or (owned.endswith(".") and key.startswith(owned)):
                raise ConfigError(f"--set {key}: does not apply to `halp-bench {command}`; {why}")


def device_setting(overrides: tuple[str, ...] | list[str], device: str, device_given: bool) -> str:
    """The device of a run: `--set device=X` is the same setting as `--device X`; both, differing, is an error."""
    chosen = [item.split("=", 1)[1].strip() for item in overrides if item.split("=", 1)[0].strip() == "device" and "=" in item]
    if not chosen:
        return device
    if device_given and chosen[-1] != device:
        raise ConfigError(f"--set device={chosen[-1]} and --device {device} disagree; give one of them")
    return chosen[-1]


def threads_warning(threads: int | None) -> str | None:
    """What asking for more torch threads than this process has cores costs, or None."""
    from halp_bench.common.cpu_share import machine_cores

    cores = machine_cores()
    if threads is None or threads <= cores:
        return None
    return (
        f"--threads {threads} is more than the {cores} cores this process may use: the extra threads wait for each other "
        f"at every operator ({OVERSUBSCRIBED}); --threads {cores} or less is faster"
    )


# benchmarks/bench_threads.py on a 2-core machine (docs/checks.md)
OVERSUBSCRIBED = "measured 5x slower per training step at 16x the cores, 11x at 64x"


def check_stored_methods(methods: list[str] | None, rows: list[Any]) -> None:
    """Refuse method names that no stored row has (e.g. a typo in `plot --methods`)."""
    stored = sorted({row.method for row in rows})
    missing = [name for name in methods or [] if name not in stored]
    if missing:
        raise ConfigError(f"--methods: no stored results of {', '.join(repr(m) for m in missing)}; the results hold: {', '.join(stored) or '(none)'}")
