"""A pretraining's run directory: its name (what the pretraining is), the data it recorded, and
starting it over when that data or `--force` says so."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from halp_bench.common import distributed
from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.loggers import WANDB_ID_FILE
from halp_bench.config import RunConfig
from halp_bench.identity import pretrain_id
from halp_bench.orchestration.stages import Stage

DATA_RECORD = "data.json"  # in a run directory: the fingerprint of the split its checkpoint was pretrained on
MONITOR_FILE = "monitor.csv"


def safe_name(text: str) -> str:
    """A file-name-safe form of a dataset or split name (a dataset may be a path): never a path."""
    stem = Path(text).name.split(".")[0] if ("/" in text or "\\" in text or "." in text) else text
    clean = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:40] or "data"
    if clean != text:
        clean += "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return clean


def run_dir_name(method_name: str, cfg: RunConfig) -> str:
    """`<method>_<dataset>_<split>_<preset>_seed<s>_<pretrain id>` of the pretraining `cfg` describes."""
    data = cfg.data
    return f"{method_name}_{safe_name(data.dataset)}_{safe_name(data.split)}_{cfg.preset}_seed{cfg.seed}_{pretrain_id(method_name, cfg)}"


def prepare_run_dir(force: bool, method_name: str, stage: Stage, run_dir: Path, retrained: set[Path], say: Callable[[str], None]) -> None:
    """Start the run directory over under --force or when its checkpoint was pretrained on other data
    (once per run: `retrained`), and record the data it pretrains on (DATA_RECORD)."""
    recorded = recorded_data(run_dir)
    other_data = recorded is not None and recorded != stage.fingerprint.hash
    if (force or other_data) and run_dir not in retrained:
        if other_data and not force:
            say(
                f"{method_name}: the checkpoint in {run_dir} was pretrained on other data (fingerprint {recorded}, now "
                f"{stage.fingerprint.hash}); pretraining again"
            )
        retrained.add(run_dir)
        for name in ("checkpoint.pt", "log.csv", MONITOR_FILE, WANDB_ID_FILE) if distributed.info().is_main else ():
            (run_dir / name).unlink(missing_ok=True)  # TensorBoard's earlier events are purged when logging starts
    if distributed.info().is_main and recorded != stage.fingerprint.hash:
        text = json.dumps(stage.fingerprint.to_dict(), indent=2).encode()
        atomic_write_bytes(run_dir / DATA_RECORD, lambda handle: handle.write(text))


def recorded_data(run_dir: Path) -> str | None:
    """The fingerprint hash of the data a run directory's pretraining used (DATA_RECORD); None
    for a new directory, or one made before fingerprints, whose checkpoint counts as matching and
    is recorded with today's data from then on."""
    try:
        return str(json.loads((run_dir / DATA_RECORD).read_text(encoding="utf-8"))["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
