"""`--compile`: a compiled pretraining computes what the eager one does (to float
rounding) and leaves checkpoints, resume and the protocols' eager code untouched."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.engine import compile as compile_module
from halp_bench.engine.compile import compiled_encoders, outermost_encoders
from halp_bench.engine.pretrain import pretrain
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method

CPU = torch.device("cpu")


def _pretrain(tmp_path, compile_encoders: bool):
    cfg = tiny_config("halp", "pretrain.epochs=1")
    torch.manual_seed(0)
    method = create_method("halp", cfg, NTU_SPEC)
    train, _ = random_skeletons(n=48, t=16).split()
    result = pretrain("halp", method, train, cfg, CPU, tmp_path, show_progress=False, say=lambda _: None, compile_encoders=compile_encoders)
    return method, result


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="Inductor on CPU needs a C++ compiler")
def test_compiled_pretraining_matches_eager_and_keeps_checkpoints_and_eager_protocols(tmp_path, one_thread):
    eager, eager_result = _pretrain(tmp_path / "eager", False)
    counters = torch._dynamo.utils.counters
    counters.clear()
    compiled, compiled_result = _pretrain(tmp_path / "compiled", True)
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"], dict(counters["graph_break"])
    # HaLP's term is on from the first step (tiny config): the compiled GRUs fed the head, queue and hallucination
    assert set(compiled_result.losses[-1]) == set(eager_result.losses[-1]) and "halp_joint" in compiled_result.losses[-1]
    for name, value in eager_result.losses[-1].items():
        assert compiled_result.losses[-1][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    eager_state, compiled_state = eager.state_dict(), compiled.state_dict()
    assert list(compiled_state) == list(eager_state)  # parameter names unchanged: checkpoints interchange
    for name, value in eager_state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            torch.testing.assert_close(compiled_state[name], value, rtol=1e-4, atol=1e-5, msg=name)
    saved = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=True)
    assert list(saved["model"]) == list(eager_state)
    assert compiled_result.compile_seconds > 0 and eager_result.compile_seconds == 0
    assert all(e._compiled_call_impl is None for e in outermost_encoders(compiled))  # protocols run eager code


def test_every_stream_query_and_key_encoder_is_compiled_and_restored(monkeypatch):
    method = create_method("cmd", tiny_config("cmd"), NTU_SPEC)
    encoders = outermost_encoders(method)
    assert len(encoders) == 2 * len(method.streams)
    with compiled_encoders(method, CPU, True):
        assert all(e._compiled_call_impl is not None for e in encoders)
        assert torch._dynamo.config.allow_rnn  # the GRU is traced, not a graph break
    assert all(e._compiled_call_impl is None for e in encoders) and not torch._dynamo.config.allow_rnn
    with compiled_encoders(method, CPU, False):
        assert all(e._compiled_call_impl is None for e in encoders)


def test_compile_without_a_cpp_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compile_module.shutil, "which", lambda _: None)
    method = create_method("moco", tiny_config("moco"), NTU_SPEC)
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        with compiled_encoders(method, CPU, True):
            pass
    assert all(e._compiled_call_impl is None for e in outermost_encoders(method))


def test_a_token_method_gets_its_hooks_and_decoder_compiled_and_restored():
    method = create_method("mamp", tiny_config("mamp"), NTU_SPEC)
    (encoder,) = outermost_encoders(method)
    with compiled_encoders(method, CPU, True):
        assert "run_blocks" in vars(encoder) and "tokens" in vars(encoder) and "pool_tokens" in vars(encoder)
        assert encoder._compiled_call_impl is not None and method.decoder._compiled_call_impl is not None
    assert not {"run_blocks", "tokens", "pool_tokens"} & set(vars(encoder)) and method.decoder._compiled_call_impl is None
    assert list(method.state_dict()) == list(create_method("mamp", tiny_config("mamp"), NTU_SPEC).state_dict())
