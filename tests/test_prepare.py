"""`halp-bench prepare`: NTU fixtures and tiny PKU-MMD II files -> a memory-mapped prepared directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.prepared_dir import META_FILE, PARTIAL_DIR, load_prepared
from halp_bench.datasets.raw.normalize import pre_normalize
from halp_bench.datasets.raw.ntu import energy_order, read_skeleton, select_bodies
from halp_bench.datasets.raw.prepare import prepare_dataset
from halp_bench.errors import ConfigError, DataError

FIXTURES = next(
    (p for p in (Path(__file__).resolve().parents[k].parent / "shared" / "fixtures" / "ntu" for k in (1, 2)) if p.is_dir()),
    Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "ntu",
)
MISSING_LIST = "NTU_RGBD_samples_with_missing_skeletons.txt"
# name -> (frames, 0-based label), sorted by name as prepared
SAMPLES = {"S001C001P001R001A011": (82, 10), "S001C003P008R002A058": (70, 57), "S004C002P003R001A017": (124, 16)}
ON_MISSING_LIST = "S001C002P005R002A008"  # the first name of the official NTU-60 list


@pytest.fixture
def ntu_raw(tmp_path: Path) -> Path:
    """The 3 fixture files (linked), the official missing list, and a listed sample that must be
    skipped unread (its content is garbage)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"NTU fixtures not found at {FIXTURES}")
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in SAMPLES:
        (raw / f"{name}.skeleton").symlink_to(FIXTURES / f"{name}.skeleton")
    (raw / MISSING_LIST).symlink_to(FIXTURES / MISSING_LIST)
    (raw / f"{ON_MISSING_LIST}.skeleton").write_text("not a skeleton\n")
    return raw


def arrays(path: Path) -> dict[str, np.ndarray]:
    return {f.name: np.load(f) for f in sorted(path.glob("*.npy"))}


def test_ntu60_prepared_loads_memory_mapped_with_labels_lengths_and_splits(ntu_raw, tmp_path):
    summary = prepare_dataset("ntu60", ntu_raw, tmp_path / "out", workers=1, normalize=True, progress=False)
    assert (summary.samples, summary.read, summary.skipped_missing, summary.failed) == (3, 3, 1, [])
    assert summary.published["xsub"] == (40_091, 16_487)
    data = load_prepared(tmp_path / "out")
    assert isinstance(data.data, np.memmap) and data.data.mode == "r"
    assert data.shape == (3, 3, 300, 25, 2) and data.name == "ntu60" and data.num_classes == 60
    assert data.names == list(SAMPLES)
    assert data.lengths.tolist() == [f for f, _ in SAMPLES.values()]
    assert data.labels.tolist() == [label for _, label in SAMPLES.values()]
    assert data.metadata["performer"].tolist() == [1, 8, 3] and data.metadata["camera"].tolist() == [1, 3, 2]
    assert data.splits["xsub"].tolist() == [True, True, False]  # performers 1, 8 train; 3 test
    assert data.splits["xview"].tolist() == [False, True, True]  # cameras 2, 3 train
    assert summary.splits == {"xsub": (2, 1), "xview": (2, 1)}
    # content: the official body selection and normalisation, zero after each length
    name = "S001C003P008R002A058"
    bodies = select_bodies(read_skeleton(FIXTURES / f"{name}.skeleton").xyz)
    expected = np.zeros((1, 3, 300, 25, 2), dtype=np.float32)
    expected[0, :, :70] = bodies
    np.testing.assert_allclose(data.data[1], pre_normalize(expected, lengths=np.array([70]))[0], atol=1e-6)
    assert not data.data[1, :, 70:].any() and data.data[1, ..., 1].any()  # the second body is kept


def test_default_keeps_raw_coordinates_and_every_body_in_file_order(ntu_raw, tmp_path):
    prepare_dataset("ntu60", ntu_raw, tmp_path / "out", workers=1, max_frames=100, progress=False)
    data = load_prepared(tmp_path / "out")
    assert data.stored == "raw" and data.shape == (3, 3, 100, 25, 4)
    bodies = read_skeleton(FIXTURES / "S004C002P003R001A017.skeleton").xyz.transpose(3, 1, 2, 0)
    np.testing.assert_array_equal(data.data[2], bodies[:, :100])  # 124 frames cut to 100
    assert data.lengths.tolist() == [82, 70, 100]
    most_active = [int(energy_order(read_skeleton(FIXTURES / f"{name}.skeleton").xyz)[0]) for name in SAMPLES]
    assert data.metadata["agcn_body0"].tolist() == most_active == [0, 1, 0]  # over the whole sequence
    assert '"truncated": 1' in (tmp_path / "out" / META_FILE).read_text()


def test_interrupted_prepare_is_not_loadable_and_resumes_to_identical_arrays(ntu_raw, tmp_path):
    prepare_dataset("ntu60", ntu_raw, tmp_path / "whole", workers=1, progress=False)

    def interrupt(done: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False, on_sample=interrupt)
    assert not (out / META_FILE).exists() and (out / PARTIAL_DIR).is_dir()
    with pytest.raises(DataError, match="unfinished prepare .* finish it with: halp-bench prepare ntu60 --raw"):
        load_prepared(out)
    with pytest.raises(DataError, match="unfinished prepare"):
        load_dataset(DataConfig(dataset=str(out)))

    resumed = prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False)
    assert (resumed.resumed, resumed.read, resumed.samples) == (2, 1, 3)
    assert not (out / PARTIAL_DIR).exists()
    whole, again = arrays(tmp_path / "whole"), arrays(out)
    assert whole.keys() == again.keys()
    for key in whole:
        np.testing.assert_array_equal(again[key], whole[key], err_msg=key)


def test_parallel_workers_give_the_same_arrays(ntu_raw, tmp_path):
    prepare_dataset("ntu60", ntu_raw, tmp_path / "one", workers=1, progress=False)
    prepare_dataset("ntu60", ntu_raw, tmp_path / "two", workers=2, progress=False)
    one, two = arrays(tmp_path / "one"), arrays(tmp_path / "two")
    for key in one:
        np.testing.assert_array_equal(two[key], one[key], err_msg=key)


def test_a_bad_file_is_reported_and_left_out(ntu_raw, tmp_path):
    text = (FIXTURES / "S001C001P001R001A011.skeleton").read_text()
    (ntu_raw / "S002C001P001R001A001.skeleton").write_text(text[: len(text) // 2])  # truncated
    summary = prepare_dataset("ntu60", ntu_raw, tmp_path / "out", workers=1, progress=False)
    assert summary.samples == 3 and len(summary.failed) == 1
    file, reason = summary.failed[0]
    assert file.endswith("S002C001P001R001A001.skeleton") and "truncated" in reason
    data = load_prepared(tmp_path / "out")
    assert data.names == list(SAMPLES) and data.lengths.tolist() == [82, 70, 124]


def test_rerun_is_a_no_op_and_out_must_be_ours_or_forced(ntu_raw, tmp_path):
    out = tmp_path / "out"
    prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False)
    stamp = (out / "data.npy").stat().st_mtime_ns
    again = prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False)
    assert again.already_complete and (out / "data.npy").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other raw files or options; pass --force"):
        prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False, max_frames=200)
    prepare_dataset("ntu60", ntu_raw, out, workers=1, progress=False, max_frames=200, force=True)
    assert load_prepared(out).shape[2] == 200

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a halp-bench prepared directory"):
        prepare_dataset("ntu60", ntu_raw, foreign, workers=1, progress=False)
    prepare_dataset("ntu60", ntu_raw, foreign, workers=1, progress=False, force=True)
    assert (foreign / "notes.txt").read_text() == "mine" and len(load_prepared(foreign).names) == 3


def test_registered_dataset_reads_the_data_root_or_says_which_command_to_run(ntu_raw, tmp_path, monkeypatch):
    root = tmp_path / "root"
    with pytest.raises(ConfigError) as info:
        load_dataset(DataConfig(dataset="ntu60", data_root=str(root)))
    assert f"halp-bench prepare ntu60 --raw RAW_DIR --out {root / 'ntu60'}" in str(info.value)
    prepare_dataset("ntu60", ntu_raw, root / "ntu60", workers=1, progress=False)
    monkeypatch.setenv("HALP_BENCH_DATA", str(root))
    data = load_dataset(DataConfig(dataset="ntu60"))
    assert data.name == "ntu60" and data.default_split == "xsub" and isinstance(data.data, np.memmap)
    with pytest.raises(ConfigError, match=f"no {root / 'ntu120' / META_FILE}.*prepare ntu120"):
        load_dataset(DataConfig(dataset="ntu120"))


# --- PKU-MMD II -----------------------------------------------------------------------------------

VIDEOS = {  # name -> (frames, [(label, start, end)]); names as in the official files
    "A01N01-L": (30, [(1, 0, 10), (51, 12, 30)]),
    "A01N02-M": (25, [(7, 3, 20)]),
    "A02N01-R": (40, [(2, 5, 38), (3, 0, 4)]),
}


def write_pku(raw: Path, train_xsub: str, train_xview: str) -> dict[str, np.ndarray]:
    """Official-format files: skeleton/<video>.txt (150 numbers a frame, body 2 absent = zeros),
    label/<video>.txt (label,start,end,confidence) and the two split files."""
    rng = np.random.default_rng(0)
    (raw / "skeleton").mkdir(parents=True)
    (raw / "label").mkdir()
    frames = {}
    for video, (count, segments) in VIDEOS.items():
        rows = np.round(rng.normal(size=(count, 150)), 4)
        rows[:, 75:] = 0
        frames[video] = rows
        (raw / "skeleton" / f"{video}.txt").write_text("\n".join(" ".join(map(str, r)) for r in rows) + "\n")
        (raw / "label" / f"{video}.txt").write_text("".join(f"{a},{s},{e},1\n" for a, s, e in segments))
    for file, train in (("cross_subject_v2.txt", train_xsub), ("cross_view_v2.txt", train_xview)):
        test = ", ".join(v for v in VIDEOS if v not in train)
        (raw / file).write_text(f"Training videos: \n{train}\nValidataion videos: \n{test}\n")
    return frames


def test_pku2_one_sample_per_labelled_segment_with_official_splits(tmp_path):
    frames = write_pku(tmp_path / "raw", "A01N01-L, A02N01-R", "A01N01-L, A01N02-M")
    summary = prepare_dataset("pku2", tmp_path / "raw", tmp_path / "out", workers=1, normalize=False, max_frames=32, progress=False)
    assert (summary.samples, summary.read, summary.failed, summary.truncated) == (5, 3, [], 1)
    data = load_prepared(tmp_path / "out")
    assert data.names == ["A01N01-L.txt_0", "A01N01-L.txt_1", "A01N02-M.txt_0", "A02N01-R.txt_0", "A02N01-R.txt_1"]
    assert data.labels.tolist() == [0, 50, 6, 1, 2] and data.num_classes == 51
    assert data.lengths.tolist() == [10, 18, 17, 32, 4]  # 33 frames cut to 32
    assert data.splits["xsub"].tolist() == [True, True, False, True, True]
    assert data.splits["xview"].tolist() == [True, True, True, False, False]
    assert data.metadata["view"].tolist() == [1, 1, 2, 3, 3] and data.metadata["start"].tolist() == [0, 12, 3, 5, 0]
    video = frames["A01N01-L"].reshape(-1, 2, 25, 3).transpose(3, 0, 2, 1)
    np.testing.assert_allclose(data.data[1, :, :18], video[:, 12:30], rtol=1e-6)
    assert not data.data[1, :, 18:].any() and not data.data[..., 1].any()  # padding, absent body
    normalised = prepare_dataset("pku2", tmp_path / "raw", tmp_path / "norm", workers=1, normalize=True, max_frames=32, progress=False)
    assert normalised.normalized and load_prepared(tmp_path / "norm").data[0, :, 0, 1, 0].tolist() == [0, 0, 0]  # centred


def test_split_file_names_cannot_act_as_paths(tmp_path):
    write_pku(tmp_path / "raw", "A01N01-L, ../../escape", "A01N01-L")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(DataError, match=r"cross_subject_v2.txt: expected plain video names .*'\.\./\.\./escape'"):
        prepare_dataset("pku2", tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    assert sorted(p for p in tmp_path.rglob("*")) == before and not (tmp_path.parent / "escape").exists()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "halp_bench.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_cli_prepare_prints_the_summary_and_bad_input_is_one_line(tmp_path):
    write_pku(tmp_path / "raw", "A01N01-L, A02N01-R", "A01N01-L")
    ok = _cli("prepare", "pku2", "--raw", "raw", "--out", "out", "--workers", "1", "--no-progress", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "xsub" in ok.stdout and "4 / 1" in ok.stdout and "5 samples in out" in ok.stdout
    (tmp_path / "raw" / "label" / "A01N02-M.txt").write_text("7,3,20,1\n52,0,5,1\n")
    bad = _cli("prepare", "pku2", "--raw", "raw", "--out", "out2", "--no-progress", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "A01N02-M.txt line 2: expected a label in 1..51, found 52" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "out2").exists()
