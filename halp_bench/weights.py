"""Pretrained weights from a file, for `halp-bench eval`: this harness's checkpoints and the
authors' released layouts (papers/field_methods.md §7), read without running code, mapped onto our
encoders, and checked.

Layouts:
- `halp-bench`: our `checkpoint.pt` (`{"format", "method", "config", "model", ...}`); the method is
  rebuilt from the stored configuration and its whole state loaded strictly.
- `cmd-halp`: CMD's and HaLP's `checkpoint_XXXX.pth.tar` (`{"epoch", "state_dict", "optimizer"}`),
  BiGRU query encoders under `encoder_q.` (and `encoder_q_motion.`, `encoder_q_bone.` for CMD's
  three streams), `module.` prefixes of DDP runs stripped. The GRU size is read from the shapes.
- `mamp`: MAMP's `{"model": ..., "args": Namespace, ...}`, the transformer encoder's keys at the top
  level (halp_bench/mamp_weights.py).
- `torchlight`: CrosSCLR's and AimCLR's (and SkeletonCLR's) flat state dicts of ST-GCN encoders
  (`encoder_q.st_gcn_networks...`; CrosSCLR's three streams also under `encoder_q_motion.`,
  `encoder_q_bone.`); the key encoders and queues are ignored, the widths read from the shapes.

Every load names the file in its errors (missing and unexpected keys, wrong shapes), and is
checked: our checkpoints load strictly; imported BiGRU weights must give the features the authors'
own frame-by-frame computation (`PerFrameBIGRU`) gives with the file's tensors, to 1e-4; imported
ST-GCN weights load strictly into `stgcn` and the file's graph `A` must be the one `stgcn` builds
for the data's layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from halp_bench.config import EncoderSettings, RunConfig, config_from_dict
from halp_bench.encoders import Encoder, build_encoder
from halp_bench.encoders.bigru import BiGRUSettings, PerFrameBIGRU
from halp_bench.encoders.stgcn import STGCNSettings
from halp_bench.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from halp_bench.errors import CheckpointError
from halp_bench.mamp_weights import MAMP_CENTER_JOINT, SAFE_GLOBALS, is_mamp_layout, load_mamp_encoder, mamp_encoder_state, transformer_settings_from
from halp_bench.methods.base import Method, create_method
from halp_bench.methods.mamp_views import FirstFrameTranslated
from halp_bench.methods.stream_encoders import MULTI_STREAM, RelativeEncoder, eval_encoder
from halp_bench.skeleton import DataSpec
from halp_bench.weights_checks import explain_mismatch, shape_in_data_words

STREAM_PREFIXES = {"joint": "encoder_q.", "motion": "encoder_q_motion.", "bone": "encoder_q_bone."}
REFERENCE_TOLERANCE = 1e-4
GRAPH_TOLERANCE = 1e-6  # the file's `A` against ours: both float32 from the same formula


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    sha256: str
    layout: str  # "halp-bench", "cmd-halp" or "torchlight"
    origin: str  # who made it: "halp-bench", "cmd", "halp", "moco (HaLP's baseline)", "crossclr", "skeletonclr/aimclr"
    state: dict[str, Any]  # ours: the whole checkpoint; others: the model's state dict, `module.` stripped

    def describe(self) -> dict[str, str]:
        """What a result row records about the file."""
        return {"path": str(self.path), "sha256": self.sha256, "layout": self.layout, "origin": self.origin}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_weights(path: Path) -> WeightsFile:
    """Load `path` safely (tensors and plain data only) and tell its layout."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):  # MAMP's files pickle their argparse arguments
        raw = load_checkpoint(path, remedy="it cannot be evaluated; copy the file again from where it was made")
    sha = file_sha256(path)
    if is_mamp_layout(raw):
        return WeightsFile(path, sha, "mamp", "mamp", mamp_encoder_state(raw))
    if "model" in raw and "format" in raw:
        if raw["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(path, f"checkpoint format {raw['format']} is not {CHECKPOINT_FORMAT} (an earlier halp-bench); retrain it with this version")
        return WeightsFile(path, sha, "halp-bench", "halp-bench", raw)
    nested = isinstance(raw.get("state_dict"), dict)
    state = raw["state_dict"] if nested else raw
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            path,
            "not a checkpoint layout halp-bench knows: expected ours, CMD/HaLP's "
            "{'epoch', 'state_dict', ...} or a flat state dict of tensors (CrosSCLR/AimCLR)",
        )
    state = {key[len("module.") :] if key.startswith("module.") else key: value for key, value in state.items()}
    if any(key.startswith("encoder_q.encoder.gru.") for key in state):
        origin = "cmd" if "encoder_q_motion.encoder.gru.weight_ih_l0" in state else "halp" if "prototypes" in state else "moco (HaLP's baseline)"
        return WeightsFile(path, sha, "cmd-halp", origin, state)
    if any(key.startswith("encoder_q.st_gcn_networks.") for key in state):
        return WeightsFile(path, sha, "torchlight", "crossclr" if "encoder_q_motion.data_bn.weight" in state else "skeletonclr/aimclr", state)
    found = ", ".join(sorted({key.split(".")[0] for key in state})[:6])
    raise CheckpointError(path, f"found no query encoder (encoder_q.encoder.gru.* or encoder_q.st_gcn_networks.*); top-level keys: {found}")


def method_from_checkpoint(weights: WeightsFile, cfg: RunConfig, data: DataSpec) -> tuple[str, Method, RunConfig]:
    """Our checkpoint: its method rebuilt with the stored pretraining settings over `cfg` (whose
    evaluation settings stay), its whole state loaded strictly."""
    name = str(weights.state["method"])
    stored = config_from_dict(name, {"preset": cfg.preset, **weights.state["config"]})
    merged = dataclasses.replace(
        cfg,
        method=stored.method,
        encoder=stored.encoder,
        augment=stored.augment,
        pretrain=stored.pretrain,
        precision=stored.precision,
        sync_batchnorm=stored.sync_batchnorm,
        data=dataclasses.replace(cfg.data, frames=stored.data.frames),
    )
    method = create_method(name, merged, dataclasses.replace(data, frames=stored.data.frames))
    try:
        method.load_state_dict(weights.state["model"])
    except RuntimeError:  # torch lists missing/unexpected keys and shapes over many lines: say it in the data's words
        hidden = {
            key.replace("_", " "): value
            for key, value in {**vars(merged.encoder), **vars(merged.method)}.items()
            if isinstance(value, int) and not isinstance(value, bool) and ("hidden" in key or "proj" in key)
        }
        raise explain_mismatch(weights.path, name, method, weights.state["model"], data, hidden) from None
    return name, method, merged


def default_encoder(weights: WeightsFile) -> str:
    """The encoder an authors' file is evaluated with when `--encoder` is not given."""
    return {"torchlight": "stgcn", "mamp": "transformer"}.get(weights.layout, "bigru_official")


def bigru_settings_from(weights: WeightsFile, encoder: str) -> BiGRUSettings:
    """The authors' BiGRU size, read from the file: hidden = weight_hh_l0's width, layers = the
    number of `weight_ih_l{k}` tensors of the query encoder."""
    state = weights.state
    if "encoder_q.encoder.gru.weight_hh_l0" not in state:
        raise CheckpointError(weights.path, "missing encoder_q.encoder.gru.weight_hh_l0 (the query encoder's first GRU layer)")
    if encoder not in ("bigru", "bigru_official"):
        raise CheckpointError(weights.path, f"holds BiGRU weights; --encoder {encoder} cannot take them (use bigru_official or bigru)")
    layers = len([k for k in state if re.fullmatch(r"encoder_q\.encoder\.gru\.weight_ih_l\d+", k)])
    return BiGRUSettings(name=encoder, hidden_size=int(state["encoder_q.encoder.gru.weight_hh_l0"].shape[1]), num_layers=layers)


def stgcn_settings_from(weights: WeightsFile, encoder: str) -> STGCNSettings:
    """The authors' ST-GCN widths, read from the file (§7.5): hidden_channels = the first graph
    conv's outputs / partitions, hidden_dim = the last temporal conv's outputs."""
    state = weights.state
    if encoder != "stgcn":
        raise CheckpointError(weights.path, f"holds ST-GCN weights (CrosSCLR/AimCLR); --encoder {encoder} cannot take them (use stgcn)")
    first, last = "encoder_q.st_gcn_networks.0.gcn.conv.weight", "encoder_q.st_gcn_networks.9.tcn.2.weight"
    for key in (first, last, "encoder_q.A"):
        if key not in state:
            raise CheckpointError(weights.path, f"missing {key} (the query encoder's ST-GCN)")
    return STGCNSettings(
        hidden_channels=int(state[first].shape[0]) // int(state["encoder_q.A"].shape[0]),
        hidden_dim=int(state[last].shape[0]),
        edge_importance="encoder_q.edge_importance.0" in state,
    )


def stored_streams(weights: WeightsFile, stream: str) -> dict[str, str]:
    """Stream -> key prefix of the query encoders the file holds. CMD's and CrosSCLR's three-stream
    files name theirs; a single-stream file (HaLP, SkeletonCLR, AimCLR) stores only `encoder_q.`,
    trained on whichever stream its author chose, which only the user knows (AimCLR names it in
    the file name, e.g. ntu60_xsub_motion.pt): it is evaluated as `stream`, which must not be the
    ensemble, nor contradict the file name."""
    if weights.layout == "mamp":  # one joint-stream encoder, unprefixed
        return {"joint": ""}
    marker = "encoder.gru.weight_ih_l0" if weights.layout == "cmd-halp" else "st_gcn_networks.0.gcn.conv.weight"
    found = {name: prefix for name, prefix in STREAM_PREFIXES.items() if prefix + marker in weights.state}
    if weights.layout != "torchlight" or len(found) > 1:
        return found
    if stream in MULTI_STREAM:
        raise CheckpointError(
            weights.path,
            "holds one stream's encoder (encoder_q.); name the stream it was trained on with "
            "--set eval.stream=joint|motion|bone (AimCLR's three-stream fusion needs its three files)",
        )
    named = [name for name in STREAM_PREFIXES if re.search(rf"(^|[_.-]){name}([_.-]|$)", weights.path.stem)]
    if len(named) == 1 and named[0] != stream:
        raise CheckpointError(
            weights.path, f"the file name says it holds the {named[0]} stream, but it is evaluated as {stream}; pass --set eval.stream={named[0]}"
        )
    return {stream: "encoder_q."}


def encoders_from_authors(weights: WeightsFile, settings: EncoderSettings, data: DataSpec, stream: str) -> dict[str, Encoder]:
    """One encoder per stream the file holds, each checked: BiGRUs against the authors'
    frame-by-frame computation with the file's own tensors (bigru_official; `bigru` computes
    another function of the same weights, so only the copied tensors are checked), ST-GCNs by
    loading strictly and recomputing the file's graph `A`."""
    encoders = {}
    for name, prefix in stored_streams(weights, stream).items():
        encoder = build_encoder(data, settings)
        if isinstance(settings, STGCNSettings):
            load_stgcn(encoder, weights, prefix)
        else:
            encoder.load_official_state_dict(weights.state, prefix=prefix, source=str(weights.path))
            if settings.name == "bigru_official":
                check_against_reference(encoder, weights, prefix, settings, data)
        encoders[name] = encoder.eval()
    return encoders


def load_stgcn(encoder: Encoder, weights: WeightsFile, prefix: str) -> None:
    """The query encoder under `prefix`, its MLP head (`fc`, `fc.0`, `fc.2`, CrosSCLR's aliased
    `fc.2.0`, `fc.2.2`) dropped as the authors' linear evaluation drops it, loaded strictly after its
    graph is checked: the file's `A` must be the spatial partition of the data's layout."""
    entries = {key[len(prefix) :]: value for key, value in weights.state.items() if key.startswith(prefix) and key[len(prefix) :].split(".")[0] != "fc"}
    own = encoder.state_dict()
    missing, extra = [k for k in own if k not in entries], [k for k in entries if k not in own]
    if missing or extra:
        problems = [f"missing {', '.join(prefix + k for k in missing)}"] if missing else []
        problems += [f"unexpected {', '.join(prefix + k for k in extra)}"] if extra else []
        raise CheckpointError(
            weights.path, f"not an ST-GCN for this encoder ({encoder.settings.describe()}, {encoder.data.layout.name}): {'; '.join(problems)}"
        )
    for key, target in own.items():
        if tuple(entries[key].shape) != tuple(target.shape):
            raise CheckpointError(
                weights.path,
                f"{prefix + key} has shape {tuple(entries[key].shape)}, this encoder expects "
                f"{tuple(target.shape)} ({encoder.data.channels} channels, {encoder.data.joints} joints)"
                + shape_in_data_words(tuple(entries[key].shape), tuple(target.shape), encoder.data),
            )
    gap = (entries["A"].float() - own["A"]).abs().max().item()
    if not gap <= GRAPH_TOLERANCE:
        raise CheckpointError(
            weights.path,
            f"{prefix}A differs from the spatial partition of layout {encoder.data.layout.name} by {gap:.2g}: the file was made for another skeleton graph",
        )
    encoder.load_state_dict(entries, strict=True)


@torch.no_grad()
def check_against_reference(encoder: Encoder, weights: WeightsFile, prefix: str, settings: BiGRUSettings, data: DataSpec) -> None:
    """The loaded encoder's features must equal the authors' per-frame computation with the file's
    tensors on a random batch (eval mode: the input BatchNorm uses the file's statistics)."""
    reference = PerFrameBIGRU(data.in_channels, settings.hidden_size, settings.num_layers)
    own = {key[len(prefix) :]: value for key, value in weights.state.items() if key.startswith(prefix)}
    reference.load_state_dict({key: own[key] for key in reference.state_dict() if key in own}, strict=False)
    x = torch.randn(4, data.channels, min(data.frames, 16), data.joints, data.persons, generator=torch.Generator().manual_seed(0))
    gap = (encoder.eval()(x) - reference.eval()(x)).abs().max().item()
    if not gap <= REFERENCE_TOLERANCE:
        raise CheckpointError(
            weights.path,
            f"{prefix}: the loaded encoder's features differ from the authors' computation with "
            f"the file's weights by {gap:.2g} (tolerance {REFERENCE_TOLERANCE:g})",
        )


def eval_encoder_from_authors(weights: WeightsFile, encoder_name: str | None, stream: str, data: DataSpec) -> tuple[Encoder, EncoderSettings]:
    """The encoder of `stream` (or the ensemble) the protocols evaluate, and its settings read from
    the file; `encoder_name` None: the file's `default_encoder`."""
    name = encoder_name or default_encoder(weights)
    if weights.layout == "mamp":
        settings = transformer_settings_from(weights.path, weights.state, name)
        encoder = FirstFrameTranslated(load_mamp_encoder(weights.path, weights.state, settings, data), MAMP_CENTER_JOINT)
        return eval_encoder({"joint": encoder}, stream, data.layout), settings  # the authors' encoders read translated clips
    settings = stgcn_settings_from(weights, name) if weights.layout == "torchlight" else bigru_settings_from(weights, name)
    encoder = eval_encoder(encoders_from_authors(weights, settings, data, stream), stream, data.layout)
    if weights.layout == "torchlight":  # trained on data relative to the centre joint in every frame (their `data_type='relative'`)
        encoder = RelativeEncoder(encoder, data.layout.partition_center)
    return encoder, settings
