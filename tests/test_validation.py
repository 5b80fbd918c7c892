"""Declared ranges: every numeric setting of every registered plugin (and of the run-level
sections) declares one, values outside it are refused in one line before anything trains, values
inside it are accepted; each method's needs of the data are checked before the first cell."""

from __future__ import annotations

import dataclasses
import math
import random
import typing

import numpy as np
import pytest

from conftest import tiny_overrides
from halp_bench.config import CHOICES, DataConfig, EvalConfig, OptimConfig, RunConfig, make_configs
from halp_bench.errors import ConfigError
from halp_bench.orchestration import grid as runner
from halp_bench.orchestration.cells import Pretrained
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import ENCODERS, METHODS, load_plugins
from halp_bench.validation import Range, numeric_fields, parse_interval, range_of

load_plugins()

RUN_LEVEL = {"": RunConfig, "data.": DataConfig, "pretrain.": OptimConfig, "linear.": OptimConfig, "transfer.": OptimConfig, "eval.": EvalConfig}


def numeric_keys() -> list[tuple[str, str, dataclasses.Field, type, list[str]]]:
    """(key, method to configure, field, its type, extra --set) for every numeric setting."""
    keys = []
    for prefix, klass in RUN_LEVEL.items():
        hints = typing.get_type_hints(klass)
        keys += [(prefix + f.name, "moco", f, hints[f.name], []) for f in numeric_fields(klass)]
    for entry in METHODS.entries():
        for section, klass in (("method", entry.factory.settings_class), ("augment", entry.factory.augment_class)):
            hints = typing.get_type_hints(klass)
            keys += [(f"{section}.{f.name}", entry.name, f, hints[f.name], []) for f in numeric_fields(klass)]
    for entry in ENCODERS.entries():
        klass = entry.factory.settings_class
        hints = typing.get_type_hints(klass)
        keys += [(f"encoder.{f.name}", "moco", f, hints[f.name], [f"encoder.name={entry.name}"]) for f in numeric_fields(klass)]
    return keys


KEYS = numeric_keys()
IDS = [f"{method}:{key}" + (f"[{extra[0]}]" if extra else "") for key, method, _, _, extra in KEYS]


def outside(allowed: Range, integer: bool, rng: random.Random) -> list[float]:
    """Values just and far outside `allowed` (NaN and infinities unless the range holds them)."""
    values: list[float] = []
    for bound, is_open, sign in ((allowed.low, allowed.low_open, -1), (allowed.high, allowed.high_open, 1)):
        if math.isinf(bound):
            continue
        step = 1 if integer else 10 ** rng.uniform(-3, 0)
        values += [bound + sign * step, bound + sign * step * rng.randint(2, 1000)]
        if is_open:
            values.append(bound)
    if not integer:
        values.append(math.nan)
        values += [v for v in (math.inf, -math.inf) if not allowed.allows(v)]
    return values


def inside(allowed: Range, integer: bool, rng: random.Random) -> float:
    low = allowed.low if not math.isinf(allowed.low) else -1e6
    high = allowed.high if not math.isinf(allowed.high) else low + 1000
    for _ in range(100):
        value = rng.randint(math.ceil(low), math.floor(high)) if integer else rng.uniform(low, high)
        if allowed.allows(value):
            return value
    raise AssertionError(f"no value inside {allowed}")


def as_text(value: float, hint: type, allowed: Range) -> str:
    """How `--set` spells `value` (every item of a list setting, as many as it needs)."""
    if typing.get_origin(hint) is tuple:
        return ",".join([as_text(value, typing.get_args(hint)[0], allowed)] * max(allowed.min_items, 1))
    return str(int(value)) if hint is int else repr(float(value))


def test_every_numeric_setting_declares_a_range():
    undeclared = [name for name, (key, method, f, _, _) in zip(IDS, KEYS) if range_of(f) is None]
    assert not undeclared, undeclared
    assert len(KEYS) > 100  # every plugin's settings are in the sweep


@pytest.mark.parametrize("key, method, field, hint, extra", KEYS, ids=IDS)
def test_values_outside_the_declared_range_are_refused_before_any_cell(key, method, field, hint, extra, monkeypatch, tmp_path):
    allowed = range_of(field)
    rng = random.Random(f"{method}:{key}")
    integer = hint is int or (typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is int)

    def no_work(*args, **kwargs):
        raise AssertionError("work started for a configuration that must be refused")

    monkeypatch.setattr(runner, "load_dataset", no_work)
    monkeypatch.setattr(runner, "pretrain_cell", no_work)
    for value in outside(allowed, integer, rng):
        text = as_text(value, hint, allowed)
        spec = RunSpec(methods=[method], preset="cpu", overrides=[*extra, f"{key}={text}"], out=tmp_path / "out", show_progress=False)
        with pytest.raises(ConfigError) as info:
            run_grid(spec, say=lambda _: None)
        message = str(info.value)
        assert message.startswith(f"--set {key}=") and allowed.describe() in message and "\n" not in message, message
    good = as_text(inside(allowed, integer, rng), hint, allowed)
    try:
        make_configs("cpu", [*extra, f"{key}={good}"], [method])
    except ConfigError as exc:  # a rule between two settings may still refuse it, never the range itself
        assert not (str(exc).startswith(f"--set {key}=") and allowed.describe() in str(exc)), exc


@pytest.mark.parametrize("preset", ["cpu", "paper", "official"])
@pytest.mark.parametrize("dataset", ["synthetic", "pku2"])
def test_every_preset_value_lies_in_its_declared_range(preset, dataset):
    make_configs(preset, [f"data.dataset={dataset}"], METHODS.names())  # raises on the first value outside its range


@pytest.mark.parametrize(
    "text, inside_values, outside_values, said",
    [
        ("[0, 1]", [0, 0.5, 1], [-0.01, 1.01, math.nan, math.inf], "in [0, 1]"),
        ("(0, inf)", [1e-9, 1e9], [0, -1, math.inf, math.nan], "> 0"),
        ("[1, inf)", [1, 7], [0, 0.99, math.inf], ">= 1"),
        ("[0, 1)", [0, 0.999], [1, -1e-9], "in [0, 1)"),
    ],
)
def test_interval_notation(text, inside_values, outside_values, said):
    allowed = parse_interval(text)
    assert all(allowed.allows(v) for v in inside_values)
    assert not any(allowed.allows(v) for v in outside_values)
    assert allowed.describe() == said


def test_a_method_that_cannot_use_the_data_stops_the_grid_before_anything_trains(tmp_path, monkeypatch, one_thread):
    """aimclr's flip needs a left-right mirror: a 7-joint chain has none, so the grid is refused
    before random or moco start, not after them."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "chain.npz", x=rng.normal(size=(24, 3, 12, 7, 1)).astype(np.float32), y=np.arange(24) % 3, split_all=np.arange(24) < 16)
    started = []
    monkeypatch.setattr(runner, "pretrain_cell", lambda *args, **kwargs: started.append(args[1]) or Pretrained(failure="not trained here"))
    spec = RunSpec(
        methods=["random", "moco", "aimclr"],
        dataset=str(tmp_path / "chain.npz"),
        protocols=["knn"],
        preset="cpu",
        overrides=tiny_overrides("random", "moco", "aimclr"),
        out=tmp_path / "out",
        show_progress=False,
    )
    with pytest.raises(ConfigError, match="aimclr: the spatial flip needs a left-right joint mirror, which layout 'chain7'"):
        run_grid(spec, say=lambda _: None)
    assert started == []
    spec.overrides.append("augment.flip_prob=0")  # without the flip the same grid is accepted
    run_grid(spec, say=lambda _: None)
    assert started == ["random", "moco", "aimclr"]


def word_keys() -> list[tuple[str, str, list[str]]]:
    """(key, method, extra --set) of every setting that takes one of a few words."""
    keys = [(key, "moco", []) for key in CHOICES]
    for entry in METHODS.entries():
        for section, klass in (("method", entry.factory.settings_class), ("augment", entry.factory.augment_class)):
            keys += [(f"{section}.{name}", entry.name, []) for name in klass.choices]
    for entry in ENCODERS.entries():
        keys += [(f"encoder.{name}", "moco", [f"encoder.name={entry.name}"]) for name in entry.factory.settings_class.choices]
    return keys


@pytest.mark.parametrize("key, method, extra", word_keys(), ids=[f"{m}:{k}{e}" for k, m, e in word_keys()])
def test_a_word_outside_the_declared_choices_is_refused_before_any_cell(key, method, extra, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "load_dataset", lambda *a, **k: pytest.fail("data loaded for a refused configuration"))
    spec = RunSpec(methods=[method], preset="cpu", overrides=[*extra, f"{key}=nosuch"], out=tmp_path / "out", show_progress=False)
    with pytest.raises(ConfigError, match=rf"^--set {key}=nosuch: choose one of \w"):
        run_grid(spec, say=lambda _: None)


def test_list_shows_what_each_setting_allows(monkeypatch, capsys):
    import sys

    from halp_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["halp-bench", "list"])
    monkeypatch.setenv("COLUMNS", "2000")
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    for shown in (
        "temperature=0.07 (> 0)",
        "momentum=0.999 (in [0, 1])",
        "lam=0.8 (in [0, 1])",
        "t_sampling=paper (paper|official|hardest)",
        "dropout=0.5 (in [0, 1))",
    ):
        assert shown in out, shown
