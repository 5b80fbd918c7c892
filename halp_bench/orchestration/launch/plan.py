"""The units of a grid: one pretraining (method x seed of a run's dataset, split and settings)
with its protocol cells. A unit is what one job runs; its id names its job record
(`<out>/jobs/<unit id>.json`) and is written into the claim of its run directory, so
`halp-bench status` can join the records, the claims and the rows."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from halp_bench.common.atomic import atomic_write_bytes

JOBS_DIR = "jobs"
UNIT_FIELDS = ("method", "seed", "dataset", "split", "protocols", "transfer_from", "preset", "overrides")


def unique(items: Sequence[Any], what: str, say: Callable[[str], None]) -> list[Any]:
    """`items` without repeats (first occurrence kept), saying which repeats were dropped: a
    repeated seed or method would otherwise run, and store, one cell twice."""
    kept = list(dict.fromkeys(items))
    if len(kept) < len(items):
        repeats = sorted({str(item) for item in items if list(items).count(item) > 1})
        say(f"note: {what} {', '.join(repeats)} given more than once; each runs once")
    return kept


def unit_of(spec: Any, method: str, seed: int) -> dict[str, Any]:
    """The unit of `spec` (a runner.RunSpec) for one method and seed, as plain JSON values."""
    return {
        "method": method,
        "seed": int(seed),
        "dataset": spec.dataset,
        "split": spec.split,
        "protocols": list(spec.protocols) if spec.protocols else None,
        "transfer_from": spec.transfer_from,
        "preset": spec.preset,
        "overrides": sorted(own_overrides(spec, method)),
    }


def own_overrides(spec: Any, method: str) -> list[str]:
    """The `--set` items of `spec` that `method` has: a key of another method of the run would be
    refused in a run of this method alone, and dropping it changes none of this method's settings."""
    from halp_bench.config import has_key, make_configs
    from halp_bench.overrides import Override

    cfg = make_configs(spec.preset, [Override("device", spec.device)], [method])[method]
    return [item for item in spec.overrides if has_key(cfg, item.split("=", 1)[0].strip())]


def unit_id(unit: dict[str, Any]) -> str:
    """`<method>_seed<s>_<hash>`: the same unit from any process gives the same id."""
    digest = hashlib.sha256(json.dumps({k: unit.get(k) for k in UNIT_FIELDS}, sort_keys=True).encode()).hexdigest()[:12]
    clean = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(unit["method"]))[:40]
    return f"{clean}_seed{unit['seed']}_{digest}"


def units_of(spec: Any, methods: list[str]) -> list[dict[str, Any]]:
    """Every unit of a run, seed-major like the in-process grid."""
    return [unit_of(spec, method, seed) for seed in spec.seeds for method in methods]


def check_overrides(spec: Any, methods: list[str]) -> None:
    """Refuse a bad `--set` before anything is submitted (a ConfigError), as the in-process run does:
    each key must fit one of the run's methods."""
    from halp_bench.config import make_configs
    from halp_bench.overrides import Override

    make_configs(spec.preset, [*spec.overrides, Override("device", spec.device)], methods)


def spec_for_unit(spec: Any, unit: dict[str, Any]) -> Any:
    """The RunSpec that runs exactly `unit` (one method, one seed) in a job: its method's `--set`
    items alone (own_overrides), no progress bars in its log."""
    return dataclasses.replace(spec, methods=[unit["method"]], seeds=[unit["seed"]], overrides=own_overrides(spec, unit["method"]), show_progress=False)


def write_job_record(out: Path, unit: dict[str, Any], record: dict[str, Any]) -> Path:
    """`<out>/jobs/<unit id>.json`: which launcher and job run the unit, and where its log is."""
    path = Path(out) / JOBS_DIR / f"{unit_id(unit)}.json"
    text = json.dumps({"unit": unit, **record}, sort_keys=True, indent=1).encode()
    atomic_write_bytes(path, lambda handle: handle.write(text))
    return path


def read_job_records(out: Path) -> dict[str, dict[str, Any]]:
    """Unit id -> its job record, for every readable record of the store."""
    folder = Path(out) / JOBS_DIR
    records = {}
    for path in sorted(folder.glob("[!.]*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("unit"), dict):
            records[path.stem] = record
    return records
