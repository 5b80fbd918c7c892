"""The data report (`halp-bench data`): a dataset as the harness sees it, before anything trains.

Samples per split part beside the published sizes (NTU), classes and their counts, bodies,
joints and layout, the frame-length distribution, coordinate ranges, the fingerprints and every
check (checks.py) with its outcome. `data_report` gives a JSON-ready dict; `format_report` the
text the command prints. Everything comes from the arrays' scan (scan.py) and the small arrays.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.quality.checks import CHECKS, DATASET_CHECKS, ERROR, SPLIT_CHECKS, Finding, dataset_findings, split_findings
from halp_bench.datasets.quality.fingerprint import content_hash, split_fingerprint
from halp_bench.datasets.raw.ntu import PUBLISHED_SPLIT_COUNTS

CHANNEL_NAMES = {2: ("x", "y"), 3: ("x", "y", "z")}
PERCENTILES = (("min", 0), ("5%", 5), ("25%", 25), ("median", 50), ("75%", 75), ("95%", 95), ("max", 100))


def published_counts(data: SkeletonData) -> tuple[str, dict[str, tuple[int, int]]]:
    """(which dataset, its published (train, test) sizes per split): by name for a prepared
    dataset, else guessed from the path of imported files (NTU60_CS.npz, .../ntu120/xsub)."""
    if data.name in PUBLISHED_SPLIT_COUNTS:
        return data.name, PUBLISHED_SPLIT_COUNTS[data.name]
    path = Path(data.source).as_posix().lower()
    if data.files and "ntu" in path:
        name = "ntu120" if re.search(r"ntu\D{0,12}120", path) else "ntu60"
        return name, PUBLISHED_SPLIT_COUNTS[name]
    return "", {}


def _check_rows(findings: list[Finding], checks: tuple[str, ...], split: str | None, skipped: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per check: its failures, or "ok" ("not run" after an empty split part, or for the
    `skipped` checks that do not apply to the data)."""
    rows = []
    blocked = any(f.check == "split parts" and f.severity == ERROR for f in findings)
    for check in checks:
        failed = [f for f in findings if f.check == check]
        for f in failed:
            rows.append({"check": check, "split": split, "status": f.severity, "message": f.message})
        if not failed:
            status = "not run" if (blocked and check != "split parts") or check in skipped else "ok"
            rows.append({"check": check, "split": split, "status": status, "message": ""})
    return rows


def _lengths(data: SkeletonData) -> dict[str, Any]:
    lengths = np.asarray(data.lengths, dtype=np.float64)
    if not len(lengths):
        return {}
    stats: dict[str, Any] = {name: float(np.percentile(lengths, q)) for name, q in PERCENTILES}
    stats["mean"] = float(lengths.mean())
    stats["at_T"] = int((lengths == data.data.shape[2]).sum())  # samples that fill the array (maybe cut)
    return stats


def _coordinates(data: SkeletonData) -> list[dict[str, Any]]:
    """Per channel over the finite non-zero values of the samples without NaN/Inf."""
    scan = data.scan()
    clean = scan.nonfinite == 0
    count = scan.count[clean].sum(axis=0)
    names = CHANNEL_NAMES.get(data.data.shape[1], tuple(f"c{i}" for i in range(data.data.shape[1])))
    rows = []
    for c, name in enumerate(names):
        if count[c] == 0:
            rows.append({"channel": name, "values": 0})
            continue
        mean = scan.total[clean, c].sum() / count[c]
        var = max(scan.squares[clean, c].sum() / count[c] - mean**2, 0.0)
        rows.append(
            {
                "channel": name,
                "values": int(count[c]),
                "min": float(scan.low[clean, c].min()),
                "max": float(scan.high[clean, c].max()),
                "mean": float(mean),
                "std": float(np.sqrt(var)),
            }
        )
    return rows


def data_report(data: SkeletonData, splits: list[str] | None = None) -> dict[str, Any]:
    """The report of `data` for `splits` (default: every split), JSON-ready."""
    splits = list(data.splits) if splits is None else splits
    for split in splits:
        data.split(split)  # an unknown split: a ConfigError naming the known ones
    scan = data.scan()
    n, channels, frames, joints, persons = data.data.shape
    layout = data.skeleton_layout()
    published_as, published = published_counts(data)
    labels = np.asarray(data.labels)
    findings = dataset_findings(data)
    checks = _check_rows(findings, DATASET_CHECKS, None, skipped=() if data.zero_padded else ("data after length",))
    split_rows: dict[str, Any] = {}
    for split in splits:
        mine = split_findings(data, split)
        checks += _check_rows(mine, SPLIT_CHECKS, split)
        findings += mine
        fingerprint = split_fingerprint(data, split)
        split_rows[split] = {
            "train": fingerprint.train,
            "test": fingerprint.test,
            "fingerprint": fingerprint.hash,
            "published": list(published[split]) if split in published else None,
        }
    classes = []
    for c in range(data.num_classes):
        row: dict[str, Any] = {"class": c, "samples": int((labels == c).sum())}
        for split in splits:
            train = np.asarray(data.splits[split], dtype=bool)
            row[split] = [int((labels[train] == c).sum()), int((labels[~train] == c).sum())]
        classes.append(row)
    bodies = scan.persons.sum(axis=1)
    return {
        "dataset": data.name,
        "source": data.source,
        "samples": int(n),
        "shape": {"C": int(channels), "T": int(frames), "V": int(joints), "M": int(persons)},
        "layout": data.layout or "chain",
        "joints": int(joints),
        "bones": len(layout.bones),
        "num_classes": int(data.num_classes),
        "content_hash": content_hash(data),
        "scan": {"origin": scan.origin, "cache_file": scan.cache_file},
        "published_as": published_as,
        "splits": split_rows,
        "classes": classes,
        "bodies": {str(k): int((bodies == k).sum()) for k in range(persons + 1) if (bodies == k).any()},
        "lengths": _lengths(data),
        "coordinates": _coordinates(data),
        "checks": checks,
        "errors": sum(f.severity == ERROR for f in findings),
        "warnings": sum(f.severity != ERROR for f in findings),
    }


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Plain aligned columns: the first `left` left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fit = lambda r: "  ".join(str(v).ljust(w) if i < left else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    return [fit(header).rstrip(), *(fit(r).rstrip() for r in rows)]


def _count(k: int, noun: str) -> str:
    return f"{k:,} {noun}" + ("" if k == 1 else "es" if noun.endswith("s") else "s")


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def format_report(report: dict[str, Any]) -> str:
    """The text `halp-bench data` prints."""
    shape = report["shape"]
    out = [
        (
            f"{report['dataset']}: {report['samples']:,} samples of (C, T, V, M) = ({shape['C']}, {shape['T']}, {shape['V']}, {shape['M']}), "
            f"layout {report['layout']} ({report['joints']} joints, {report['bones']} bones), {_count(report['num_classes'], 'class')}"
        ),
        f"source: {report['source']}",
        (
            f"content hash: {report['content_hash']} (scan {report['scan']['origin']}"
            + (f"; cache {report['scan']['cache_file']})" if report["scan"]["cache_file"] else ")")
        ),
        "",
    ]
    header, rows = ["split", "train", "test", "fingerprint"], []
    for name, s in report["splits"].items():
        rows.append([name, f"{s['train']:,}", f"{s['test']:,}", s["fingerprint"]])
    if report["published_as"]:  # the published sizes (train / test) beside ours
        header[3:3] = [f"published {report['published_as']}", "same"]
        for row, s in zip(rows, report["splits"].values()):
            same = "yes" if s["published"] == [s["train"], s["test"]] else "no"
            row[3:3] = [f"{s['published'][0]:,} / {s['published'][1]:,}", same] if s["published"] else ["-", ""]
    out += _table(header, rows) + [""]
    splits = list(report["splits"])
    rows = [[str(c["class"]), f"{c['samples']:,}", *(f"{c[s][0]:,} / {c[s][1]:,}" for s in splits)] for c in report["classes"]]
    out += _table(["class", "samples", *(f"{s} train / test" for s in splits)], rows) + [""]
    bodies = ", ".join(f"{count:,} with {k}" for k, count in report["bodies"].items())
    out.append(f"bodies with data per sample: {bodies}")
    lengths = report["lengths"]
    if lengths:
        spread = ", ".join(f"{name} {_num(lengths[name])}" for name, _ in PERCENTILES)
        out.append(f"valid frames: {spread}; mean {lengths['mean']:.1f}; {lengths['at_T']:,} samples fill all T = {shape['T']}")
    out.append("")
    rows = [[c["channel"], f"{c['values']:,}", *(f"{c[k]:.3f}" if k in c else "-" for k in ("min", "max", "mean", "std"))] for c in report["coordinates"]]
    out += _table(["coordinate", "values", "min", "max", "mean", "std"], rows)
    out.append("(over the finite non-zero values: zeros are padding, absent bodies and lost joints)")
    out.append("")
    rows = [[c["status"], c["check"] + (f" ({c['split']})" if c["split"] else ""), c["message"] or CHECKS[c["check"]]] for c in report["checks"]]
    out += _table(["status", "check", "what it found (or verifies)"], rows, left=3)
    out.append(f"{_count(report['errors'], 'error')}, {_count(report['warnings'], 'warning')}")
    return "\n".join(out) + "\n"
