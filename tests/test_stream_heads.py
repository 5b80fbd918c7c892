"""`eval.linear_head=per_stream_mean`: CrosSCLR's three-stream probe as its code trains it (one
linear head per stream, the mean of their logits). Its function against three separately computed
heads, the one-step gradient difference from the single head on the concat feature, the refusals,
its presets, and a probe that learns on structured data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_finetune import _structured

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import make_config
from halp_bench.datasets.views.clr import relative_to_joint
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method
from halp_bench.methods.stream_encoders import StreamEncoder
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.linear import run_linear
from halp_bench.protocols.stream_heads import PerStreamMeanHead, concat_stream_dims, per_stream_head
from halp_bench.registry import METHODS
from halp_bench.validation import check_grid

STREAMS = ("joint", "motion", "bone")
PER_STREAM = "eval.linear_head=per_stream_mean"


def _crossclr_concat():
    return create_method("crossclr", tiny_config("crossclr", "eval.stream=concat", PER_STREAM), NTU_SPEC).eval()


def test_logits_are_the_mean_of_three_heads_on_the_streams_own_features():
    """Whatever the parameters: head(concat encoder(x)) equals the mean over streams of
    W_s f_s + b_s, with f_s each stream encoder's own feature computed here separately."""
    method = _crossclr_concat()
    encoder = method.encoder_for_eval()
    torch.manual_seed(0)
    head = per_stream_head(encoder, 5, std=0.02)
    with torch.no_grad():
        for linear in head.heads:  # any parameters, not only the initial ones
            linear.weight.normal_()
            linear.bias.normal_()
        x = torch.randn(4, 3, 8, 25, 2)
        features = [StreamEncoder(method.encoders_q[s].encoder, s, NTU_SPEC.layout)(relative_to_joint(x, 20)) for s in STREAMS]
        expected = sum(f @ linear.weight.t() + linear.bias for f, linear in zip(features, head.heads)) / 3
        torch.testing.assert_close(head(encoder(x)), expected, atol=1e-5, rtol=0)
    assert head.stream_dims == tuple(f.shape[1] for f in features)


def test_each_head_starts_as_the_authors_do():
    """N(0, eval.head_std) weights drawn separately per head, zero biases (their `weights_init`)."""
    torch.manual_seed(0)
    head = PerStreamMeanHead((400, 400, 400), 60, std=0.02)
    for linear in head.heads:
        assert torch.all(linear.bias == 0)
        assert linear.weight.std().item() == pytest.approx(0.02, rel=0.02) and abs(linear.weight.mean().item()) < 1e-3
    assert not torch.equal(head.heads[0].weight, head.heads[1].weight)


def _one_sgd_step(head: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, lr: float) -> None:
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9)
    F.cross_entropy(head(inputs), labels).backward()
    optimizer.step()


def test_the_effective_bias_moves_at_a_third_of_the_single_heads():
    """From the same function, one SGD step: the single head's bias moves by -lr * g (g: the batch
    mean of softmax - one-hot), the mean of the three biases by -lr * g / 3; the weights move alike."""
    torch.manual_seed(0)
    streams, dim, classes, lr = 3, 6, 4, 0.5
    features = [torch.randn(16, dim) for _ in range(streams)]
    labels = torch.randint(0, classes, (16,))
    concat = torch.cat(features, dim=1) / streams  # what ConcatEncoder gives
    per_stream = PerStreamMeanHead((dim,) * streams, classes, std=0.5)
    with torch.no_grad():
        for linear in per_stream.heads:
            linear.bias.normal_()
        single = torch.nn.Linear(streams * dim, classes)
        single.weight.copy_(torch.cat([linear.weight for linear in per_stream.heads], dim=1))
        single.bias.copy_(torch.stack([linear.bias for linear in per_stream.heads]).mean(dim=0))
        torch.testing.assert_close(single(concat), per_stream(concat))
        g = (F.softmax(single(concat), dim=1) - F.one_hot(labels, classes)).mean(dim=0)
    bias_before = single.bias.detach().clone()
    _one_sgd_step(single, concat, labels, lr)
    _one_sgd_step(per_stream, concat, labels, lr)
    with torch.no_grad():
        effective_bias = torch.stack([linear.bias for linear in per_stream.heads]).mean(dim=0)
        torch.testing.assert_close(single.bias - bias_before, -lr * g)
        torch.testing.assert_close(effective_bias - bias_before, -lr * g / streams)
        torch.testing.assert_close(single.weight, torch.cat([linear.weight for linear in per_stream.heads], dim=1))
    assert g.abs().max() > 0.01  # a step that moves the bias


def test_any_other_stream_or_a_single_stream_method_is_refused():
    with pytest.raises(ConfigError, match="per_stream_mean: needs eval.stream=concat .* not eval.stream=joint"):
        make_config("cpu", [PER_STREAM], method="crossclr")  # the cpu preset probes the joint stream
    with pytest.raises(ConfigError, match="not eval.stream=ensemble"):
        make_config("paper", [PER_STREAM, "eval.stream=ensemble"], method="crossclr")
    with pytest.raises(ConfigError, match="add --set eval.linear_head=linear"):
        make_config("official", ["eval.stream=motion"], method="crossclr")
    data = _structured()
    config_for = lambda name: tiny_config(name, "eval.stream=concat", PER_STREAM)
    with pytest.raises(ConfigError, match="per_stream_mean: skeletonclr trains one stream"):
        check_grid(["crossclr", "skeletonclr"], config_for, data, 36, "the test data")
    check_grid(["crossclr"], config_for, data, 36, "the test data")
    single = create_method("skeletonclr", config_for("skeletonclr"), NTU_SPEC).encoder_for_eval()
    assert concat_stream_dims(single) is None
    with pytest.raises(ConfigError, match="needs the concatenated features of several streams"):
        per_stream_head(single, 3, 0.02)


def test_crossclr_selects_it_under_official_only():
    official = make_config("official", [], method="crossclr").eval
    assert (official.linear_head, official.stream, official.head_std) == ("per_stream_mean", "concat", 0.02)
    assert make_config("paper", [], method="crossclr").eval.linear_head == "linear"
    assert make_config("official", ["eval.protocol=common"], method="crossclr").eval.linear_head == "linear"
    assert make_config("official", [], method="crossclr_b").eval.linear_head == "linear"  # a re-build with CMD's probe
    assert "per_stream_mean" in str(METHODS.get("crossclr").defaults_for("official"))


def test_the_per_stream_probe_learns_and_keeps_the_encoder_frozen():
    torch.manual_seed(0)
    cfg = tiny_config("crossclr", "eval.stream=concat", PER_STREAM, "linear.epochs=30", "linear.lr=0.5")
    encoder = create_method("crossclr", cfg, NTU_SPEC).encoder_for_eval()
    train, test = _structured().split("all")
    metrics = run_linear(encoder, train, test, ProtocolContext(cfg=cfg, device=torch.device("cpu")))
    assert metrics["encoder_frozen_verified"] == 1.0
    assert metrics["top1"] > 60  # chance 33 %
