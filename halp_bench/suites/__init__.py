"""Named suites: lists of run-grid entries (`halp-bench run --suite paper-table1`).

A suite is a JSON file, `{"description": ..., "entries": [{...}, ...]}`, shipped in this package
(so it is found when installed) or given as a path. Each entry sets fields of a `RunSpec`: methods,
dataset, split, protocols, preset, transfer_from, overrides (`--set` items) and seeds; what it does
not set comes from the command line. Entries sharing a pretraining (same method, dataset, split,
preset, seed and pretraining settings) share its checkpoint, e.g. paper-table3 reuses the NTU
checkpoints of paper-table1.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

from halp_bench.errors import DataError, UnknownNameError
from halp_bench.orchestration.grid import RunSpec

ENTRY_FIELDS = ("methods", "dataset", "split", "protocols", "preset", "transfer_from", "overrides", "seeds")


def suite_names() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def load_suite(name: str) -> dict[str, Any]:
    """A shipped suite by name, or a suite file by path."""
    if name in suite_names():
        text, source = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8"), name
    elif name.endswith(".json") and Path(name).is_file():
        text, source = Path(name).read_text(encoding="utf-8"), name
    else:
        raise UnknownNameError("suite", name, suite_names())
    try:
        suite = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(source, f"not valid JSON: {exc}") from None
    entries = suite.get("entries") if isinstance(suite, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise DataError(source, 'expected {"description": ..., "entries": [{...}, ...]} with at least one entry')
    for number, entry in enumerate(entries, start=1):
        unknown = sorted(set(entry) - set(ENTRY_FIELDS))
        if unknown:
            raise DataError(source, f"entry {number}: unknown field(s) {', '.join(unknown)}; known: {', '.join(ENTRY_FIELDS)}")
    return suite


def suite_specs(name: str, base: RunSpec, keep: tuple[str, ...] = ()) -> list[RunSpec]:
    """One RunSpec per entry: the entry's fields over `base`, except those named in `keep` (given on
    the command line); the entry's overrides come before `base.overrides`, so `--set` wins."""
    specs = []
    for entry in load_suite(name)["entries"]:
        fields = {k: v for k, v in entry.items() if k not in keep}
        fields["overrides"] = [*fields.get("overrides", []), *base.overrides]
        specs.append(dataclasses.replace(base, **fields))
    return specs
