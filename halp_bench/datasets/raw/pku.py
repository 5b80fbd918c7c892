"""PKU-MMD phase II: raw skeleton, label and split files, cut into one sample per action.

Follows CMD's `data_gen/pku_gendata.py` so that prepared data matches what CMD and HaLP report
on: a video's skeleton file has one line of 150 numbers per frame (2 bodies x 25 joints x xyz, an
absent body all zeros); its label file lists actions as `label,start,end,confidence` with 1-based
labels over 51 classes; each action becomes one sample of frames `start:end` (end exclusive, as the
official slice), truncated to `max_frames` while its true length is kept, which the official
feeders clamp with `min(num_frame, max_frames)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halp_bench.datasets.raw.ntu import read_text_lines
from halp_bench.errors import DataError

PKU_NUM_CLASSES = 51
NUM_BODIES, NUM_JOINTS = 2, 25
VALUES_PER_FRAME = NUM_BODIES * NUM_JOINTS * 3
LABEL_FIELDS = ("label", "start", "end", "confidence")


@dataclass(frozen=True)
class PkuSegment:
    """One labelled action of a video; `source`/`line` locate it for error messages."""

    label: int  # 1-based, as in the file
    start: int
    end: int  # exclusive
    confidence: float
    source: str
    line: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


@dataclass
class PkuSamples:
    """The actions of one video as samples, ready to be stacked into a `SkeletonData`."""

    data: np.ndarray  # (S, 3, max_frames, 25, 2) float32, zero after each length
    lengths: np.ndarray  # (S,) frames stored: min(true length, max_frames)
    true_lengths: np.ndarray  # (S,) end - start, what the official `num_frame` holds
    labels: np.ndarray  # (S,) int64, 0-based


def read_pku_skeleton(path: str | Path) -> np.ndarray:
    """(3, T, 25, 2) float32 from a skeleton file, one frame per line."""
    lines = read_text_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(path, f"expected one line of {VALUES_PER_FRAME} numbers per frame, found no frames", line=1)
    try:  # numpy's C parser; it skips blank lines and accepts any constant width, so check both
        values = np.loadtxt(lines, dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        values = None
    if values is None or values.shape != (len(lines), VALUES_PER_FRAME):
        values = np.array([_frame_line(path, number, line) for number, line in enumerate(lines, start=1)])
    frames = values.reshape(len(lines), NUM_BODIES, NUM_JOINTS, 3)
    return np.ascontiguousarray(frames.transpose(3, 0, 2, 1), dtype=np.float32)


def read_pku_labels(path: str | Path, num_classes: int = PKU_NUM_CLASSES) -> list[PkuSegment]:
    """The actions of a label file, in file order; blank lines are skipped."""
    segments = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(LABEL_FIELDS):
            expected = f"{len(LABEL_FIELDS)} comma-separated fields {','.join(LABEL_FIELDS)}"
            raise DataError(path, f"expected {expected}, found {len(fields)}", line=number)
        label, start, end = (_integer(path, number, name, value) for name, value in zip(LABEL_FIELDS[:3], fields))
        confidence = _number(path, number, "confidence", fields[3])
        if not 1 <= label <= num_classes:
            raise DataError(path, f"expected a label in 1..{num_classes}, found {label}", line=number)
        if start < 0 or start >= end:
            expected = "0 <= start < end (the action is frames start..end-1)"
            raise DataError(path, f"expected {expected}, found start {start}, end {end}", line=number)
        segments.append(PkuSegment(label, start, end, confidence, str(path), number))
    return segments


def read_pku_split(path: str | Path) -> tuple[list[str], list[str]]:
    """(training, validation) video names of `cross_subject_v2.txt` / `cross_view_v2.txt`.

    The official files are: `Training videos:`, a line of comma-space separated names,
    `Validataion videos:` (sic), a line of names. The official reader only uses the training line
    and treats every other video as test; both lists are returned so the caller can check.
    """
    lists: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(read_text_lines(path), start=1):
        text = line.strip()
        header = text.lower()
        if header.startswith("training"):
            current = lists.setdefault("train", [])
        elif header.startswith(("validation", "validataion", "test")):
            current = lists.setdefault("test", [])
        elif text:
            if current is None:
                expected = "a 'Training videos:' line before the names (the official format)"
                raise DataError(path, f"expected {expected}", line=number)
            current.extend(name.strip() for name in text.split(",") if name.strip())
    if not lists.get("train"):
        raise DataError(path, "expected a 'Training videos:' line followed by comma-separated video names")
    train, test = lists["train"], lists.get("test", [])
    both = sorted(set(train) & set(test))
    if both:
        raise DataError(path, f"expected disjoint lists, found {len(both)} videos in both (e.g. {both[0]})")
    return train, test


def pku_segments(skeleton: np.ndarray, segments: list[PkuSegment], max_frames: int = 300, skeleton_path: str | Path = "<skeleton>") -> PkuSamples:
    """One sample per action of a (3, T, 25, 2) video; an action beyond the video is a DataError
    on its label line (the official slice would silently shorten it)."""
    total = skeleton.shape[1]
    count = len(segments)
    data = np.zeros((count, 3, max_frames, NUM_JOINTS, NUM_BODIES), dtype=np.float32)
    true_lengths = np.zeros(count, dtype=np.int64)
    for i, seg in enumerate(segments):
        if seg.end > total:
            raise DataError(
                seg.source, f"expected the action within the {total} frames of {skeleton_path}, found frames {seg.start}..{seg.end - 1}", line=seg.line
            )
        kept = min(seg.num_frames, max_frames)
        data[i, :, :kept] = skeleton[:, seg.start : seg.start + kept]
        true_lengths[i] = seg.num_frames
    labels = np.array([seg.label - 1 for seg in segments], dtype=np.int64)
    return PkuSamples(data, np.minimum(true_lengths, max_frames), true_lengths, labels)


def _frame_line(path: str | Path, line: int, text: str) -> list[float]:
    tokens = text.split()
    if len(tokens) != VALUES_PER_FRAME:
        expected = f"{VALUES_PER_FRAME} numbers ({NUM_BODIES} bodies x {NUM_JOINTS} joints x xyz)"
        raise DataError(path, f"expected {expected}, found {len(tokens)}", line=line)
    return [_number(path, line, "a coordinate", token) for token in tokens]


def _number(path: str | Path, line: int, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DataError(path, f"expected a number for {name}, found '{value[:60]}'", line=line) from None


def _integer(path: str | Path, line: int, name: str, value: str) -> int:
    number = _number(path, line, name, value)
    if not number.is_integer():
        raise DataError(path, f"expected an integer for {name}, found '{value[:60]}'", line=line)
    return int(number)
