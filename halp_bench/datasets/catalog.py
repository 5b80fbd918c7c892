"""Turning a dataset name or path from the command line into a `SkeletonData`.

A registered name (`synthetic`, `ntu60`, ...) goes to its loader; anything else that exists as a
path, or ends in `.npz`/`.npy`, is read by its format: a prepared directory, the AGCN/CMD
layout, a CTR-GCN `.npz` or the generic `.npz`.
"""

from __future__ import annotations

from pathlib import Path

from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.formats.imported import AGCN_HINT, AGCN_PARTS, is_agcn_dir, is_ctrgcn, load_agcn, load_ctrgcn
from halp_bench.datasets.formats.npz import load_npz_dataset
from halp_bench.datasets.formats.prepared_dir import META_FILE, PARTIAL_DIR, load_prepared
from halp_bench.datasets.formats.safe_load import load_npz
from halp_bench.datasets.pipelines import apply_pipeline
from halp_bench.datasets.quality.checks import check_dataset
from halp_bench.datasets.raw.normalize import normalize_dataset
from halp_bench.errors import ConfigError, DataError
from halp_bench.registry import DATASETS

FORMATS = (
    "a prepared directory (halp-bench prepare), " + AGCN_HINT + ", a CTR-GCN .npz (x_train, y_train, x_test, y_test) or a generic .npz (x, y, split_<name>)"
)


def load_dataset(cfg: DataConfig, check: bool = True, progress: bool = False) -> SkeletonData:
    """Load a registered dataset by name, or a dataset file/directory by its format, scan it
    (datasets/quality/scan.py: once, then cached), check it and normalise it as `cfg.normalize` says
    (datasets/raw/normalize.py). With `check`, data that cannot train is refused here (datasets/quality/checks.py:
    a DataError); the checks of a split are the caller's (`check_split`). Checks and fingerprints
    describe the data as stored; a normalisation is a setting of the cells that use it."""
    name = cfg.dataset
    if name not in DATASETS and (name.endswith((".npz", ".npy")) or Path(name).exists()):
        data = load_path(Path(name))
    else:
        data = DATASETS.get(name)(cfg)
    data.scan(progress=progress)
    if check:
        check_dataset(data)
    if cfg.pipeline not in ("auto", "given") and cfg.normalize != "none":
        raise ConfigError(f"data.pipeline={cfg.pipeline} and data.normalize={cfg.normalize}: choose one (a pipeline normalises the data its way)")
    return apply_pipeline(normalize_dataset(data, cfg.normalize), cfg.pipeline)


def load_path(path: Path) -> SkeletonData:
    """Detect the format of a dataset path and read it (safely: no pickled code is ever run)."""
    if path.is_dir():
        if (path / META_FILE).exists() or (path / PARTIAL_DIR).exists():
            return load_prepared(path)
        if is_agcn_dir(path):
            return load_agcn(path)
    elif path.suffix == ".npy" and path.name in {f"{part}_data_joint.npy" for part in AGCN_PARTS}:
        return load_agcn(path.parent)
    elif path.suffix == ".npz":
        arrays = load_npz(path)
        return load_ctrgcn(path, arrays) if is_ctrgcn(arrays) else load_npz_dataset(path, arrays)
    elif not path.exists():
        raise DataError(path, "file not found")
    raise DataError(path, f"not a dataset format halp-bench reads; expected {FORMATS}")
