"""The data checks: what the harness refuses to train on, and what it only warns about.

They run on every load (`catalog.load_dataset`: the checks of the whole dataset) and for the
split a run uses (the runner: the checks of that split), from the streamed scan (scan.py), so
once a dataset's scan is cached they cost milliseconds. An error makes training or evaluation
meaningless: the data is refused with one line naming the file, what is wrong and where (exit
2). A warning is suspicious but can be legitimate: it is printed in the run's output and stored
with the result rows (`ResultRow.data_warnings`). Sample numbers are 0-based positions in the
dataset (in file order; a joined AGCN directory counts its train file first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from halp_bench.datasets.base import SkeletonData
from halp_bench.errors import DataError

ERROR, WARNING = "error", "warning"
LISTED = 8  # classes named in a message before "..."

# check -> what it verifies and why (printed by `halp-bench data` and in docs/data.md)
CHECKS: dict[str, str] = {
    "finite": "every value is a finite number; one NaN or Inf turns every loss and feature it reaches into NaN (error)",
    "empty samples": "no sample is entirely zero, as a damaged file or a failed read leaves it (warning; error when every sample is)",
    "lengths": "each valid length lies within the array, 0..T frames; a longer one would read past it (error)",
    "data after length": "no sample has non-zero frames after its valid length: they are never used, so the lengths are probably wrong "
    "(warning; not checked for AGCN files with num_frame, whose preprocessing loops each sequence to T)",
    "labels": "labels lie in 0..num_classes-1 (error)",
    "classes": "the labels hold more than one class (error) and every declared class has samples (warning)",
    "persons": "with room for several bodies, some sample uses more than the first; if none does, a person was probably dropped (warning)",
    "split parts": "the split's training and test parts are not empty and hold samples with data (error)",
    "split overlap": "no test sample is identical to a training sample (error when all are: the test repeats the training data; else warning)",
    "test classes": "every test class has training samples, since a test sample of an unseen class can never be right "
    "(error when none has; else warning); the test part holds more than one class (warning)",
    "training classes": "the training part holds more than one class (error) and each of its classes is tested (warning)",
}
DATASET_CHECKS = ("finite", "empty samples", "lengths", "data after length", "labels", "classes", "persons")
SPLIT_CHECKS = ("split parts", "split overlap", "test classes", "training classes")


@dataclass(frozen=True)
class Finding:
    """One failed check: `severity` ERROR or WARNING, `message` one line that says where."""

    check: str
    severity: str
    message: str
    split: str | None = None  # None: a check of the whole dataset

    def line(self) -> str:
        return f"split '{self.split}': {self.message}" if self.split else self.message


def sample(data: SkeletonData, index: int) -> str:
    """'sample 17' (with its name when the data has names), for messages."""
    name = f" ({data.names[index]})" if data.names else ""
    return f"sample {index}{name}"


def _classes(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:LISTED])
    return shown + (f", ... ({len(values)} in all)" if len(values) > LISTED else "")


def dataset_findings(data: SkeletonData) -> list[Finding]:
    """The checks of the whole dataset (DATASET_CHECKS) that fail."""
    scan = data.scan()
    n, _, frames, _, persons = data.data.shape
    lengths, labels = np.asarray(data.lengths), np.asarray(data.labels)
    found: list[Finding] = []

    def fail(check: str, severity: str, message: str) -> None:
        found.append(Finding(check, severity, message))

    if n == 0:
        return [Finding("empty samples", ERROR, "the dataset has no samples")]
    bad = np.flatnonzero(scan.nonfinite)
    if len(bad):
        fail("finite", ERROR, f"{int(scan.nonfinite.sum()):,} non-finite values (NaN/Inf) in {len(bad):,} of {n:,} samples, first in {sample(data, bad[0])}")
    empty = np.flatnonzero(~scan.persons.any(axis=1) & (scan.nonfinite == 0))
    if len(empty) == n:
        fail("empty samples", ERROR, f"every one of the {n:,} samples is entirely zero")
    elif len(empty):
        fail("empty samples", WARNING, f"{len(empty):,} of {n:,} samples are entirely zero, first {sample(data, empty[0])}")
    outside = np.flatnonzero((lengths < 0) | (lengths > frames))
    if len(outside):
        fail(
            "lengths",
            ERROR,
            f"{len(outside):,} samples have a valid length outside 0..{frames} frames (the array's T), "
            f"first {sample(data, outside[0])} with {int(lengths[outside[0]])}",
        )
    after = np.flatnonzero((scan.extent > lengths) & (lengths >= 0)) if data.zero_padded else []
    if len(after):
        i = after[0]
        fail(
            "data after length",
            WARNING,
            f"{len(after):,} samples have non-zero frames after their valid length, first "
            f"{sample(data, i)}: length {int(lengths[i])}, data up to frame {int(scan.extent[i])}",
        )
    wrong = np.flatnonzero((labels < 0) | (labels >= data.num_classes))
    if len(wrong):
        fail(
            "labels",
            ERROR,
            f"{len(wrong):,} labels outside 0..{data.num_classes - 1} (num_classes {data.num_classes}), "
            f"first {sample(data, wrong[0])} with {int(labels[wrong[0]])}",
        )
    present = np.unique(labels[(labels >= 0) & (labels < data.num_classes)])
    if len(present) == 1:
        fail("classes", ERROR, f"a single class ({int(present[0])}) in all {n:,} samples: there is nothing to tell apart")
    absent = np.setdiff1d(np.arange(data.num_classes), present)
    if len(present) > 1 and len(absent):
        fail("classes", WARNING, f"{len(absent)} of {data.num_classes} classes have no sample: {_classes(absent)}")
    clean = scan.nonfinite == 0
    if persons > 1 and clean.any() and not scan.persons[clean, 1:].any():
        bodies = "body 2" if persons == 2 else f"bodies 2..{persons}"
        fail("persons", WARNING, f"no sample uses {bodies} (the array has room for {persons}): a second person may have been dropped")
    return found


def split_findings(data: SkeletonData, split: str) -> list[Finding]:
    """The checks of one split (SPLIT_CHECKS) that fail; `split` must exist."""
    scan = data.scan()
    train_mask = np.asarray(data.splits[split], dtype=bool)
    labels = np.asarray(data.labels)
    found: list[Finding] = []

    def fail(check: str, severity: str, message: str) -> None:
        found.append(Finding(check, severity, message, split))

    with_data = scan.persons.any(axis=1) | (scan.nonfinite > 0)
    for part, mask in (("training", train_mask), ("test", ~train_mask)):
        if not mask.any():
            fail("split parts", ERROR, f"the {part} part is empty")
        elif not with_data[mask].any():
            fail("split parts", ERROR, f"every sample of the {part} part is entirely zero")
    if found:
        return found
    usable = scan.persons.any(axis=1) & (scan.nonfinite == 0)  # all-zero and NaN samples are reported by their own checks
    train, test = np.flatnonzero(train_mask & usable), np.flatnonzero(~train_mask & usable)
    keys = scan.digests.view("<u8")[:, 0]  # 64 bits of each sample's digest: a false match is a 2^-64 event
    repeated = test[np.isin(keys[test], keys[train])]
    if len(repeated) and len(repeated) == len(test):
        fail("split overlap", ERROR, f"every test sample ({len(test):,} with data) is identical to a training sample: the test part repeats the training data")
    elif len(repeated):
        fail("split overlap", WARNING, f"{len(repeated):,} test samples are identical to training samples, first {sample(data, repeated[0])}")
    train_classes, test_labels = np.unique(labels[train_mask]), labels[~train_mask]
    unseen = np.setdiff1d(np.unique(test_labels), train_classes)
    unseen_samples = int(np.isin(test_labels, unseen).sum())
    if unseen_samples == len(test_labels):
        fail("test classes", ERROR, f"no test sample's class ({_classes(unseen)}) appears in the training part: every prediction must be wrong")
    elif len(unseen):
        fail(
            "test classes",
            WARNING,
            f"classes {_classes(unseen)} appear in the test part ({unseen_samples:,} samples) but not in the "
            "training part: those samples can never be classified correctly",
        )
    if len(np.unique(test_labels)) == 1 and unseen_samples < len(test_labels):
        fail("test classes", WARNING, f"the test part holds a single class ({int(test_labels[0])})")
    if len(train_classes) == 1:
        fail("training classes", ERROR, f"the training part holds a single class ({int(train_classes[0])}): no classifier can learn from it")
    untested = np.setdiff1d(train_classes, test_labels)
    if len(train_classes) > 1 and len(untested):
        fail("training classes", WARNING, f"classes {_classes(untested)} have training samples but none in the test part: their accuracy is never measured")
    return found


def refuse(data: SkeletonData, findings: list[Finding]) -> None:
    """Raise one DataError naming the data and every error among `findings` (none: return)."""
    errors = [f.line() for f in findings if f.severity == ERROR]
    if errors:
        raise DataError(data.source, "refused by the data check: " + "; ".join(errors) + f" (report: halp-bench data {data.name})")


def check_dataset(data: SkeletonData) -> list[Finding]:
    """Refuse data that cannot train (DataError); return the warnings of the whole dataset."""
    findings = dataset_findings(data)
    refuse(data, findings)
    return findings


def check_split(data: SkeletonData, split: str) -> list[Finding]:
    """Refuse a split that cannot train or evaluate (DataError); return every warning that
    concerns it: the dataset's and the split's own. The split's checks run on a dataset that
    passed its own, so a refusal names causes, not their consequences (`halp-bench data` lists all)."""
    findings = check_dataset(data) + split_findings(data, split)
    refuse(data, findings)
    return findings
