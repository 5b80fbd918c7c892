"""NTU RGB+D 60/120: raw `.skeleton` reader, body selection, missing lists and split rules.

Everything follows the official preprocessing that CMD and HaLP inherit (2s-AGCN /
skeleton-contrast `data_gen/ntu_gendata.py`), so that a benchmark built from these functions is
comparable with published numbers: up to 4 bodies are read by their position in each frame, the 2
with the highest motion energy are kept, the official missing-skeleton samples are dropped and the
standard cross-subject / cross-view / cross-setup rules split the rest. The published split sizes
are kept as data so that `prepare` can report ours vs published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halp_bench.errors import DataError, UnknownNameError

NUM_JOINTS = 25
# bodyID clipedEdges handLeft{Confidence,State} handRight{Confidence,State} isResticted leanX leanY
# trackingState
BODY_FIELDS = 10
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientation(W X Y Z) trackingState
MISSING_LIST_HEADER_LINES = 3

# Cross-subject training performers. The NTU-60 list is the first 20 entries of the NTU-120 one
# (NTU RGB+D 120 paper); both reproduce the published split sizes on the usable samples.
NTU60_TRAIN_SUBJECTS: tuple[int, ...] = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_TRAIN_SUBJECTS: tuple[int, ...] = NTU60_TRAIN_SUBJECTS + (
    45,
    46,
    47,
    49,
    50,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    70,
    74,
    78,
    80,
    81,
    82,
    83,
    84,
    85,
    86,
    89,
    91,
    92,
    93,
    94,
    95,
    97,
    98,
    100,
    103,
)
NTU_TRAIN_CAMERAS: tuple[int, ...] = (2, 3)  # cross-view; cross-setup trains on even setup ids

# (train, test) sample counts of the published splits, after dropping the official missing lists.
PUBLISHED_SPLIT_COUNTS: dict[str, dict[str, tuple[int, int]]] = {
    "ntu60": {"xsub": (40_091, 16_487), "xview": (37_646, 18_932)},
    "ntu120": {"xsub": (63_026, 50_919), "xset": (54_468, 59_477)},
}


@dataclass(frozen=True)
class NtuSpec:
    """Which samples belong to a dataset (setups 1..max_setup, actions 1..num_classes)."""

    name: str
    max_setup: int
    num_classes: int
    train_subjects: tuple[int, ...]

    def contains(self, ntu_id: NtuId) -> bool:
        return 1 <= ntu_id.setup <= self.max_setup and 1 <= ntu_id.action <= self.num_classes


NTU_SPECS: dict[str, NtuSpec] = {
    "ntu60": NtuSpec("ntu60", max_setup=17, num_classes=60, train_subjects=NTU60_TRAIN_SUBJECTS),
    "ntu120": NtuSpec("ntu120", max_setup=32, num_classes=120, train_subjects=NTU120_TRAIN_SUBJECTS),
}

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class NtuId:
    """The ids encoded in an NTU sample name; all 1-based, as in the name."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def name(self) -> str:
        return f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}R{self.replication:03d}A{self.action:03d}"

    @property
    def label(self) -> int:
        """0-based class index, as stored in the prepared labels."""
        return self.action - 1


def get_spec(dataset: str) -> NtuSpec:
    try:
        return NTU_SPECS[dataset]
    except KeyError:
        raise UnknownNameError("NTU dataset", dataset, list(NTU_SPECS)) from None


def parse_ntu_name(name: str | Path) -> NtuId:
    """Ids from `S001C001P001R001A011` (a `.skeleton` suffix or a directory part are allowed)."""
    stem = Path(name).name.removesuffix(".skeleton")
    match = _NAME.fullmatch(stem)
    if match is None:
        raise DataError(name, "expected an NTU sample name like S001C001P001R001A001(.skeleton)")
    ids = [int(g) for g in match.groups()]
    if 0 in ids:
        raise DataError(name, "expected 1-based ids (S, C, P, R and A are never 000)")
    return NtuId(*ids)


def read_missing_list(path: str | Path) -> set[str]:
    """Sample names of an official `*_samples_with_missing_skeletons.txt` (3 header lines)."""
    lines = read_text_lines(path)
    if len(lines) < MISSING_LIST_HEADER_LINES:
        raise DataError(path, f"expected {MISSING_LIST_HEADER_LINES} header lines, then sample names")
    for number, line in enumerate(lines[:MISSING_LIST_HEADER_LINES], start=1):
        if _NAME.fullmatch(line.strip()):
            raise DataError(
                path,
                f"expected {MISSING_LIST_HEADER_LINES} header lines before the names (the official format), found the sample name '{line.strip()}'",
                line=number,
            )
    names: set[str] = set()
    for number, line in enumerate(lines[MISSING_LIST_HEADER_LINES:], start=MISSING_LIST_HEADER_LINES + 1):
        if line.strip():
            try:
                names.add(parse_ntu_name(line.strip()).name)
            except DataError:
                found = line.strip()[:60]
                raise DataError(path, f"expected a sample name like S001C001P001R001A001, found '{found}'", line=number) from None
    return names


def ntu_sample_names(raw_dir: str | Path | Sequence[str | Path], dataset: str, missing: Iterable[str] = ()) -> list[Path]:
    """The `.skeleton` files of `dataset` under `raw_dir` (one folder or several, since NTU-120
    ships as two archives), minus the `missing` names, sorted by sample name."""
    spec = get_spec(dataset)
    dirs = [raw_dir] if isinstance(raw_dir, (str, Path)) else list(raw_dir)
    skipped = set(missing)
    found: dict[str, Path] = {}
    for folder in map(Path, dirs):
        if not folder.is_dir():
            raise DataError(folder, "expected a directory of NTU .skeleton files")
        for path in folder.glob("*.skeleton"):
            ntu_id = parse_ntu_name(path)
            if not spec.contains(ntu_id) or ntu_id.name in skipped:
                continue
            if ntu_id.name in found:
                raise DataError(path, f"duplicate sample: also found at {found[ntu_id.name]}")
            found[ntu_id.name] = path
    if not found:
        where = ", ".join(str(d) for d in dirs)
        rule = f"setups 1-{spec.max_setup}, actions 1-{spec.num_classes}"
        raise DataError(where, f"expected {dataset} .skeleton files ({rule}), found none")
    return [found[name] for name in sorted(found)]


def ntu_split_masks(ids: Sequence[NtuId], dataset: str) -> dict[str, np.ndarray]:
    """Bool masks (True = train) of the standard splits: xsub + xview (NTU-60), xsub + xset (NTU-120)."""
    spec = get_spec(dataset)
    performer = np.array([i.performer for i in ids], dtype=np.int64)
    masks = {"xsub": np.isin(performer, spec.train_subjects)}
    if dataset == "ntu60":
        camera = np.array([i.camera for i in ids], dtype=np.int64)
        masks["xview"] = np.isin(camera, NTU_TRAIN_CAMERAS)
    else:
        setup = np.array([i.setup for i in ids], dtype=np.int64)
        masks["xset"] = setup % 2 == 0
    return masks


@dataclass
class NtuSkeleton:
    """A parsed `.skeleton` file. Body slot m holds the m-th body listed in each frame (as the
    official reader does, not a tracked bodyID); `present` says whether a frame listed it."""

    xyz: np.ndarray  # (max_bodies, T, 25, 3) float32, zero where absent
    present: np.ndarray  # (max_bodies, T) bool

    @property
    def num_frames(self) -> int:
        return self.xyz.shape[1]


def read_skeleton(path: str | Path, max_bodies: int = 4, num_joints: int = NUM_JOINTS) -> NtuSkeleton:
    """Read x, y, z of up to `max_bodies` bodies per frame; bodies beyond are validated, then dropped."""
    lines = read_text_lines(path)
    num_frames = _int_line(lines, 0, path, "the frame count")
    pos = 1
    joint_starts: list[int] = []  # index of each body's first joint line
    slots: list[tuple[int, int]] = []  # (body slot, frame) of each body
    for t in range(num_frames):
        num_bodies = _int_line(lines, pos, path, f"the body count of frame {t + 1}")
        pos += 1
        for m in range(num_bodies):
            fields = _line(lines, pos, path, f"the {BODY_FIELDS} fields of body {m + 1} in frame {t + 1}").split()
            if len(fields) != BODY_FIELDS:
                raise DataError(path, f"expected {BODY_FIELDS} body fields, found {len(fields)}", line=pos + 1)
            found = _int_line(lines, pos + 1, path, "a joint count")
            if found != num_joints:
                raise DataError(path, f"expected {num_joints} joints, found {found}", line=pos + 2)
            pos += 2
            if pos + num_joints > len(lines):
                raise DataError(
                    path,
                    f"expected {num_joints} joint lines for body {m + 1} of frame {t + 1}, found end of file (truncated: the header says {num_frames} frames)",
                    line=len(lines) + 1,
                )
            joint_starts.append(pos)
            slots.append((m, t))
            pos += num_joints
    for extra in range(pos, len(lines)):
        if lines[extra].strip():
            raise DataError(path, f"expected end of file after {num_frames} frames, found more data", line=extra + 1)

    joints = _parse_joints(lines, joint_starts, num_joints, path)  # (bodies, V, 12)
    xyz = np.zeros((max_bodies, num_frames, num_joints, 3), dtype=np.float32)
    present = np.zeros((max_bodies, num_frames), dtype=bool)
    if slots:
        slot, frame = np.array(slots).T
        keep = slot < max_bodies
        xyz[slot[keep], frame[keep]] = joints[keep, :, :3]
        present[slot[keep], frame[keep]] = True
    return NtuSkeleton(xyz, present)


def select_bodies(xyz: np.ndarray, num_bodies: int = 2) -> np.ndarray:
    """(3, T, V, num_bodies) float32 of the `num_bodies` bodies with the highest motion energy.

    Energy is the official `get_nonzero_std`: std of x + std of y + std of z over all joints of the
    body's non-zero frames. Ties (absent bodies) keep the official order, `argsort()[::-1]` of a
    stable sort, i.e. the higher slot first. Missing slots are zero.
    """
    x = np.asarray(xyz, dtype=np.float64)  # (B, T, V, 3)
    order = energy_order(xyz, num_bodies)
    out = np.zeros((3, x.shape[1], x.shape[2], num_bodies), dtype=np.float32)
    out[..., : len(order)] = x[order].transpose(3, 1, 2, 0)
    return out


def energy_order(xyz: np.ndarray, num_bodies: int = 2) -> np.ndarray:
    """The body slots `select_bodies` keeps, most active first (see there)."""
    x = np.asarray(xyz, dtype=np.float64)  # (B, T, V, 3)
    valid = (x != 0).any(axis=(2, 3))
    energy = np.zeros(len(x))
    for b, body in enumerate(x):
        frames = body[valid[b]]
        if len(frames):
            energy[b] = sum(frames[..., c].std() for c in range(3))
    return np.argsort(energy, kind="stable")[::-1][:num_bodies]


def read_text_lines(path: str | Path) -> list[str]:
    """Lines of a raw text file (shared by the raw readers); `splitlines` makes CRLF and LF equal."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"expected a text file, found undecodable bytes at offset {exc.start}") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror}") from None


def _line(lines: list[str], pos: int, path: str | Path, what: str) -> str:
    if pos >= len(lines):
        raise DataError(path, f"expected {what}, found end of file (truncated?)", line=pos + 1)
    return lines[pos]


def _int_line(lines: list[str], pos: int, path: str | Path, what: str) -> int:
    token = _line(lines, pos, path, what).strip()
    try:
        value = int(token)
    except ValueError:
        raise DataError(path, f"expected {what} (an integer), found '{token[:60]}'", line=pos + 1) from None
    if value < 0:
        raise DataError(path, f"expected {what} >= 0, found {value}", line=pos + 1)
    return value


def _parse_joints(lines: list[str], starts: list[int], num_joints: int, path: str | Path) -> np.ndarray:
    """(bodies, V, 12) float64 of all joint lines; parsed at once, or line by line to name a bad one."""
    rows = [lines[s + j] for s in starts for j in range(num_joints)]
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64)
        if values.size == len(rows) * JOINT_FIELDS:
            return values.reshape(len(starts), num_joints, JOINT_FIELDS)
    except ValueError:
        pass
    parsed = [_joint_line(lines, s + j, path) for s in starts for j in range(num_joints)]
    return np.array(parsed, dtype=np.float64).reshape(len(starts), num_joints, JOINT_FIELDS)


def _joint_line(lines: list[str], pos: int, path: str | Path) -> list[float]:
    fields = lines[pos].split()
    if len(fields) != JOINT_FIELDS:
        raise DataError(
            path,
            f"expected {JOINT_FIELDS} numbers per joint (x y z depthX depthY colorX colorY orientation(4) trackingState), found {len(fields)}",
            line=pos + 1,
        )
    try:
        return [float(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise DataError(path, f"expected a number, found '{bad[:60]}'", line=pos + 1) from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
