"""NTU RGB+D readers and split rules, checked on real files from ../shared/fixtures/ntu."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from halp_bench.datasets.raw.ntu import (
    NTU60_TRAIN_SUBJECTS,
    NTU120_TRAIN_SUBJECTS,
    PUBLISHED_SPLIT_COUNTS,
    NtuId,
    get_spec,
    ntu_sample_names,
    ntu_split_masks,
    parse_ntu_name,
    read_missing_list,
    read_skeleton,
    select_bodies,
)
from halp_bench.errors import DataError, UnknownNameError

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "ntu"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"NTU fixtures not found at {FIXTURES} (the shared read-only data folder)")

# name -> (frames, bodies listed in every frame), from SOURCES.json
SKELETONS = {"S001C001P001R001A011": (82, 1), "S001C003P008R002A058": (70, 2), "S004C002P003R001A017": (124, 1)}
ONE_BODY = FIXTURES / "S001C001P001R001A011.skeleton"


def numbers(line: str) -> list[float]:
    return [float(v) for v in line.split()]


# --- names and ids -------------------------------------------------------------------------------


def test_parse_name_gives_ids_and_round_trips():
    ntu_id = parse_ntu_name("S001C003P008R002A058.skeleton")
    assert ntu_id == NtuId(setup=1, camera=3, performer=8, replication=2, action=58)
    assert ntu_id.label == 57
    assert ntu_id.name == "S001C003P008R002A058"
    assert parse_ntu_name(Path("/raw/S032C001P106R002A120")) == NtuId(32, 1, 106, 2, 120)


@pytest.mark.parametrize("bad", ["S001C001P001R001", "S01C001P001R001A001", "x.skeleton", "S001C001P001R001A000"])
def test_bad_name_is_a_data_error(bad):
    with pytest.raises(DataError, match="expected"):
        parse_ntu_name(bad)


# --- the .skeleton reader ------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_fixture_frames_and_bodies(name):
    frames, bodies = SKELETONS[name]
    skel = read_skeleton(FIXTURES / f"{name}.skeleton")
    assert skel.xyz.shape == (4, frames, 25, 3) and skel.xyz.dtype == np.float32
    assert skel.num_frames == frames
    assert skel.present[:bodies].all() and not skel.present[bodies:].any()
    assert not skel.xyz[bodies:].any()

    data = select_bodies(skel.xyz)
    assert data.shape == (3, frames, 25, 2) and data.dtype == np.float32
    kept = [bool(data[..., m].any()) for m in range(2)]
    assert kept == [True, bodies == 2]  # a single-body file gets a zero second body


@needs_fixtures
def test_coordinates_match_the_text():
    lines = ONE_BODY.read_text().splitlines()
    skel = read_skeleton(ONE_BODY)
    # line 1 frame count, 2 body count, 3 body fields, 4 joint count, 5..29 the 25 joints
    assert skel.xyz[0, 0, 0].tolist() == pytest.approx(numbers(lines[4])[:3])
    assert skel.xyz[0, 0, 24].tolist() == pytest.approx(numbers(lines[28])[:3])
    assert skel.xyz[0, -1, 24].tolist() == pytest.approx(numbers(lines[-1])[:3])

    two = FIXTURES / "S001C003P008R002A058.skeleton"
    lines = two.read_text().splitlines()
    skel = read_skeleton(two)
    assert skel.xyz[0, 0, 0].tolist() == pytest.approx(numbers(lines[4])[:3])
    assert skel.xyz[1, 0, 0].tolist() == pytest.approx(numbers(lines[31])[:3])  # body 2 after 25 + 2 lines


@needs_fixtures
def test_crlf_and_lf_give_identical_arrays(tmp_path):
    raw = ONE_BODY.read_bytes()
    assert b"\r\n" in raw
    lf = tmp_path / ONE_BODY.name
    lf.write_bytes(raw.replace(b"\r\n", b"\n"))
    a, b = read_skeleton(ONE_BODY), read_skeleton(lf)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_array_equal(a.present, b.present)


@needs_fixtures
def test_two_body_selection_follows_motion_energy():
    skel = read_skeleton(FIXTURES / "S001C003P008R002A058.skeleton")
    energy = [sum(body[..., c].std() for c in range(3)) for body in skel.xyz[:2].astype(np.float64)]
    first = int(np.argmax(energy))
    data = select_bodies(skel.xyz)
    np.testing.assert_array_equal(data[..., 0], skel.xyz[first].transpose(2, 0, 1))
    np.testing.assert_array_equal(data[..., 1], skel.xyz[1 - first].transpose(2, 0, 1))


def test_select_bodies_energy_uses_only_nonzero_frames():
    rng = np.random.default_rng(0)
    xyz = np.zeros((4, 10, 25, 3), dtype=np.float32)
    xyz[0] = 0.01 * rng.standard_normal((10, 25, 3))  # present everywhere, barely moving
    xyz[2, :2] = 5.0 * rng.standard_normal((2, 25, 3))  # two frames only, large spread
    xyz[3, :] = 1.0 * rng.standard_normal((10, 25, 3))
    data = select_bodies(xyz)
    np.testing.assert_array_equal(data[..., 0], xyz[2].transpose(2, 0, 1))
    np.testing.assert_array_equal(data[..., 1], xyz[3].transpose(2, 0, 1))
    assert select_bodies(xyz[:1]).shape == (3, 10, 25, 2)  # fewer slots than kept bodies: zero-filled


# --- bad files -----------------------------------------------------------------------------------


def with_field(line: str, index: int, value: str) -> str:
    fields = line.split()
    fields[index] = value
    return " ".join(fields)


def edited(tmp_path: Path, edit) -> Path:
    lines = ONE_BODY.read_text().splitlines()
    path = tmp_path / ONE_BODY.name
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


@needs_fixtures
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls[:100], r"line 101: expected 25 joint lines .* found end of file \(truncated"),
        (lambda ls: ls[:29], r"line 30: expected the body count of frame 2, found end of file"),
        (lambda ls: ls[:3] + ["12"] + ls[4:], r"line 4: expected 25 joints, found 12"),
        (lambda ls: ls[:6] + [with_field(ls[6], 2, "abc")] + ls[7:], r"line 7: expected a number, found 'abc'"),
        (lambda ls: ls[:6] + [" ".join(ls[6].split()[:11])] + ls[7:], r"line 7: expected 12 numbers per joint .* found 11"),
        (lambda ls: ls[:2] + ["1 2 3"] + ls[3:], r"line 3: expected 10 body fields, found 3"),
        (lambda ls: ["eighty"] + ls[1:], r"line 1: expected the frame count \(an integer\), found 'eighty'"),
        (lambda ls: ls + ls[1:30], r"line 2298: expected end of file after 82 frames"),
    ],
)
def test_bad_skeleton_is_a_data_error_naming_file_and_line(tmp_path, edit, message):
    with pytest.raises(DataError, match=message) as info:
        read_skeleton(edited(tmp_path, edit))
    assert ONE_BODY.name in str(info.value)


def test_empty_skeleton_file(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("")
    with pytest.raises(DataError, match=r"S001C001P001R001A001\.skeleton line 1: expected the frame count"):
        read_skeleton(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_skeleton(tmp_path / "S001C001P001R001A001.skeleton")


# --- missing lists and split rules ---------------------------------------------------------------


@needs_fixtures
def test_official_missing_lists():
    ntu60 = read_missing_list(FIXTURES / "NTU_RGBD_samples_with_missing_skeletons.txt")
    ntu120 = read_missing_list(FIXTURES / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert (len(ntu60), len(ntu120)) == (302, 535)
    assert ntu60 <= ntu120
    assert "S001C002P005R002A008" in ntu60


def test_missing_list_without_header_is_an_error(tmp_path):
    path = tmp_path / "missing.txt"
    path.write_text("S001C002P005R002A008\nS001C002P006R001A008\nS001C002P006R001A009\n")
    with pytest.raises(DataError, match="missing.txt line 1: expected 3 header lines"):
        read_missing_list(path)
    path.write_text("header\n\n\nS001C002P005R002A008\nnot-a-name\n")
    with pytest.raises(DataError, match="missing.txt line 5: expected a sample name"):
        read_missing_list(path)


@functools.cache
def available(dataset: str) -> list[NtuId]:
    return [parse_ntu_name(n) for n in (FIXTURES / f"{dataset}_available_names.txt").read_text().split()]


@needs_fixtures
@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_split_rules_give_the_published_counts(dataset):
    ids = available(dataset)
    assert all(get_spec(dataset).contains(i) for i in ids)
    masks = ntu_split_masks(ids, dataset)
    counts = {name: (int(m.sum()), int((~m).sum())) for name, m in masks.items()}
    assert counts == PUBLISHED_SPLIT_COUNTS[dataset]


@needs_fixtures
def test_available_lists_are_the_datasets_minus_the_missing_lists():
    ntu60, ntu120 = available("ntu60"), available("ntu120")
    assert {i.name for i in ntu120 if get_spec("ntu60").contains(i)} == {i.name for i in ntu60}
    missing = read_missing_list(FIXTURES / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert not missing & {i.name for i in ntu120}


def test_subject_lists():
    assert NTU120_TRAIN_SUBJECTS[:20] == NTU60_TRAIN_SUBJECTS
    assert len(set(NTU120_TRAIN_SUBJECTS)) == 53


def test_split_masks_rules():
    ids = [NtuId(1, 1, 1, 1, 1), NtuId(2, 2, 3, 1, 1), NtuId(3, 3, 45, 1, 1)]
    m60 = ntu_split_masks(ids, "ntu60")
    assert m60["xsub"].tolist() == [True, False, False]
    assert m60["xview"].tolist() == [False, True, True]
    m120 = ntu_split_masks(ids, "ntu120")
    assert m120["xsub"].tolist() == [True, False, True]
    assert m120["xset"].tolist() == [False, True, False]
    with pytest.raises(UnknownNameError, match="ntu120, ntu60"):
        ntu_split_masks(ids, "ntu90")


def test_sample_names_pick_dataset_files(tmp_path):
    a, b = tmp_path / "s001_s017", tmp_path / "s018_s032"
    a.mkdir(), b.mkdir()
    for name in ["S001C001P001R001A001", "S017C003P020R002A060", "S001C002P005R002A008"]:
        (a / f"{name}.skeleton").touch()
    for name in ["S018C001P008R001A061", "S032C003P106R002A120"]:
        (b / f"{name}.skeleton").touch()
    (a / "README.txt").touch()
    missing = {"S001C002P005R002A008"}

    ntu60 = ntu_sample_names([a, b], "ntu60", missing)
    assert [p.stem for p in ntu60] == ["S001C001P001R001A001", "S017C003P020R002A060"]
    ntu120 = ntu_sample_names([a, b], "ntu120", missing)
    assert [p.stem for p in ntu120] == ["S001C001P001R001A001", "S017C003P020R002A060", "S018C001P008R001A061", "S032C003P106R002A120"]
    assert ntu120[-1].parent == b
    assert len(ntu_sample_names(a, "ntu120")) == 3

    with pytest.raises(DataError, match="expected ntu60 .skeleton files .* found none"):
        ntu_sample_names(b, "ntu60")
    with pytest.raises(DataError, match="expected a directory"):
        ntu_sample_names(tmp_path / "nowhere", "ntu60")
    (b / "junk.skeleton").touch()
    with pytest.raises(DataError, match="junk.skeleton: expected an NTU sample name"):
        ntu_sample_names([a, b], "ntu120")
    (b / "junk.skeleton").unlink()
    (b / "S001C001P001R001A001.skeleton").touch()
    with pytest.raises(DataError, match="duplicate sample"):
        ntu_sample_names([a, b], "ntu60")
