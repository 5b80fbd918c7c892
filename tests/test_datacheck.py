"""The data checks, the scan behind them, the fingerprint in every row and the `data` report.

Each defect is built as a small file of the format that can hold it; the checks must refuse it
(exit 2, one line naming the file, what and where) or warn about it (stored with the rows), and
clean data must pass without a word.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_overrides
from halp_bench.cli import main
from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.prepared_dir import DATA_FILE, save_array, write_meta
from halp_bench.datasets.quality import scan as scan_module
from halp_bench.datasets.quality.checks import ERROR, WARNING, check_split, dataset_findings, split_findings
from halp_bench.datasets.quality.fingerprint import content_hash, split_fingerprint
from halp_bench.datasets.quality.report import data_report
from halp_bench.datasets.quality.scan import compute_scan
from halp_bench.errors import DataError
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.orchestration.run_dirs import DATA_RECORD
from halp_bench.results.row import ResultRow, read_rows
from halp_bench.results.store import RESULTS_FILE
from halp_bench.results.tables import build_tables, to_markdown

N, T, V = 24, 12, 5  # samples, frames, joints of the small clean dataset


def clean_arrays(bodies: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random skeletons zero after random lengths; 3 classes in both parts of split 'a'."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 3, T, V, bodies)).astype(np.float32)
    length = rng.integers(T // 2, T + 1, size=N)
    for i, valid in enumerate(length):
        x[i, :, valid:] = 0
    return {"x": x, "y": np.arange(N) % 3, "length": length, "split_a": np.arange(N) < 16}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def write_prepared(path: Path, arrays: dict[str, np.ndarray], num_classes: int | None = None, name: str = "mine") -> Path:
    """A prepared directory (what `halp-bench prepare` writes) holding `arrays` as they are."""
    x, labels, lengths = arrays["x"], arrays["y"], arrays["length"]
    path.mkdir(parents=True)
    save_array(path / DATA_FILE, x.astype(np.float32))
    save_array(path / "lengths.npy", lengths.astype(np.int64))
    save_array(path / "labels.npy", labels.astype(np.int64))
    save_array(path / "names.npy", np.array([f"s{i:03d}" for i in range(len(x))]))
    splits = {key[len("split_") :]: mask for key, mask in arrays.items() if key.startswith("split_")}
    for split, mask in splits.items():
        save_array(path / f"split_{split}.npy", mask)
    write_meta(
        path,
        {
            "dataset": name,
            "num_samples": len(x),
            "num_classes": num_classes or int(labels.max()) + 1,
            "layout": "",
            "default_split": next(iter(splits)),
            "splits": {s: {} for s in splits},
            "metadata": [],
            "fingerprint": "test",
        },
    )
    return path


def edited(change: Callable[[dict[str, np.ndarray]], None], bodies: int = 1) -> dict[str, np.ndarray]:
    arrays = clean_arrays(bodies)
    change(arrays)
    return arrays


def _set(key: str, index, value) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[key][index] = value

    return change


def _copy_train_to_test(count: int) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        for i in range(count):
            arrays["x"][16 + i], arrays["length"][16 + i] = arrays["x"][i], arrays["length"][i]

    return change


def _relabel(labels: list[int]) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays["y"] = np.array(labels)

    return change


TRAIN_012_TEST = lambda test: [i % 3 for i in range(16)] + test  # labels: classes 0-2 in training, `test` after

# case -> (file maker, severity, what the one line must say[, how many other findings follow from it])
DEFECTS: dict[str, tuple] = {
    "NaN and Inf values": (
        lambda p: write_npz(p / "d.npz", edited(lambda a: (a["x"].__setitem__((5, 0, 2, 1, 0), np.nan), a["x"].__setitem__((9, 1, 0, 0, 0), np.inf)))),
        ERROR,
        "2 non-finite values (NaN/Inf) in 2 of 24 samples, first in sample 5",
    ),
    "one all-zero sample": (lambda p: write_npz(p / "d.npz", edited(_set("x", 7, 0))), WARNING, "1 of 24 samples are entirely zero, first sample 7"),
    "every sample zero": (lambda p: write_npz(p / "d.npz", edited(lambda a: a["x"].fill(0))), ERROR, "every one of the 24 samples is entirely zero"),
    "length past the array": (
        lambda p: write_prepared(p / "d", edited(_set("length", 3, T + 5))),
        ERROR,
        f"1 samples have a valid length outside 0..{T} frames (the array's T), first sample 3 (s003) with {T + 5}",
    ),
    "frames after the length": (
        lambda p: write_npz(p / "d.npz", edited(lambda a: a["length"].__setitem__(4, 1) or a["x"][4].fill(1.0))),
        WARNING,
        f"1 samples have non-zero frames after their valid length, first sample 4: length 1, data up to frame {T}",
    ),
    "label out of range": (
        lambda p: write_prepared(p / "d", edited(_set("y", 11, 7)), num_classes=3),
        ERROR,
        "1 labels outside 0..2 (num_classes 3), first sample 11 (s011) with 7",
    ),
    "a single class": (
        lambda p: write_npz(p / "d.npz", edited(_relabel([0] * N))),
        ERROR,
        "a single class (0) in all 24 samples: there is nothing to tell apart",
    ),
    "a declared class without samples": (
        lambda p: write_npz(p / "d.npz", {**clean_arrays(), "num_classes": np.array(5)}),
        WARNING,
        "2 of 5 classes have no sample: 3, 4",
    ),
    "the second body never used": (
        lambda p: write_npz(p / "d.npz", edited(lambda a: a["x"][..., 1].fill(0), bodies=2)),
        WARNING,
        "no sample uses body 2 (the array has room for 2): a second person may have been dropped",
    ),
    "an empty test part": (
        lambda p: write_prepared(p / "d", {**clean_arrays(), "split_a": np.ones(N, dtype=bool)}),
        ERROR,
        "split 'a': the test part is empty",
    ),
    "a test part of all-zero samples": (
        lambda p: write_npz(p / "d.npz", edited(lambda a: a["x"][16:].fill(0))),
        ERROR,
        "split 'a': every sample of the test part is entirely zero",
        1,
    ),
    "test samples copied from training": (
        lambda p: write_npz(p / "d.npz", edited(_copy_train_to_test(8))),
        ERROR,
        "split 'a': every test sample (8 with data) is identical to a training sample",
    ),
    "one test sample copied": (
        lambda p: write_npz(p / "d.npz", edited(_copy_train_to_test(1))),
        WARNING,
        "split 'a': 1 test samples are identical to training samples, first sample 16",
    ),
    "a test class never trained": (
        lambda p: write_npz(p / "d.npz", edited(_relabel(TRAIN_012_TEST([0, 1, 2, 3, 3, 0, 1, 2])))),
        WARNING,
        "split 'a': classes 3 appear in the test part (2 samples) but not in the training part",
    ),
    "no test class trained": (
        lambda p: write_npz(p / "d.npz", edited(_relabel(TRAIN_012_TEST([3, 4] * 4)))),
        ERROR,
        "split 'a': no test sample's class (3, 4) appears in the training part: every prediction must be wrong",
        1,
    ),
    "a trained class never tested": (
        lambda p: write_npz(p / "d.npz", edited(_relabel(TRAIN_012_TEST([0, 1] * 4)))),
        WARNING,
        "split 'a': classes 2 have training samples but none in the test part",
    ),
    "a single training class": (
        lambda p: write_npz(p / "d.npz", edited(_relabel([0] * 16 + [0, 1] * 4))),
        ERROR,
        "split 'a': the training part holds a single class (0): no classifier can learn from it",
        1,
    ),
}


def report_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["halp-bench", *args])
    monkeypatch.setenv("COLUMNS", "300")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", list(DEFECTS))
def test_each_defect_is_refused_or_warned_in_one_line(case, tmp_path, monkeypatch, capsys):
    make, severity, expected, *consequences = DEFECTS[case]
    path = make(tmp_path)
    data = load_dataset(DataConfig(dataset=str(path)), check=False)
    findings = dataset_findings(data)
    if not any(f.severity == ERROR for f in findings):  # the split's checks run on a dataset that passed its own
        findings += split_findings(data, "a")
    (finding,) = [f for f in findings if expected in f.line()]
    assert finding.severity == severity
    assert len(findings) == 1 + sum(consequences), findings  # this defect and what follows from it, nothing else
    code, out, err = report_cli(["data", str(path), "--no-progress"], monkeypatch, capsys)
    assert expected.split(": ", 1)[-1] in out  # the report shows it
    if severity == ERROR:
        with pytest.raises(DataError) as info:
            check_split(load_dataset(DataConfig(dataset=str(path)), check=False), "a")
        assert str(info.value).startswith(f"{path}: refused by the data check: ") and expected in str(info.value)
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    else:
        assert [f.line() for f in check_split(data, "a")] == [finding.line()]
        assert code == 0 and err == "", err


def test_the_issue_example_nan_coordinates_and_one_class_is_refused(tmp_path, monkeypatch, capsys):
    """An .npz of NaN coordinates and one class used to report 100 % kNN top-1."""
    x = np.full((N, 3, T, 25, 2), np.nan, dtype=np.float32)
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(N, dtype=int), split_a=np.arange(N) < 16)
    code, _, err = report_cli(
        [
            "run",
            "--methods",
            "random",
            "--dataset",
            str(tmp_path / "nan.npz"),
            "--split",
            "a",
            "--protocols",
            "knn",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'nan.npz'}: refused by the data check: 43,200 non-finite values (NaN/Inf) in 24 of 24 samples, first in sample 0" in err
    assert "a single class (0) in all 24 samples" in err
    assert not (tmp_path / "out" / RESULTS_FILE).exists()


def test_imported_formats_are_checked_on_load(tmp_path):
    """The AGCN directory and the CTR-GCN file go through the same checks."""
    rng = np.random.default_rng(0)
    agcn = tmp_path / "xsub"
    agcn.mkdir()
    for part, n in (("train", 6), ("val", 4)):
        x = rng.normal(size=(n, 3, 10, 25, 2)).astype(np.float32)
        if part == "val":
            x[2, 0, 0, 0, 0] = np.nan
        np.save(agcn / f"{part}_data_joint.npy", x)
        (agcn / f"{part}_label.pkl").write_bytes(pickle.dumps(([f"v{i}" for i in range(n)], [i % 2 for i in range(n)])))
    with pytest.raises(
        DataError,
        match=r"xsub: refused by the data check: 1 non-finite values \(NaN/Inf\) in 1 of 10 samples, "
        r"first in sample 8 \(v2\)",
    ):
        load_dataset(DataConfig(dataset=str(agcn)))
    for part, n in (("train", 6), ("val", 4)):  # frames after num_frame are 2s-AGCN's looped padding, not a defect
        np.save(agcn / f"{part}_data_joint.npy", rng.normal(size=(n, 3, 10, 25, 2)).astype(np.float32))
        np.save(agcn / f"{part}_num_frame.npy", np.full(n, 4))
    looped = load_dataset(DataConfig(dataset=str(agcn)))
    assert not looped.zero_padded and check_split(looped, "xsub") == []
    assert {c["check"]: c["status"] for c in data_report(looped)["checks"]}["data after length"] == "not run"
    eye = np.eye(4, dtype=np.float32)
    np.savez(
        tmp_path / "NTU60_CS.npz",
        x_train=rng.normal(size=(4, 6, 150)).astype(np.float32),
        y_train=eye[[0, 0, 0, 0]],
        x_test=rng.normal(size=(2, 6, 150)).astype(np.float32),
        y_test=eye[[0, 0]],
    )
    with pytest.raises(DataError, match="NTU60_CS.npz: refused by the data check: a single class"):
        load_dataset(DataConfig(dataset=str(tmp_path / "NTU60_CS.npz")))


def test_clean_data_passes_without_a_warning(tmp_path, monkeypatch, capsys):
    for dataset in ("synthetic", str(write_npz(tmp_path / "clean.npz", clean_arrays(bodies=2)))):
        data = load_dataset(DataConfig(dataset=dataset))
        assert all(check_split(data, split) == [] for split in data.splits)
        code, out, err = report_cli(["data", dataset, "--no-progress"], monkeypatch, capsys)
        assert code == 0 and err == "" and out.rstrip().endswith("0 errors, 0 warnings"), out


def test_the_scan_matches_a_direct_computation_in_any_chunking(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(13, 3, 7, 4, 2)).astype(np.float32)
    x[2] = 0
    x[4, :, 5:] = 0
    x[5, ..., 1] = 0
    x[6, 1, 3, 2, 0], x[6, 2, 0, 0, 1], x[8, 0, 0, 0, 0] = np.nan, -np.inf, np.inf
    x[9, 0] = 0  # a channel without values
    expected = compute_scan(x[:0])  # the empty array still has per-sample arrays of the right shapes
    assert expected.digests.shape == (0, 16) and expected.persons.shape == (0, 2)
    finite = np.isfinite(x)
    clean = np.where(finite, x, 0)
    nonzero = clean != 0
    for chunk_bytes, workers in ((1 << 30, 1), (x[0].nbytes * 2, 3), (1, 2)):
        monkeypatch.setattr(scan_module, "CHUNK_BYTES", chunk_bytes)
        scan = compute_scan(x, workers=workers)
        for i in range(len(x)):
            assert bytes(scan.digests[i]) == hashlib.sha256(x[i].tobytes()).digest()[:16]
            assert scan.nonfinite[i] == (~finite[i]).sum()
            assert scan.persons[i].tolist() == [bool(nonzero[i, ..., m].any()) for m in range(2)]
            used = np.flatnonzero(nonzero[i].any(axis=(0, 2, 3)))
            assert scan.extent[i] == (used[-1] + 1 if len(used) else 0)
            for c in range(3):
                values = clean[i, c][nonzero[i, c]].astype(np.float64)
                assert scan.count[i, c] == len(values)
                assert scan.total[i, c] == pytest.approx(values.sum(), abs=1e-9)
                assert scan.squares[i, c] == pytest.approx((values**2).sum(), rel=1e-5, abs=1e-9)
                assert scan.low[i, c] == (values.min() if len(values) else np.inf)
                assert scan.high[i, c] == (values.max() if len(values) else -np.inf)
    assert scan.extent[4] == 5 and scan.extent[2] == 0 and scan.nonfinite[6] == 2 and scan.persons[5].tolist() == [True, False]


def test_fingerprint_is_stable_cached_and_changes_with_one_sample(tmp_path):
    arrays = clean_arrays()
    arrays["split_b"] = np.arange(N) % 2 == 0
    path = write_prepared(tmp_path / "mine", arrays)
    first = load_dataset(DataConfig(dataset=str(path)))
    assert first.scan().origin == "computed" and first.scan().cache_file
    again = load_dataset(DataConfig(dataset=str(path)))
    assert again.scan().origin == "cached"  # not hashed again
    assert split_fingerprint(again, "a") == split_fingerprint(first, "a")
    assert split_fingerprint(first, "a").hash != split_fingerprint(first, "b").hash  # the split is part of it
    assert split_fingerprint(first, "a").to_dict() == {
        "hash": split_fingerprint(first, "a").hash,
        "samples": N,
        "train": 16,
        "test": 8,
        "num_classes": 3,
        "layout": "",
        "shape": [3, T, V, 1],
    }
    moved = tmp_path / "elsewhere"
    shutil.copytree(path, moved)
    assert content_hash(load_dataset(DataConfig(dataset=str(moved)))) == content_hash(first)  # the content, not the path
    x = np.load(path / DATA_FILE)
    x[13, 2, 0, 1, 0] += 1e-3  # one value of one sample
    save_array(path / DATA_FILE, x)
    changed = load_dataset(DataConfig(dataset=str(path)))
    assert changed.scan().origin == "computed"
    assert split_fingerprint(changed, "a").hash != split_fingerprint(first, "a").hash
    labels = np.load(path / "labels.npy")
    save_array(path / "labels.npy", labels[::-1].copy())  # the labels are part of it too (not cached)
    assert split_fingerprint(load_dataset(DataConfig(dataset=str(path))), "a").hash != split_fingerprint(changed, "a").hash


def test_an_unwritable_cache_costs_only_the_reuse(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv(scan_module.ENV_CACHE, str(blocker))
    data = load_dataset(DataConfig(dataset=str(write_npz(tmp_path / "d.npz", clean_arrays()))))
    assert data.scan().origin.startswith("computed, not cached (") and len(split_fingerprint(data, "a").hash) == 16


def _spec(tmp_path: Path, dataset: Path, methods: tuple[str, ...] = ("random",)) -> RunSpec:
    return RunSpec(
        methods=list(methods),
        dataset=str(dataset),
        split="a",
        protocols=["knn"],
        preset="cpu",
        overrides=tiny_overrides(*methods),
        out=tmp_path / "out",
        show_progress=False,
    )


def test_rows_store_the_fingerprint_and_warnings_and_rerun_when_the_data_changes(tmp_path):
    path = write_prepared(tmp_path / "mine", edited(_set("x", 7, 0)))
    said: list[str] = []
    assert [o.status for o in run_grid(_spec(tmp_path, path), say=said.append)] == ["ran"]
    warning = "1 of 24 samples are entirely zero, first sample 7 (s007)"
    assert f"data warning: {path}/a: {warning}" in said
    (row,) = read_rows(tmp_path / "out" / RESULTS_FILE)
    assert row.data_fingerprint == {"evaluated_on": split_fingerprint(load_dataset(DataConfig(dataset=str(path))), "a").to_dict()}
    assert row.data_warnings == [f"{path}/a: {warning}"]
    assert [o.status for o in run_grid(_spec(tmp_path, path), say=said.append)] == ["skipped"]

    x = np.load(path / DATA_FILE)
    x[7, :, 0] = 1.0  # another preparation of "the same" dataset
    save_array(path / DATA_FILE, x)
    said.clear()
    assert [o.status for o in run_grid(_spec(tmp_path, path), say=said.append)] == ["ran"]
    assert any("the stored result was computed on other data" in line and "running the cell again" in line for line in said), said
    old, new = read_rows(tmp_path / "out" / RESULTS_FILE)
    assert old.data_id != new.data_id and new.data_warnings == []


def test_rows_from_before_fingerprints_count_as_matching(tmp_path):
    path = write_npz(tmp_path / "d.npz", clean_arrays())
    run_grid(_spec(tmp_path, path), say=lambda _: None)
    results = tmp_path / "out" / RESULTS_FILE
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    shutil.rmtree(tmp_path / "out" / "cells")  # a store that old had no cell files either
    for row in rows:
        del row["data_fingerprint"], row["data_warnings"], row["cell_file"]
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (old,) = read_rows(results)
    assert old.data_fingerprint == {} and old.data_id is None and old.data_warnings == []
    assert [o.status for o in run_grid(_spec(tmp_path, path), say=lambda _: None)] == ["skipped"]


def test_a_checkpoint_pretrained_on_other_data_is_retrained(tmp_path, one_thread):
    path = write_prepared(tmp_path / "mine", clean_arrays())
    run_grid(_spec(tmp_path, path, ("moco",)), say=lambda _: None)
    (run_dir,) = (tmp_path / "out" / "runs").iterdir()
    recorded = json.loads((run_dir / DATA_RECORD).read_text())
    assert recorded["hash"] == read_rows(tmp_path / "out" / RESULTS_FILE)[0].data_id
    x = np.load(path / DATA_FILE)
    save_array(path / DATA_FILE, x * 2)
    said: list[str] = []
    run_grid(_spec(tmp_path, path, ("moco",)), say=said.append)
    assert any("was pretrained on other data" in line and "pretraining again" in line for line in said), said
    assert any(line.startswith("pretrained moco on") for line in said), said
    assert json.loads((run_dir / DATA_RECORD).read_text())["hash"] != recorded["hash"]


def _row(seed: int, top1: float, data_hash: str | None) -> ResultRow:
    fingerprint = {"evaluated_on": {"hash": data_hash}} if data_hash else {}
    return ResultRow(
        method="moco",
        dataset="ntu60",
        split="xsub",
        protocol="knn",
        transfer_from=None,
        preset="paper",
        seed=seed,
        config_id="c1",
        metrics={"top1": top1},
        data_fingerprint=fingerprint,
        finished=f"2024-01-0{seed + 1}",
    )


def test_tables_never_average_rows_of_different_data():
    averaged = to_markdown(build_tables([_row(0, 50.0, "a" * 16), _row(1, 60.0, None)], ("knn",))[0])
    assert "| 55.0 ± 7.1 (n=2) |" in averaged and "[data" not in averaged  # a row from before fingerprints counts as matching
    apart = to_markdown(build_tables([_row(0, 50.0, "a" * 16), _row(1, 60.0, "b" * 16)], ("knn",))[0])
    assert re.search(r"\| moco \[data aaaaaaaa\] \| +50\.0 \|", apart) and re.search(r"\| moco \[data bbbbbbbb\] \| +60\.0 \|", apart), apart
    assert "rows of one cell computed on different data (their data fingerprints differ" in apart


def test_report_counts_and_json(tmp_path, monkeypatch, capsys):
    arrays = clean_arrays(bodies=2)
    arrays["x"][3, ..., 1] = 0
    path = write_npz(tmp_path / "d.npz", arrays)
    data = load_dataset(DataConfig(dataset=str(path)))
    report = data_report(data)
    lengths = arrays["length"]
    assert report["samples"] == N and report["shape"] == {"C": 3, "T": T, "V": V, "M": 2}
    assert report["splits"]["a"]["train"] == 16 and report["splits"]["a"]["test"] == 8
    assert report["classes"][1] == {"class": 1, "samples": 8, "a": [5, 3]}
    assert report["bodies"] == {"1": 1, "2": N - 1}
    assert report["lengths"]["median"] == np.median(lengths) and report["lengths"]["max"] == lengths.max()
    x = arrays["x"]
    assert report["coordinates"][0]["min"] == pytest.approx(x[:, 0][x[:, 0] != 0].min())
    assert report["coordinates"][2]["std"] == pytest.approx(x[:, 2][x[:, 2] != 0].std(), rel=1e-4)
    code, out, _ = report_cli(["data", str(path), "--json", "--split", "a", "--recheck"], monkeypatch, capsys)
    parsed = json.loads(out)
    assert code == 0 and parsed["splits"] == report["splits"] and parsed["scan"]["origin"] == "computed"
    assert {c["status"] for c in parsed["checks"]} == {"ok"} and len(parsed["checks"]) == 11


def test_report_puts_the_published_split_sizes_beside_ours(tmp_path, monkeypatch, capsys):
    arrays = clean_arrays()
    arrays["split_xsub"] = arrays.pop("split_a")
    path = write_prepared(tmp_path / "ntu60", arrays, name="ntu60")
    report = data_report(load_dataset(DataConfig(dataset=str(path))))
    assert report["published_as"] == "ntu60" and report["splits"]["xsub"]["published"] == [40_091, 16_487]
    _, out, _ = report_cli(["data", str(path), "--no-progress"], monkeypatch, capsys)
    assert re.search(r"split +train +test +published ntu60 +same +fingerprint\n", out), out
    assert re.search(r"xsub +16 +8 +40,091 / 16,487 +no +[0-9a-f]{16}\n", out), out
