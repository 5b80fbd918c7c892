"""`plot --tsne` (features of stored runs, rebuilt from their rows) and `show` (a sample as a strip or
an animation, for every kind of dataset), checked on the images they write."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import KINECT_FROM_NTU, random_skeletons, sensor_skeletons, tiny_overrides, write_pku
from halp_bench.cli import cli
from halp_bench.config import make_config
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.raw.prepare import prepare_dataset
from halp_bench.orchestration.evaluate import EvalSpec, run_eval
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.orchestration.visualize import _stored_features, show_sample, tsne_figures
from halp_bench.protocols.knn import knn_predict
from halp_bench.registry import DATASETS
from halp_bench.results.row import read_rows
from halp_bench.results.skeleton_drawing import plane, present
from halp_bench.skeleton import NTU25

pytest.importorskip("matplotlib")
BLUE, ORANGE, GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)  # tab10's first three: class (or person) 0, 1, 2


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if "tiny-random" not in DATASETS:
        DATASETS.add("tiny-random", lambda cfg: random_skeletons(n=24, t=12), "test data")


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A results folder with kNN rows of a pretrained moco and the random encoder."""
    out = tmp_path_factory.mktemp("stored")
    run_grid(
        RunSpec(
            methods=["random", "moco"],
            dataset="tiny-random",
            protocols=["knn"],
            preset="cpu",
            out=out,
            show_progress=False,
            overrides=tiny_overrides("random", "moco"),
        ),
        say=lambda _: None,
    )
    return out


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def colours(image: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_rebuilt_runs_give_the_stored_knn_accuracy(stored):
    """The features t-SNE draws are the ones kNN used: rebuilt from each row (config, checkpoint),
    they give the row's kNN top-1 again."""
    rows = [(row, stored / "results.jsonl") for row in read_rows(stored / "results.jsonl")]
    data = load_dataset(make_config("cpu", ["data.dataset=tiny-random"], method="moco").data)
    train, test = data.split()
    for row, path in rows:
        train_feats, train_labels = (torch.from_numpy(a) for a in _stored_features(row, path, data, train, torch.device("cpu")))
        test_feats, test_labels = (torch.from_numpy(a) for a in _stored_features(row, path, data, test, torch.device("cpu")))
        predicted = knn_predict(train_feats, train_labels, test_feats, 1, data.num_classes)
        assert 100.0 * (predicted == test_labels).float().mean().item() == pytest.approx(row.metrics["top1"]), row.method


def test_tsne_draws_one_panel_per_method_on_the_same_samples(stored):
    rows = [(row, stored / "results.jsonl") for row in read_rows(stored / "results.jsonl")]
    (figure,) = tsne_figures(rows, ["moco", "random"], None, 6, 3, 2.0, torch.device("cpu"), say=lambda _: None)
    assert [panel.title.split()[0] for panel in figure.panels] == ["moco", "random"]  # --methods order
    assert "6 of 8 test samples (drawn with seed 3)" in figure.title
    assert [panel.features.shape for panel in figure.panels] == [(6, 32)] * 2  # BiGRU 1 x 16: both directions
    np.testing.assert_array_equal(figure.panels[0].labels, figure.panels[1].labels)  # the same samples
    assert not np.allclose(figure.panels[0].features, figure.panels[1].features)
    output = invoke("plot", "--tsne", "--out", str(stored), "--perplexity", "3", "--format", "png,svg")
    png, svg = (stored / "plots" / f"tsne_tiny-random_all.{fmt}" for fmt in ("png", "svg"))
    assert f"{png}" in output and svg.read_bytes().count(b"<svg") == 1
    image = pixels(png)
    assert image.shape[0] > 300 and image.shape[1] > 600 and len(colours(image)) > 2
    assert {BLUE, ORANGE, GREEN} <= colours(image)  # the three classes, each in its colour


def test_tsne_takes_an_eval_row_from_its_weights_file(stored, tmp_path):
    (checkpoint,) = (stored / "runs").glob("moco_*/checkpoint.pt")
    run_eval(
        EvalSpec(
            checkpoint=checkpoint, dataset="tiny-random", protocols=["knn"], preset="cpu", overrides=tiny_overrides("moco"), out=tmp_path, show_progress=False
        ),
        say=lambda _: None,
    )
    rows = [(row, path) for path in (stored / "results.jsonl", tmp_path / "results.jsonl") for row in read_rows(path)]
    (figure,) = tsne_figures(rows, ["moco"], None, 100, 0, 2.0, torch.device("cpu"), say=lambda _: None)
    run, evaluated = figure.panels
    assert run.title.startswith("moco (kNN") and evaluated.title.startswith("moco (checkpoint ")
    np.testing.assert_array_equal(run.features, evaluated.features)  # the same weights, the same features


def test_tsne_errors_are_clear(stored, tmp_path):
    result = CliRunner().invoke(cli, ["plot", "--tsne", "--out", str(stored), "--methods", "cmd"])
    assert "no kNN or linear results of cmd" in str(result.exception)
    result = CliRunner().invoke(cli, ["plot", "--tsne", "--out", str(stored), "--perplexity", "50"])
    assert "t-SNE needs a perplexity above 0 and below the number of samples (8)" in str(result.exception)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """The same sensor skeletons as every kind of dataset: .npz (Kinect v1, 20 joints), AGCN
    directory (imported), prepared PKU-MMD II."""
    root = tmp_path_factory.mktemp("kinds")
    x, lengths = sensor_skeletons()
    two = int(np.flatnonzero(x[..., 1].any(axis=(1, 2, 3)))[0])
    np.savez(
        root / "kinect.npz",
        x=np.ascontiguousarray(x[:, :, :, KINECT_FROM_NTU]),
        y=np.arange(4) % 2,
        length=lengths,
        split_mine=np.array([True, True, False, False]),
        layout="kinect_v1_20",
    )
    agcn = root / "agcn" / "xsub"
    agcn.mkdir(parents=True)
    for part, rows in (("train", [two, 0]), ("val", [1])):
        np.save(agcn / f"{part}_data_joint.npy", x[rows])
        (agcn / f"{part}_label.pkl").write_bytes(pickle.dumps(([f"s{r}" for r in rows], [r % 2 for r in rows])))
    write_pku(root / "raw", x[[two, 0, 1]], lengths[[two, 0, 1]])
    prepare_dataset("pku2", root / "raw", root / "pku2", workers=1, max_frames=96, progress=False)
    return {"npz": root / "kinect.npz", "imported": agcn, "prepared": root / "pku2"}


@pytest.mark.parametrize("kind", ["synthetic", "npz", "imported", "prepared"])
def test_show_draws_a_strip_for_every_kind_of_dataset(datasets, tmp_path, kind):
    dataset = "synthetic" if kind == "synthetic" else str(datasets[kind])
    where = ["--part", "test"] if kind == "npz" else []  # each the first two-person sample, except synthetic's (one person)
    (path,) = invoke("show", dataset, *where, "--index", "0", "--out", str(tmp_path), "--frames", "4").split()
    image = pixels(Path(path))
    assert image.shape[0] > 150 and image.shape[1] > 300 and len(colours(image)) > 2
    assert BLUE in colours(image) and (ORANGE in colours(image)) == (kind != "synthetic")  # person 2 drawn where present


def test_show_animates_the_augmented_views(tmp_path):
    from PIL import Image

    (path,) = invoke("show", "synthetic", "--label", "3", "--augmented", "--format", "gif", "--frames", "5", "--out", str(tmp_path)).split()
    assert path.endswith("show_synthetic_xsub_trainclass3_augmented.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size[0] > 3 * gif.size[1] / 2  # three panels side by side
        first = np.asarray(gif.convert("RGB"))
        gif.seek(4)
        last = np.asarray(gif.convert("RGB"))
    assert len(colours(first)) > 2 and not np.array_equal(first, last)  # it moves


def test_show_sample_views_and_axes():
    cfg = make_config("cpu", ["data.dataset=synthetic"], method="moco")
    sample = show_sample(cfg, "test", 5, None, True, "moco", view_seed=1)
    assert [clip.title for clip in sample.clips] == ["sample", "moco view 1", "moco view 2"]
    assert sample.clips[1].x.shape[1] == cfg.data.frames and not np.array_equal(sample.clips[1].x, sample.clips[2].x)
    assert "synthetic xsub test #5" in sample.title
    assert plane(sample.clips[0], NTU25) == (0, 1, 1.0)  # camera coordinates: y up
    agcn = show_sample(make_config("cpu", ["data.dataset=synthetic", "data.normalize=agcn"], method="moco"), "test", 5, None, False, "moco", 1)
    assert plane(agcn.clips[0], NTU25) == (0, 2, 1.0)  # prepare's normalisation turns the spine to +z
    assert "normalize=agcn" in agcn.title
    assert present(agcn.clips[0].x, NTU25)[:, 1, 0].all()  # the centre joint at the origin is drawn
    raw = sample.clips[0].x.copy()
    raw[:, 0, 1, 0] = 0  # dropped by the sensor, 3 m from the camera's origin: missing
    assert present(raw, NTU25)[1:, 1, 0].all() and not present(raw, NTU25)[0, 1, 0]


def test_show_errors_are_clear(tmp_path):
    result = CliRunner().invoke(cli, ["show", "synthetic", "--index", "5000", "--out", str(tmp_path)])
    assert "--index 5000: the train part of synthetic/xsub has 900 samples (0..899)" in str(result.exception)
    result = CliRunner().invoke(cli, ["show", "synthetic", "--label", "42", "--out", str(tmp_path)])
    assert "--label 42: no sample of that class" in str(result.exception)
    result = CliRunner().invoke(cli, ["show", "synthetic", "--index", "1", "--label", "1"])
    assert result.exit_code == 2 and "give --index or --label, not both" in result.output
