"""`--preset official`: the authors' code as it produced the published tables, value for value, per
dataset where their scripts differ. Every value is checked here, next to the sentence of
papers/official_code.md (the digest of the authors' code) it comes from; that sentence is checked to
be in the digest when the shared folder is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from halp_bench.config import flat_items, make_config

DIGEST = Path(__file__).resolve().parents[1].parent / "shared" / "papers" / "official_code.md"

# (method, dataset, key, value, what official_code.md says)
OFFICIAL = [
    ("halp", "ntu60", "encoder.name", "bigru_official", 'the "backward" direction also runs forward in time'),
    ("cmd", "ntu60", "encoder.name", "bigru_official", 'the "backward" direction also runs forward in time'),
    ("moco", "ntu60", "encoder.hidden_size", 1024, "`en_hidden_size=1024`, `en_num_layers=3`"),
    ("moco", "ntu60", "encoder.num_layers", 3, "`en_hidden_size=1024`, `en_num_layers=3`"),
    ("moco", "ntu60", "method.queue_size", 16384, "| queue K (`--contrast-k`) | **16384** | 32768 |"),
    ("moco", "ntu60", "method.momentum", 0.999, "| key momentum m | 0.999 | 0.999 |"),
    ("moco", "ntu60", "method.temperature", 0.07, "| InfoNCE temperature (`--contrast-t`) | 0.07 | 0.07 |"),
    ("moco", "ntu60", "method.proj_hidden", 2048, "`fc = Sequential(Linear(2048,2048), ReLU, Linear(2048,128))`"),
    ("moco", "ntu60", "method.proj_dim", 128, "`fc = Sequential(Linear(2048,2048), ReLU, Linear(2048,128))`"),
    ("moco", "ntu60", "pretrain.lr", 0.01, "| lr | **0.01** | 0.001 |"),
    ("moco", "ntu60", "pretrain.batch_size", 64, "| batch size | **64**, single GPU, `drop_last=True` | 256 |"),
    ("moco", "ntu60", "pretrain.weight_decay", 1e-4, "| optimizer | SGD, momentum 0.9, wd **1e-4**"),
    ("moco", "ntu60", "pretrain.momentum", 0.9, "| optimizer | SGD, momentum 0.9, wd **1e-4**"),
    ("moco", "ntu60", "pretrain.epochs", 451, "NTU60/120: **451 epochs, lr×0.1 at 351**"),
    ("moco", "ntu60", "pretrain.milestones", (351,), "NTU60/120: **451 epochs, lr×0.1 at 351**"),
    ("moco", "pku2", "pretrain.epochs", 1001, "PKU-II: 1001 epochs, ×0.1 at 801"),
    ("moco", "pku2", "pretrain.milestones", (801,), "PKU-II: 1001 epochs, ×0.1 at 801"),
    ("moco", "ntu60", "data.frames", 64, "`input_size=64` everywhere"),
    ("moco", "ntu60", "augment.crop_min_scale", 0.1, "scale ~ U(0.1, 1) (`l_ratio=[0.1,1]`)"),
    ("moco", "ntu60", "augment.min_crop_frames", 64, "so `min_crop_length=64`"),
    ("moco", "ntu60", "augment.shear_prob", 0.5, "shear 50%, 15-joint mask 25%, 15-joint random linear map 25%"),
    ("moco", "ntu60", "augment.shear_amplitude", 1.0, "all off-diagonal entries are ~U(**-1, 1**)"),
    ("moco", "ntu60", "augment.corrupt_joints", 15, "15 of the 25 joints are chosen at random"),
    ("cmd", "ntu60", "method.cmd_topk", 8192, "with `topk` = **8192** in the script"),
    ("cmd", "ntu60", "method.cmd_teacher_temperature", 0.05, "The temperatures are teacher **Tt = 0.05**"),
    ("cmd", "ntu60", "method.cmd_student_temperature", 0.1, "and student **Ts = 0.1**"),
    ("cmd", "ntu60", "method.cmd_weight", 1.0, "It is then multiplied by `cmd_weight=1.0`"),
    ("halp", "ntu60", "method.num_prototypes", 20, "- **N=20** clusters."),
    ("halp", "ntu60", "method.prototype_queue", 256, "`queue_els_for_prototypes`=**256** most recently enqueued keys"),
    ("halp", "ntu60", "method.num_positives", 100, "For each of the **G = `num_positives` = 100** positives"),
    ("halp", "ntu60", "method.lam", 0.8, '`u ~ U(0, lambda_pos)` with `lambda_pos="0.8"`'),
    ("halp", "ntu60", "method.t_sampling", "official", "This gives **t ~ U(0.2 t*, t*)**"),
    ("halp", "ntu60", "method.prototype_refresh", 10, "but **all shipped scripts use 10**"),
    ("halp", "ntu60", "method.mu", 2.0, "the scripts use **2** for NTU60 and NTU120 and **1** for PKU-II"),
    ("halp", "pku2", "method.mu", 1.0, "the scripts use **2** for NTU60 and NTU120 and **1** for PKU-II"),
    ("halp", "ntu60", "method.start_epoch", 200, "NTU60 and NTU120 x-sub: resume from epoch **200**"),
    ("halp", "pku2", "method.start_epoch", 500, "PKU-II: resume from epoch 500 and train to 1001"),
    ("halp", "ntu60", "method.kmeans_backend", "geomstats", "`RiemannianKMeans(Hypersphere(dim=128).metric"),
    ("halp_cmd", "ntu60", "method.mu", 2.0, "the scripts use **2** for NTU60 and NTU120 and **1** for PKU-II"),
    ("halp", "ntu60", "linear.lr", 0.005, "but with lr **0.005** for NTU and **0.001** for PKU"),
    ("halp", "pku2", "linear.lr", 0.001, "but with lr **0.005** for NTU and **0.001** for PKU"),
    ("moco", "ntu60", "linear.lr", 0.005, "but with lr **0.005** for NTU and **0.001** for PKU"),
    ("halp_cmd", "ntu60", "linear.lr", 0.005, "but with lr **0.005** for NTU and **0.001** for PKU"),
    ("cmd", "ntu60", "linear.lr", 0.1, "SGD with lr **0.1** (script; the default of 30 is unused)"),
    ("cmd", "pku2", "linear.lr", 0.1, "SGD with lr **0.1** (script; the default of 30 is unused)"),
    ("moco", "ntu60", "linear.epochs", 80, "**80 epochs**, with lr ×0.1 at epochs **50 and 70** (step)"),
    ("moco", "ntu60", "linear.milestones", (50, 70), "**80 epochs**, with lr ×0.1 at epochs **50 and 70** (step)"),
    ("moco", "ntu60", "linear.weight_decay", 0.0, "momentum 0.9, wd **0**, batch **64**"),
    ("moco", "ntu60", "eval.train_crop_min", 0.5, "`crop_subsequence` with scale ~ U(**0.5, 1.0**)"),
    ("moco", "ntu60", "eval.test_crop", 0.95, "a deterministic **center crop of 95%**"),
    ("moco", "ntu60", "eval.knn_k", 1, "i.e. **k=1**, cosine"),
    ("moco", "ntu60", "eval.report", "best", "the **best** top-1 over these evaluations is reported"),
    ("moco", "ntu60", "eval.eval_every", 5, "The test set is evaluated every 5 epochs"),
    ("moco", "pku2", "transfer.lr", 0.01, "with lr **0.01**, momentum 0.9, wd 0, batch 64"),
    ("moco", "pku2", "transfer.epochs", 80, "Schedule: 80 epochs, ×0.1 at 50 and 70"),
    ("moco", "pku2", "transfer.milestones", (50, 70), "Schedule: 80 epochs, ×0.1 at 50 and 70"),
]


@pytest.mark.parametrize("method, dataset, key, value, source", OFFICIAL, ids=[f"{m}-{d}-{k}" for m, d, k, *_ in OFFICIAL])
def test_the_official_preset_holds_the_authors_values(method, dataset, key, value, source):
    cfg = make_config("official", [f"data.dataset={dataset}"], method=method)
    assert flat_items(cfg)[key] == value
    if DIGEST.is_file():
        assert source in DIGEST.read_text(encoding="utf-8"), f"not in {DIGEST.name}: {source}"


FIELD_DIGEST = DIGEST.with_name("field_methods.md")  # the ST-GCN family's code (CrosSCLR, AimCLR)
FIELD_OFFICIAL = [
    ("crossclr", "ntu60", "eval.stream", "concat", "`view: 'all'` → logits `(enc_q(x) + enc_q_motion(motion) + enc_q_bone(bone)) / 3`"),
    ("crossclr", "ntu60", "eval.linear_head", "per_stream_mean", "three encoders, each with `fc = Linear(256, 60)`"),
    ("crossclr", "ntu60", "eval.head_std", 0.02, "`weights_init`: Conv1d/Conv2d/Linear → weight N(0,0.02), bias 0"),
]


@pytest.mark.parametrize("method, dataset, key, value, source", FIELD_OFFICIAL, ids=[f"{m}-{d}-{k}" for m, d, k, *_ in FIELD_OFFICIAL])
def test_the_official_preset_holds_the_field_authors_values(method, dataset, key, value, source):
    cfg = make_config("official", [f"data.dataset={dataset}"], method=method)
    assert flat_items(cfg)[key] == value
    if FIELD_DIGEST.is_file():
        assert source in FIELD_DIGEST.read_text(encoding="utf-8"), f"not in {FIELD_DIGEST.name}: {source}"


def test_official_is_its_own_preset_in_the_cell_and_the_table():
    from halp_bench.results.row import ResultRow
    from halp_bench.results.tables import build_tables, to_markdown

    rows = [
        ResultRow(
            method="halp",
            dataset="ntu60",
            split="xsub",
            protocol="linear",
            transfer_from=None,
            preset=preset,
            seed=0,
            config_id=preset,
            metrics={"top1": top1},
            report=report,
            config={"eval": {"eval_every": 5}},
        )
        for preset, top1, report in (("paper", 70.0, "final"), ("official", 72.0, "best"))
    ]
    assert rows[0].key != rows[1].key  # never the same cell
    text = to_markdown(build_tables(rows, ("linear",))[0])
    assert "| halp            |" in text and "| halp [official] |" in text and "72.0†" in text and "preset official, paper" in text
