"""What `eval --checkpoint` checks of a weights file before its numbers are stored: every weight
finite (a diverged run's NaNs would give a chance-level row stored as "ran"), how far its
pretraining got (a row of an unfinished pretraining says so), and, when its tensors do not fit the
data, which of the data's sizes differ (joints, channels, persons, hidden size), not PyTorch's text.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from halp_bench.errors import CheckpointError
from halp_bench.skeleton import DataSpec

SHOWN_TENSORS = 3  # a mismatch lists at most this many tensors


def model_state(weights: Any) -> dict[str, Any]:
    """The tensors of a WeightsFile: our checkpoint's model, or the authors' state dict."""
    return weights.state["model"] if weights.layout == "halp-bench" else weights.state


def check_finite_weights(weights: Any) -> None:
    """Refuse a file holding NaN or infinite weights, naming the first such tensor."""
    for name, value in model_state(weights).items():
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                weights.path,
                f"tensor '{name}' holds {bad} non-finite value(s) (NaN or inf) of {value.numel()}: "
                "rows of these weights would be chance level (did its pretraining diverge?)",
            )


def progress(weights: Any) -> dict[str, int] | None:
    """How far our checkpoint's pretraining got: {"epoch", "iteration", "epochs"} (epochs done,
    iterations done in the next one, epochs asked for); None for the authors' files."""
    if weights.layout != "halp-bench":
        return None
    state = weights.state
    planned = state.get("config", {}).get("pretrain", {}).get("epochs")
    return {
        "epoch": int(state.get("epoch", 0)),
        "iteration": int(state.get("iteration", 0)),
        "epochs": int(planned) if isinstance(planned, int) else int(state.get("epoch", 0)),
    }


def progress_label(done: dict[str, int] | None) -> str | None:
    """'unfinished: epoch 0 + 100 iterations of 2' for a checkpoint saved mid-pretraining, else None."""
    if done is None or (done["epoch"] >= done["epochs"] and done["iteration"] == 0):
        return None
    return f"unfinished: epoch {done['epoch']} + {done['iteration']} iterations of {done['epochs']}"


def explain_mismatch(path: Any, method_name: str, model: nn.Module, stored: dict[str, Any], data: DataSpec, hidden: dict[str, int]) -> CheckpointError:
    """A CheckpointError saying, in the data's and the encoder's words, why `stored` does not fit
    `model`: the sizes that differ, then at most SHOWN_TENSORS tensors with both shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in stored]
    unexpected = [k for k in stored if k not in own]
    wrong = [
        (k, tuple(stored[k].shape), tuple(v.shape))
        for k, v in own.items()
        if k in stored and isinstance(stored[k], Tensor) and tuple(stored[k].shape) != tuple(v.shape)
    ]
    reasons = list(dict.fromkeys(r for _, theirs, ours in wrong for r in _sizes(theirs, ours, data, hidden)))
    shown = [f"{k} {theirs} here {ours}" for k, theirs, ours in wrong[:SHOWN_TENSORS]]
    if missing:
        shown.append(f"missing {', '.join(missing[:SHOWN_TENSORS])}" + (f" and {len(missing) - SHOWN_TENSORS} more" if len(missing) > SHOWN_TENSORS else ""))
    if unexpected:
        shown.append(
            f"unexpected {', '.join(unexpected[:SHOWN_TENSORS])}" + (f" and {len(unexpected) - SHOWN_TENSORS} more" if len(unexpected) > SHOWN_TENSORS else "")
        )
    more = f" (+{len(wrong) - SHOWN_TENSORS} more tensors)" if len(wrong) > SHOWN_TENSORS else ""
    why = "; ".join(reasons) if reasons else "its tensors have other shapes or names than this model's"
    return CheckpointError(path, f"does not fit {method_name} on this data: {why} ({'; '.join(shown)}{more})")


def _sizes(theirs: tuple[int, ...], ours: tuple[int, ...], data: DataSpec, hidden: dict[str, int]) -> list[str]:
    """The data or encoder sizes that explain one tensor's differing dimensions."""
    reasons: list[str] = []
    for a, b in zip(theirs, ours):
        if a == b:
            continue
        found = _factor(a, b, data)
        for name, size in hidden.items():  # e.g. a GRU's 3 x hidden rows
            if not found and size and b % size == 0 and a % (b // size) == 0:
                found = [f"{name} {a // (b // size)} in the checkpoint, {size} here"]
        reasons += found
    return reasons


def shape_in_data_words(theirs: tuple[int, ...], ours: tuple[int, ...], data: DataSpec) -> str:
    """' (the file was made for 20 joints, this data has 25)', or '' when no data size explains it."""
    reasons = [r for a, b in zip(theirs, ours) if a != b for r in _factor(a, b, data)]
    return f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""


def _factor(a: int, b: int, data: DataSpec) -> list[str]:
    """How the data's sizes explain the file's `a` where this data gives `b`: per-frame input
    values (channels x joints x persons, a sequence encoder), the ST-GCN's input norm (channels x
    joints) or its graph (joints). A product is named with the single sizes that would explain it
    alone (the count cannot tell 25 joints x 2 persons from 50 joints x 1)."""
    sizes = {"channels": data.channels, "joints": data.joints, "persons": data.persons}
    if b == data.joints:
        return [f"the checkpoint's skeleton graph has {a} joints, this data {b}"]
    for names in (("channels", "joints", "persons"), ("channels", "joints")):
        if b != int(torch.tensor([sizes[n] for n in names]).prod()):
            continue
        alone = [f"{a // (b // sizes[n])} {n}" for n in names if a % (b // sizes[n]) == 0]
        said = f"the checkpoint takes {a} input values per frame ({' x '.join(names)}), this data {b} ({' x '.join(str(sizes[n]) for n in names)})"
        return [said + (f": e.g. {' or '.join(alone)} with the other sizes as here" if alone else "")]
    return []
