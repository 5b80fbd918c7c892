"""What `halp-bench prepare` knows before reading any skeleton: the samples of a raw NTU or PKU-MMD
directory, their labels and splits, and the jobs (one raw file each) the workers will read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halp_bench.datasets.raw.ntu import get_spec, ntu_sample_names, ntu_split_masks, parse_ntu_name, read_missing_list
from halp_bench.datasets.raw.pku import PKU_NUM_CLASSES, PkuSegment, read_pku_labels, read_pku_split
from halp_bench.errors import DataError

MISSING_LISTS = {
    "ntu60": ("NTU_RGBD_samples_with_missing_skeletons.txt", "NTU_RGBD120_samples_with_missing_skeletons.txt"),
    "ntu120": ("NTU_RGBD120_samples_with_missing_skeletons.txt",),
}
PKU_SPLIT_FILES = {"xsub": "cross_subject_v2.txt", "xview": "cross_view_v2.txt"}
PKU_VIEWS = {"L": 1, "M": 2, "R": 3}


@dataclass(frozen=True)
class Job:
    """One raw file for a worker and the output rows it fills (PKU: one per labelled segment)."""

    kind: str  # "ntu" or "pku"
    path: str
    first: int
    segments: tuple[PkuSegment, ...] = ()

    @property
    def count(self) -> int:
        return len(self.segments) if self.kind == "pku" else 1


@dataclass
class Plan:
    """Everything known before any skeleton is read: samples, labels, splits and the jobs."""

    dataset: str
    num_classes: int
    names: list[str]
    labels: np.ndarray
    metadata: dict[str, np.ndarray]
    splits: dict[str, np.ndarray]
    jobs: list[Job]
    fingerprint_items: list[str]  # one line per sample source: what a resume must match
    skipped: dict[str, Any] = field(default_factory=dict)  # left out before reading, and why


def plan_ntu(dataset: str, raw_dirs: list[Path]) -> Plan:
    spec = get_spec(dataset)
    missing_file = find_file(raw_dirs, MISSING_LISTS[dataset])
    if missing_file is None:
        wanted = MISSING_LISTS[dataset][0]
        raise DataError(
            ", ".join(map(str, raw_dirs)),
            f"expected the official list {wanted} in a --raw folder (from github.com/shahroudy/NTURGB-D, "
            "Matlab/); the official preprocessing drops those samples",
        )
    missing = read_missing_list(missing_file)
    every = ntu_sample_names(raw_dirs, dataset)
    paths = [p for p in every if parse_ntu_name(p).name not in missing]
    if not paths:
        raise DataError(missing_file, f"every {dataset} sample found is on this missing list; nothing to prepare")
    ids = [parse_ntu_name(p) for p in paths]
    names = [i.name for i in ids]
    metadata = {key: np.array([getattr(i, key) for i in ids], dtype=np.int64) for key in ("setup", "camera", "performer", "replication", "action")}
    skipped = len(every) - len(paths)
    return Plan(
        dataset=dataset,
        num_classes=spec.num_classes,
        names=names,
        labels=np.array([i.label for i in ids], dtype=np.int64),
        metadata=metadata,
        splits=ntu_split_masks(ids, dataset),
        jobs=[Job("ntu", str(p), row) for row, p in enumerate(paths)],
        fingerprint_items=[f"{p.name}:{p.stat().st_size}" for p in paths],
        skipped={"missing_skeletons": {"count": skipped, "list": missing_file.name, "why": "on the official list of samples with missing skeletons"}},
    )


def plan_pku(raw_dirs: list[Path]) -> Plan:
    split_paths = {}
    for split, file in PKU_SPLIT_FILES.items():
        found = find_file(raw_dirs, (file,))
        if found is None:
            raise DataError(", ".join(map(str, raw_dirs)), f"expected the official split file {file} in a --raw folder")
        split_paths[split] = found
    train_sets = {split: train_names(path) for split, path in split_paths.items()}
    skeleton_dir = find_subdir(raw_dirs, "skeleton")
    label_dir = find_subdir(raw_dirs, "label")
    videos = sorted(p for p in skeleton_dir.iterdir() if p.is_file() and p.suffix == ".txt")
    if not videos:
        raise DataError(skeleton_dir, "expected PKU-MMD skeleton files (*.txt), found none")
    jobs, names, items = [], [], []
    labels, meta_rows, split_rows = [], [], []
    for video_index, video in enumerate(videos):
        label_file = label_dir / video.name
        if not label_file.is_file():
            raise DataError(video, f"expected its label file {label_file}, found none")
        segments = read_pku_labels(label_file, PKU_NUM_CLASSES)
        if not segments:
            continue
        jobs.append(Job("pku", str(video), len(names), tuple(segments)))
        view = PKU_VIEWS.get(video.stem.rsplit("-", 1)[-1], 0)
        for index, seg in enumerate(segments):
            names.append(f"{video.name}_{index}")  # CMD's sample names
            labels.append(seg.label - 1)
            meta_rows.append((video_index, index, seg.start, seg.end, view))
            split_rows.append([video.stem in train_sets[split] for split in PKU_SPLIT_FILES])
        spans = ",".join(f"{s.label}/{s.start}/{s.end}" for s in segments)
        items.append(f"{video.name}:{video.stat().st_size}:{spans}")
    if not names:
        raise DataError(label_dir, "expected labelled actions in the label files, found none")
    meta_array = np.array(meta_rows, dtype=np.int64)
    split_array = np.array(split_rows, dtype=bool)
    return Plan(
        dataset="pku2",
        num_classes=PKU_NUM_CLASSES,
        names=names,
        labels=np.array(labels, dtype=np.int64),
        metadata={key: meta_array[:, k] for k, key in enumerate(("video", "segment", "start", "end", "view"))},
        splits={split: split_array[:, k] for k, split in enumerate(PKU_SPLIT_FILES)},
        jobs=jobs,
        fingerprint_items=items,
    )


def find_file(raw_dirs: list[Path], names: tuple[str, ...]) -> Path | None:
    """The first of `names` (in order of preference) directly inside one of the raw folders."""
    for name in names:
        for folder in raw_dirs:
            if (folder / name).is_file():
                return folder / name
    return None


def find_subdir(raw_dirs: list[Path], word: str) -> Path:
    """The one sub-folder of the raw folders whose name contains `word` (CMD: skeleton/, label/)."""
    found = [d for folder in raw_dirs for d in sorted(folder.iterdir()) if d.is_dir() and word in d.name.lower()]
    if len(found) != 1:
        where = ", ".join(map(str, raw_dirs))
        what = "none" if not found else ", ".join(d.name for d in found)
        raise DataError(where, f"expected exactly one '{word}' folder (PKU-MMD layout: skeleton/, label/ and the split files), found {what}")
    return found[0]


def train_names(path: Path) -> set[str]:
    """Training video names of a split file; every name is refused if it could act as a path
    (`..`, `/`, `\\`, NUL, a drive), although names are only ever compared, never joined to paths."""
    train, test = read_pku_split(path)
    for name in train + test:
        if "/" in name or "\\" in name or ".." in name or "\0" in name or (len(name) > 1 and name[1] == ":"):
            raise DataError(path, f"expected plain video names like A01N01-L, found '{name[:60]}' (path characters refused)")
    return set(train)
