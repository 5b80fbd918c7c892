"""PKU-MMD phase II readers on small files written in the official formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from halp_bench.datasets.raw.pku import PKU_NUM_CLASSES, pku_segments, read_pku_labels, read_pku_skeleton, read_pku_split
from halp_bench.errors import DataError

FRAMES = 12


def frames(rng: np.random.Generator) -> np.ndarray:
    """(T, 150) rows: body 0 everywhere, body 1 only in frames 3..7 (absent = zeros)."""
    rows = np.round(rng.standard_normal((FRAMES, 150)), 6)
    rows[:3, 75:] = 0
    rows[8:, 75:] = 0
    return rows


def write_rows(path: Path, rows: np.ndarray, newline: str = "\n") -> Path:
    path.write_text(newline.join(" ".join(f"{v:.6f}" for v in row) for row in rows) + newline)
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rows = frames(np.random.default_rng(0))
    return write_rows(tmp_path / "A01N01-L.txt", rows), rows


def test_skeleton_layout_and_absent_body(video):
    path, rows = video
    data = read_pku_skeleton(path)
    assert data.shape == (3, FRAMES, 25, 2) and data.dtype == np.float32
    # value k of frame t is body k // 75, joint (k % 75) // 3, coordinate k % 3
    for t, k in [(0, 0), (0, 74), (4, 75), (5, 149), (11, 40)]:
        assert data[k % 3, t, (k % 75) // 3, k // 75] == pytest.approx(rows[t, k])
    assert not data[..., :3, :, 1].any() and not data[:, 8:, :, 1].any()
    assert data[:, 3:8, :, 1].any(axis=(0, 2)).all()


def test_crlf_skeleton_reads_the_same(video, tmp_path):
    path, rows = video
    crlf = write_rows(tmp_path / "crlf.txt", rows, newline="\r\n")
    np.testing.assert_array_equal(read_pku_skeleton(crlf), read_pku_skeleton(path))


def test_labels_and_segments(video, tmp_path):
    path, _ = video
    labels = write(tmp_path / "labels.txt", "3,0,5,1\n\n51,4,12,2\n 7 , 2 , 3 , 0.5\n")
    segments = read_pku_labels(labels)
    assert [(s.label, s.start, s.end, s.confidence, s.line) for s in segments] == [(3, 0, 5, 1.0, 1), (51, 4, 12, 2.0, 3), (7, 2, 3, 0.5, 4)]
    skeleton = read_pku_skeleton(path)
    samples = pku_segments(skeleton, segments, max_frames=6)
    assert samples.data.shape == (3, 3, 6, 25, 2)
    assert samples.labels.tolist() == [2, 50, 6]  # 0-based
    assert samples.true_lengths.tolist() == [5, 8, 1]
    assert samples.lengths.tolist() == [5, 6, 1]  # clamped like the official feeder
    np.testing.assert_array_equal(samples.data[0, :, :5], skeleton[:, 0:5])
    np.testing.assert_array_equal(samples.data[1], skeleton[:, 4:10])  # truncated to max_frames
    np.testing.assert_array_equal(samples.data[2, :, :1], skeleton[:, 2:3])
    assert not samples.data[0, :, 5:].any() and not samples.data[2, :, 1:].any()
    assert pku_segments(skeleton, []).data.shape == (0, 3, 300, 25, 2)


def test_official_split_files(tmp_path):
    split = write(tmp_path / "cross_subject_v2.txt", "Training videos: \nA01N01-L, A01N01-M, A01N01-R, \nValidataion videos: \nA02N01-L, A02N01-M\n")
    assert read_pku_split(split) == (["A01N01-L", "A01N01-M", "A01N01-R"], ["A02N01-L", "A02N01-M"])
    only_train = write(tmp_path / "train_only.txt", "Training videos:\r\nA01N01-L, A01N01-M\r\n")
    assert read_pku_split(only_train) == (["A01N01-L", "A01N01-M"], [])


@pytest.mark.parametrize(
    "text, message",
    [
        ("A01N01-L, A01N01-M\n", r"line 1: expected a 'Training videos:' line before the names"),
        ("Validataion videos:\nA01N01-L\n", r"expected a 'Training videos:' line followed by"),
        ("Training videos:\nA01N01-L\nValidataion videos:\nA01N01-L\n", r"expected disjoint lists, found 1 .*A01N01-L"),
    ],
)
def test_bad_split_file(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as info:
        read_pku_split(write(tmp_path / "cross_view_v2.txt", text))
    assert "cross_view_v2.txt" in str(info.value)


def test_bad_skeleton_lines(video, tmp_path):
    _, rows = video
    lines = [" ".join(f"{v:.6f}" for v in row) for row in rows]
    short = " ".join(lines[2].split()[:149])
    word = lines[1].replace(lines[1].split()[7], "abc", 1)
    cases = {
        "short": (lines[:2] + [short] + lines[3:], r"short.txt line 3: expected 150 numbers \(2 bodies x 25 joints x xyz\), found 149"),
        "word": (lines[:1] + [word] + lines[2:], r"word.txt line 2: expected a number for a coordinate, found 'abc'"),
        "gap": (lines[:4] + [""] + lines[4:], r"gap.txt line 5: expected 150 numbers .* found 0"),
        "narrow": ([" ".join(line.split()[:149]) for line in lines], r"narrow.txt line 1: expected 150 numbers .* found 149"),
    }
    for name, (content, message) in cases.items():
        with pytest.raises(DataError, match=message):
            read_pku_skeleton(write(tmp_path / f"{name}.txt", "\n".join(content) + "\n"))
    with pytest.raises(DataError, match=r"empty.txt line 1: expected one line of 150 numbers per frame, found no"):
        read_pku_skeleton(write(tmp_path / "empty.txt", "\n\n"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("3,0,5,1\n52,0,5,1\n", r"line 2: expected a label in 1..51, found 52"),
        ("0,0,5,1\n", r"line 1: expected a label in 1..51, found 0"),
        ("3,9,5,1\n", r"line 1: expected 0 <= start < end .* found start 9, end 5"),
        ("3,5,5,1\n", r"line 1: expected 0 <= start < end"),
        ("3,0,5\n", r"line 1: expected 4 comma-separated fields label,start,end,confidence, found 3"),
        ("3,1.5,5,1\n", r"line 1: expected an integer for start, found '1.5'"),
        ("3,0,x,1\n", r"line 1: expected a number for end, found 'x'"),
    ],
)
def test_bad_label_lines(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as info:
        read_pku_labels(write(tmp_path / "A01N01-L.txt", text))
    assert "A01N01-L.txt" in str(info.value)


def test_label_range_follows_num_classes(tmp_path):
    labels = write(tmp_path / "labels.txt", "51,0,5,1\n")
    assert read_pku_labels(labels)[0].label == PKU_NUM_CLASSES
    with pytest.raises(DataError, match="expected a label in 1..50"):
        read_pku_labels(labels, num_classes=50)


def test_segment_beyond_the_video(video, tmp_path):
    path, _ = video
    labels = write(tmp_path / "labels.txt", "3,0,5,1\n4,10,13,1\n")
    message = r"labels.txt line 2: expected the action within the 12 frames of .*A01N01-L.txt, found frames 10..12"
    with pytest.raises(DataError, match=message):
        pku_segments(read_pku_skeleton(path), read_pku_labels(labels), skeleton_path=path)
