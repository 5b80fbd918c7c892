"""The prepared-dataset directory (what `halp-bench prepare` writes) and its memory-mapped loader.

One directory per dataset, so that a 10-100 GB dataset opens in milliseconds and is never copied
into memory:

    data.npy            (N, 3, T_max, 25, M) float32, zero after each sample's length; memory-mapped:
                        raw camera coordinates, NTU's up to M=4 bodies in file order (`stored`: raw),
                        or with `prepare --normalize` the agcn pipeline's two bodies (`stored`: agcn)
    lengths.npy         (N,) int64 valid frames
    labels.npy          (N,) int64, 0-based
    names.npy           (N,) str sample names
    meta_<key>.npy      (N,) metadata (NTU: setup, camera, performer, replication, action)
    split_<name>.npy    (N,) bool per standard split, True = train
    meta.json           everything else (see `write_meta`), written last and atomically

A directory without a complete `meta.json` is never loaded: an interrupted prepare leaves its work
in `.halp-bench-partial/` (see `prepare.py`) and loading it says how to finish it. Registers the
datasets `ntu60`, `ntu120` and `pku2`, looked up under the data root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.formats.safe_load import load_npy
from halp_bench.errors import ConfigError, DataError
from halp_bench.registry import register_dataset

FORMAT = "halp-bench-prepared"
FORMAT_VERSION = 1
META_FILE = "meta.json"
DATA_FILE = "data.npy"
PARTIAL_DIR = ".halp-bench-partial"  # an unfinished prepare: its presence marks the directory as ours
JOB_FILE = "job.json"
ENV_DATA_ROOT = "HALP_BENCH_DATA"
REQUIRED_META = ("dataset", "num_samples", "num_classes", "layout", "default_split", "splits", "metadata", "fingerprint")

# name -> (description, what --raw must hold) of the datasets `prepare` builds.
PREPARED_DATASETS: dict[str, tuple[str, str]] = {
    "ntu60": ("NTU RGB+D 60 (splits xsub, xview)", "the .skeleton files and NTU_RGBD_samples_with_missing_skeletons.txt"),
    "ntu120": ("NTU RGB+D 120 (splits xsub, xset)", "the .skeleton files of both archives (repeat --raw) and NTU_RGBD120_samples_with_missing_skeletons.txt"),
    "pku2": ("PKU-MMD phase II (splits xsub, xview)", "skeleton/ and label/ folders and cross_subject_v2.txt, cross_view_v2.txt"),
}


def save_array(path: Path, array: np.ndarray) -> None:
    atomic_write_bytes(path, lambda handle: np.save(handle, array, allow_pickle=False))


def array_files(meta: dict[str, Any]) -> list[str]:
    """The array files a complete directory holds besides data.npy (from its meta.json)."""
    files = ["lengths.npy", "labels.npy", "names.npy"]
    files += [f"meta_{key}.npy" for key in meta.get("metadata", [])]
    files += [f"split_{name}.npy" for name in meta.get("splits", {})]
    return files


def read_meta(path: Path) -> dict[str, Any] | None:
    """The parsed meta.json of a prepared directory, None when there is none."""
    file = path / META_FILE
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(file, f"expected the JSON written by `halp-bench prepare`, cannot parse it ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(file, f'expected a meta.json with "format": "{FORMAT}" (not a halp-bench prepared directory)')
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(file, f"format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION}); prepare it again")
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise DataError(file, f"expected the keys {', '.join(REQUIRED_META)}; missing {', '.join(missing)}")
    return meta


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Write meta.json atomically: the last file of a prepare, the mark of a complete directory."""
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **meta}, indent=2)
    atomic_write_bytes(path / META_FILE, lambda handle: handle.write(text.encode("utf-8")))


def read_job(path: Path) -> dict[str, Any] | None:
    """The job description of an unfinished prepare in `path`, None when there is none."""
    file = path / PARTIAL_DIR / JOB_FILE
    if not file.is_file():
        return None
    try:
        job = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(file, f"unfinished prepare with an unreadable job file ({exc}); rerun prepare with --force") from None
    if not isinstance(job, dict):
        raise DataError(file, "unfinished prepare with a malformed job file; rerun prepare with --force")
    return job


def load_prepared(path: str | Path) -> SkeletonData:
    """The dataset in a prepared directory, with `data` memory-mapped read-only (nothing copied)."""
    path = Path(path)
    meta = read_meta(path)
    if meta is None:
        job = read_job(path)
        if job is not None:
            raise DataError(
                path, f"an unfinished prepare (interrupted?), not a complete dataset; finish it with: {job.get('command', 'halp-bench prepare ...')}"
            )
        if not path.is_dir():
            raise DataError(path, "no such directory")
        raise DataError(path, f"expected a prepared dataset directory with a {META_FILE}; make one with `halp-bench prepare`")
    n = meta["num_samples"]

    def array(file: str, shape: tuple[int, ...] = ()) -> np.ndarray:
        values = load_npy(path / file)
        if values.shape != (n, *shape):
            raise DataError(path / file, f"expected shape {(n, *shape)} (meta.json says N={n}), found {values.shape}")
        return values

    data = load_npy(path / DATA_FILE, mmap_mode="r")
    if data.ndim != 5 or len(data) != n or data.dtype != np.float32:
        raise DataError(path / DATA_FILE, f"expected float32 (N={n}, C, T, V, M), found {data.dtype} {data.shape}")
    splits = {}
    for name in meta["splits"]:
        splits[name] = array(f"split_{name}.npy")
        if splits[name].dtype != bool:
            raise DataError(path / f"split_{name}.npy", f"expected a bool mask, found {splits[name].dtype}")
    return SkeletonData(
        name=meta["dataset"],
        data=data,
        lengths=array("lengths.npy"),
        labels=array("labels.npy"),
        num_classes=meta["num_classes"],
        layout=meta["layout"],
        splits=splits,
        default_split=meta["default_split"],
        source=str(path),
        names=[str(name) for name in array("names.npy")],
        metadata={key: array(f"meta_{key}.npy") for key in meta["metadata"]},
        files=(str(path / DATA_FILE),),
        # directories of earlier versions hold the agcn pipeline's output, or (--no-normalize) raw
        # coordinates of the two most active bodies: data as given
        stored=meta.get("stored", "agcn" if meta.get("normalized") else "given"),
    )


def data_root(cfg: DataConfig) -> tuple[Path, str]:
    """(root, where it came from): `data.data_root` (--data-root), then $HALP_BENCH_DATA, then ./data."""
    if cfg.data_root:
        return Path(cfg.data_root), "--data-root"
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT]), f"${ENV_DATA_ROOT}"
    return Path("data"), f"the default ./data (set --data-root or ${ENV_DATA_ROOT})"


def _registered_loader(name: str) -> Callable[[DataConfig], SkeletonData]:
    def load(cfg: DataConfig) -> SkeletonData:
        root, origin = data_root(cfg)
        path = root / name
        if not (path / META_FILE).exists() and not (path / PARTIAL_DIR).exists():
            raise ConfigError(
                f"dataset '{name}' is not prepared: no {path / META_FILE} (data root from {origin}). "
                f"Prepare it with: halp-bench prepare {name} --raw RAW_DIR --out {path}   "
                f"(RAW_DIR holds {PREPARED_DATASETS[name][1]})"
            )
        data = load_prepared(path)
        if data.name != name:
            raise DataError(path / META_FILE, f"expected the prepared dataset '{name}', found '{data.name}'")
        return data

    load.__doc__ = PREPARED_DATASETS[name][0]
    return load


for _name, (_description, _) in PREPARED_DATASETS.items():
    register_dataset(_name, f"{_description}, prepared by `halp-bench prepare {_name}`")(_registered_loader(_name))
