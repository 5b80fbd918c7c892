"""`halp-bench eval --checkpoint`: our checkpoints give the run's own numbers; files in the authors'
layouts (built here from their documented key names and shapes, papers/field_methods.md §7,
with our encoders' weights mapped into them) load and reproduce the original encoders' features;
files that do not fit, or that would run code, are refused in one line. The ST-GCN layouts of CrosSCLR
and AimCLR (§7.1-7.2) are built the same way from our `stgcn`, whose keys are the official ones."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config, tiny_overrides
from halp_bench.cli import main
from halp_bench.datasets.views.clr import relative_to_joint
from halp_bench.datasets.views.modalities import modality
from halp_bench.encoders import STGCNSettings, build_encoder
from halp_bench.errors import CheckpointError
from halp_bench.methods.base import create_method
from halp_bench.orchestration.evaluate import EvalSpec, run_eval
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.protocols.stream_heads import per_stream_head
from halp_bench.registry import DATASETS
from halp_bench.results.row import read_rows
from halp_bench.results.tables import build_tables, to_markdown
from halp_bench.weights import eval_encoder_from_authors, read_weights, stored_streams

TINY = "tiny-eval"


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if TINY not in DATASETS:
        DATASETS.add(TINY, lambda cfg: random_skeletons(n=32, t=12, classes=3), "test data")


def test_eval_of_a_run_checkpoint_gives_the_runs_own_numbers(tmp_path, one_thread):
    methods = ["moco", "cmd"]
    overrides = [*tiny_overrides(*methods), "eval.stream=ensemble"]
    outcomes = run_grid(
        RunSpec(methods=methods, dataset=TINY, protocols=["knn", "linear"], preset="cpu", overrides=overrides, out=tmp_path / "run", show_progress=False),
        say=lambda _: None,
    )
    assert [o.status for o in outcomes] == ["ran"] * 4
    ran = {(r.method, r.protocol): r for r in read_rows(tmp_path / "run" / "results.jsonl")}
    for method in methods:
        (checkpoint,) = (tmp_path / "run" / "runs").glob(f"{method}_*/checkpoint.pt")
        cells = run_eval(
            EvalSpec(
                checkpoint=checkpoint, dataset=TINY, protocols=["knn", "linear"], preset="cpu", overrides=overrides, out=tmp_path / "eval", show_progress=False
            ),
            say=lambda _: None,
        )
        assert [c.status for c in cells] == ["ran", "ran"]
    evaluated = {(r.method, r.protocol): r for r in read_rows(tmp_path / "eval" / "results.jsonl")}
    for key, row in ran.items():
        assert evaluated[key].metrics == row.metrics, key  # same numbers, bit for bit
        assert evaluated[key].weights["layout"] == "halp-bench" and len(evaluated[key].weights["sha256"]) == 64
        assert evaluated[key].data_fingerprint == row.data_fingerprint and row.data_id  # the same data, fingerprinted alike
    labels = to_markdown(build_tables(list(evaluated.values()), ("knn",))[0])
    assert "moco (checkpoint " in labels


def _official_bigru_keys(embedder, prefix: str) -> dict[str, torch.Tensor]:
    """Our encoder + head under the authors' names: input_norm.*, encoder.gru.*, fc.0/fc.2 (§7.3)."""
    own = embedder.encoder.state_dict()
    state = {prefix + official: own[ours].clone() for official, ours in embedder.encoder.official_key_map().items()}
    state.update({f"{prefix}fc.{i}.{t}": getattr(embedder.head[i], t).detach().clone() for i in (0, 2) for t in ("weight", "bias")})
    return state


def _authors_file(path, method_name: str, ddp: bool) -> tuple:
    """A CMD (three streams) or HaLP (one stream, prototypes) checkpoint_0450.pth.tar in the authors'
    layout, made from one of our methods with the per-frame BiGRU (bigru_official)."""
    cfg = tiny_config(method_name, "encoder.name=bigru_official", "encoder.num_layers=2")
    torch.manual_seed(3)
    method = create_method(method_name, cfg, NTU_SPEC)
    with torch.no_grad():  # trained-looking input statistics, so eval mode tests their import too
        for embedder in method.encoders_q.values():
            embedder.encoder.input_norm.running_mean.uniform_(-1, 1)
            embedder.encoder.input_norm.running_var.uniform_(0.5, 2)
    state = {}
    for stream, prefix in (("joint", "encoder_q."), ("motion", "encoder_q_motion."), ("bone", "encoder_q_bone.")):
        if stream in method.encoders_q:
            state.update(_official_bigru_keys(method.encoders_q[stream], prefix))
            state.update(_official_bigru_keys(method.encoders_k[stream], prefix.replace("encoder_q", "encoder_k")))
            state[prefix.replace("encoder_q", "queue")[:-1]] = torch.randn(16, 64)
    if method_name == "halp":
        state["prototypes"] = torch.randn(20, 16)
    if ddp:
        state = {"module." + k: v for k, v in state.items()}
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)
    torch.save({"epoch": 451, "state_dict": state, "optimizer": optimizer.state_dict()}, path)
    return method, cfg


@pytest.mark.parametrize("method_name, ddp", [("cmd", False), ("halp", True)])
def test_the_authors_layout_loads_and_reproduces_the_original_features(tmp_path, method_name, ddp):
    path = tmp_path / "checkpoint_0450.pth.tar"
    original, cfg = _authors_file(path, method_name, ddp)
    weights = read_weights(path)
    assert weights.layout == "cmd-halp" and weights.origin == method_name
    x = torch.randn(5, 3, 8, 25, 2)
    for stream in original.streams:
        encoder, settings = eval_encoder_from_authors(weights, "bigru_official", stream, NTU_SPEC)
        assert (settings.hidden_size, settings.num_layers) == (cfg.encoder.hidden_size, 2)  # read from the shapes
        with torch.no_grad():
            expected = original.encoders_q[stream].encoder.eval()(modality(x, stream, NTU_SPEC.layout))
            torch.testing.assert_close(encoder.eval()(x), expected, atol=1e-6, rtol=0)


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["halp-bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
        sys.exit(0)
    return exit_info.value.code, capsys.readouterr().err


def eval_sets(overrides: list[str]) -> list[str]:
    """`--set` arguments of the keys `eval` reads (it makes no pretraining and no pretraining views)."""
    return [arg for item in overrides if not item.startswith(("pretrain.", "augment.")) for arg in ("--set", item)]


def test_eval_rows_of_released_weights_and_refusals(tmp_path, monkeypatch, capsys, one_thread):
    path = tmp_path / "checkpoint_0450.pth.tar"
    _authors_file(path, "halp", ddp=False)
    args = [
        "eval",
        "--checkpoint",
        str(path),
        "--dataset",
        TINY,
        "--protocols",
        "knn",
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        *eval_sets(tiny_overrides("halp")),
    ]
    code, err = _cli(args, monkeypatch, capsys)
    assert code == 2 and "name its method with --method" in err
    code, err = _cli([*args, "--method", "halp"], monkeypatch, capsys)
    assert code == 0, err
    (row,) = read_rows(tmp_path / "out" / "results.jsonl")
    assert row.weights["origin"] == "halp" and row.config["encoder"]["hidden_size"] == 16
    assert "| halp (released weights) |" in to_markdown(build_tables([row], ("knn",))[0])

    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["encoder_q.encoder.gru.weight_hh_l1"] = torch.zeros(48, 7)
    torch.save(raw, tmp_path / "wrong_shape.pth.tar")
    del raw["state_dict"]["encoder_q.input_norm.running_mean"]
    torch.save(raw, tmp_path / "missing.pth.tar")
    for name, expected in (
        ("wrong_shape.pth.tar", "encoder_q.encoder.gru.weight_hh_l1 has shape (48, 7)"),
        ("missing.pth.tar", "missing encoder_q.input_norm.running_mean"),
    ):
        code, err = _cli([*args, "--method", "halp", "--checkpoint", str(tmp_path / name)], monkeypatch, capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err

    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"state_dict": {"encoder_q.x": RunsCode()}}, tmp_path / "evil.pth.tar")
    code, err = _cli([*args, "--method", "halp", "--checkpoint", str(tmp_path / "evil.pth.tar")], monkeypatch, capsys)
    assert code == 2 and "refused to load" in err and not marker.exists()
    with pytest.raises(CheckpointError, match="found no query encoder"):
        torch.save({"state_dict": {"backbone.w": torch.zeros(2)}}, tmp_path / "other.pth.tar")
        read_weights(tmp_path / "other.pth.tar")


STGCN_SMALL = STGCNSettings(hidden_channels=4, hidden_dim=8)


def _official_stgcn_keys(encoder, prefix: str, aliased_head: bool) -> dict[str, torch.Tensor]:
    """Our stgcn (whose keys are the official ones) under `prefix`, with the official pretraining MLP
    head fc.0/fc.2; CrosSCLR's motion and bone encoders list the joint head's modules again as
    fc.2.0/fc.2.2 (§7.1)."""
    state = {prefix + key: value.clone() for key, value in encoder.state_dict().items()}
    dim = encoder.feature_dim
    head = {"fc.0.weight": torch.randn(dim, dim), "fc.0.bias": torch.randn(dim), "fc.2.weight": torch.randn(5, dim), "fc.2.bias": torch.randn(5)}
    if aliased_head:
        head.update(
            {"fc.2.0.weight": head["fc.0.weight"], "fc.2.0.bias": head["fc.0.bias"], "fc.2.2.weight": head["fc.2.weight"], "fc.2.2.bias": head["fc.2.bias"]}
        )
    state.update({prefix + key: value for key, value in head.items()})
    return state


def _torchlight_file(path, streams: tuple[str, ...]) -> dict:
    """A CrosSCLR (three streams) or AimCLR/SkeletonCLR (one stream) flat state dict as torchlight
    saves it: query and key encoders, queues and pointers; returns our query encoders by stream."""
    torch.manual_seed(4)
    originals, state = {}, {}
    for stream in streams:
        suffix = "" if len(streams) == 1 or stream == "joint" else f"_{stream}"
        for role in ("q", "k"):
            encoder = build_encoder(NTU_SPEC, STGCN_SMALL)
            with torch.no_grad():  # trained-looking statistics and masks, so eval mode tests their import too
                encoder.data_bn.running_mean.uniform_(-1, 1)
                encoder.data_bn.running_var.uniform_(0.5, 2)
                for mask in encoder.edge_importance:
                    mask.uniform_(0.5, 1.5)
            state.update(_official_stgcn_keys(encoder, f"encoder_{role}{suffix}.", aliased_head=suffix != ""))
            originals.setdefault(stream, encoder)
        state[f"queue{suffix}"], state[f"queue_ptr{suffix}"] = torch.randn(5, 32), torch.zeros(1, dtype=torch.long)
    torch.save(state, path)
    return originals


def test_crossclr_files_load_all_three_streams_and_reproduce_their_features(tmp_path):
    path = tmp_path / "crossclr_3views_xview_frame50_channel16_cross150_epoch300.pt"
    originals = _torchlight_file(path, ("joint", "motion", "bone"))
    weights = read_weights(path)
    assert (weights.layout, weights.origin) == ("torchlight", "crossclr")
    assert stored_streams(weights, "joint") == {"joint": "encoder_q.", "motion": "encoder_q_motion.", "bone": "encoder_q_bone."}
    x = torch.randn(5, 3, 8, 25, 2)
    expected = {}
    with torch.no_grad():
        for stream, original in originals.items():
            encoder, settings = eval_encoder_from_authors(weights, None, stream, NTU_SPEC)
            assert settings == STGCN_SMALL  # widths read from the shapes
            expected[stream] = original.eval()(modality(relative_to_joint(x, 20), stream, NTU_SPEC.layout))  # their data: relative
            torch.testing.assert_close(encoder.eval()(x), expected[stream], atol=1e-6, rtol=0)
        ensemble, _ = eval_encoder_from_authors(weights, None, "ensemble", NTU_SPEC)
        mean = torch.stack([torch.nn.functional.normalize(f, dim=1) for f in expected.values()]).mean(dim=0)
        torch.testing.assert_close(ensemble.eval()(x), mean, atol=1e-6, rtol=0)
        concat, _ = eval_encoder_from_authors(weights, None, "concat", NTU_SPEC)
        head = per_stream_head(concat, 4, 0.02)  # eval.linear_head=per_stream_mean: their three fc layers
        mean_logits = sum(linear(expected[stream]) for linear, stream in zip(head.heads, ("joint", "motion", "bone"))) / 3
        torch.testing.assert_close(head(concat.eval()(x)), mean_logits, atol=1e-6, rtol=0)


def test_aimclr_files_hold_one_stream_named_by_the_user(tmp_path):
    path = tmp_path / "ntu60_xsub_motion.pt"
    original = _torchlight_file(path, ("motion",))["motion"]
    weights = read_weights(path)
    assert (weights.layout, weights.origin) == ("torchlight", "skeletonclr/aimclr")
    x = torch.randn(5, 3, 8, 25, 2)
    encoder, _ = eval_encoder_from_authors(weights, None, "motion", NTU_SPEC)
    with torch.no_grad():
        torch.testing.assert_close(encoder.eval()(x), original.eval()(modality(relative_to_joint(x, 20), "motion", NTU_SPEC.layout)), atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match="file name says it holds the motion stream.*eval.stream=motion"):
        eval_encoder_from_authors(weights, None, "joint", NTU_SPEC)
    with pytest.raises(CheckpointError, match="holds one stream's encoder"):
        eval_encoder_from_authors(weights, None, "ensemble", NTU_SPEC)
    with pytest.raises(CheckpointError, match="--encoder bigru_official cannot take them"):
        eval_encoder_from_authors(weights, "bigru_official", "motion", NTU_SPEC)
    unnamed = tmp_path / "epoch300_model.pt"
    path.rename(unnamed)
    assert stored_streams(read_weights(unnamed), "bone") == {"bone": "encoder_q."}  # no name: the user's word


def test_stgcn_files_that_do_not_fit_are_refused_in_one_line(tmp_path, monkeypatch, capsys, one_thread):
    path = tmp_path / "ntu60_xsub_joint.pt"
    _torchlight_file(path, ("joint",))
    args = [
        "eval",
        "--checkpoint",
        str(path),
        "--dataset",
        TINY,
        "--protocols",
        "knn",
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        "--method",
        "moco",
        *eval_sets(tiny_overrides("moco", encoder="stgcn")),
    ]
    code, err = _cli(args, monkeypatch, capsys)
    assert code == 0, err
    (row,) = read_rows(tmp_path / "out" / "results.jsonl")
    assert row.weights["layout"] == "torchlight" and row.config["encoder"] == {**row.config["encoder"], "name": "stgcn", "hidden_dim": 8}

    raw = torch.load(path, weights_only=True)
    broken = {
        "wrong_shape_joint.pt": (
            {**raw, "encoder_q.st_gcn_networks.3.tcn.2.weight": torch.zeros(4, 4, 5, 1)},
            "encoder_q.st_gcn_networks.3.tcn.2.weight has shape (4, 4, 5, 1)",
        ),
        "missing_joint.pt": ({k: v for k, v in raw.items() if k != "encoder_q.data_bn.running_mean"}, "missing encoder_q.data_bn.running_mean"),
        "extra_joint.pt": ({**raw, "encoder_q.st_gcn_networks.10.gcn.conv.bias": torch.zeros(12)}, "unexpected encoder_q.st_gcn_networks.10.gcn.conv.bias"),
        "other_graph_joint.pt": ({**raw, "encoder_q.A": raw["encoder_q.A"].flip(1)}, "encoder_q.A differs from the spatial partition"),
    }
    for name, (state, expected) in broken.items():
        torch.save(state, tmp_path / name)
        code, err = _cli([*args, "--checkpoint", str(tmp_path / name)], monkeypatch, capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
