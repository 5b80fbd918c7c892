"""Training logs for TensorBoard and Weights & Biases behind one small interface, `RunLogger`, that
the engine and the protocols write scalars to without knowing which backends a run chose.

`runs/<run>/log.csv` is written by the engine in every case (engine/pretrain.py); the backends here
add to it. One pretraining is one run named after its run directory (`run_dirs.run_dir_name`, the
name result rows point to through `run_dir`); each protocol cell evaluated on it is a run of its own
named `<run>/<protocol>-<cell config id>` (`RunLogger.child`):

- TensorBoard (`torch.utils.tensorboard`, extra `tensorboard`): event files in `runs/<run>/` and
  `runs/<run>/<protocol>-<id>/`, so `tensorboard --logdir <out>/runs` lists runs by those names.
  `start(step)` opens the writer with `purge_step=step`: values an interrupted process logged at
  `step` or later are dropped by TensorBoard's readers, so a resumed pretraining shows each epoch
  once, and a cell run again replaces its earlier curves.
- Weights & Biases (extra `wandb`): one W&B run per pretraining (grouped with its protocol cells'
  runs), in `runs/<run>/wandb/` unless WANDB_DIR says otherwise; WANDB_MODE (e.g. `offline`, which
  needs no network), WANDB_PROJECT (default `halp-bench`), WANDB_ENTITY, WANDB_API_KEY,
  WANDB_CONSOLE and WANDB_SILENT are W&B's own. The pretraining run's id is kept in
  `runs/<run>/wandb_id.txt`, so a resumed pretraining continues the same W&B run; W&B ignores steps
  below its current one, so epochs logged again after a resume (equal values: resume is exact)
  keep their first record.

Steps are epochs (1-based); a protocol's final accuracy is logged at its last epoch (kNN, which has
no epochs: at step 0). Under torchrun only rank 0 opens loggers; the others get the silent base class.
"""

from __future__ import annotations

import importlib
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from halp_bench.errors import ConfigError

LOGGERS = ("csv", "tensorboard", "wandb")
EXTRAS = {"tensorboard": "tensorboard", "wandb": "wandb"}  # logger -> the optional extra that installs it
MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb"}
WANDB_ID_FILE = "wandb_id.txt"
WANDB_PROJECT = "halp-bench"


class RunLogger:
    """Scalars of one run, by step. This base class logs nothing: a run with only the CSV log, and
    every rank but 0 under torchrun."""

    def start(self, step: int) -> None:
        """Steps from `step` on are about to be written: drop what an earlier process logged there
        (where the backend can)."""

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Record `scalars` (tag -> value) at `step`."""

    def child(self, name: str, config: dict[str, Any] | None = None) -> RunLogger:
        """A run of its own, `<this run>/<name>`, e.g. for one protocol cell."""
        return RunLogger()

    def close(self) -> None:
        """Write everything out; the logger is not used afterwards."""


def parse_loggers(text: str) -> tuple[str, ...]:
    """`--logger csv,tensorboard` -> ("csv", "tensorboard"), checked: an unknown name or a backend
    whose package is missing is a ConfigError naming the extra to install."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in LOGGERS]
    if unknown or not names:
        raise ConfigError(f"--logger '{text}': choose one or more of {', '.join(LOGGERS)} (comma-separated)")
    for name in names:
        if name in MODULES:
            try:
                importlib.import_module(MODULES[name])
            except ImportError:
                raise ConfigError(f"--logger {name} needs the {EXTRAS[name]} package: pip install 'halp-bench[{EXTRAS[name]}]'") from None
    return names


def open_logger(kinds: tuple[str, ...], run_dir: Path, config: dict[str, Any] | None = None) -> RunLogger:
    """The logger of the pretraining in `run_dir` for the backends in `kinds` (the CSV log is the
    engine's own). Backends open on first use, so a reused finished pretraining creates nothing."""
    backends: list[RunLogger] = []
    if "tensorboard" in kinds:
        backends.append(TensorBoardLogger(run_dir))
    if "wandb" in kinds:
        backends.append(WandbLogger(run_dir, run_dir.name, run_dir.name, config, run_dir / WANDB_ID_FILE))
    return backends[0] if len(backends) == 1 else FanOut(backends) if backends else RunLogger()


class FanOut(RunLogger):
    """Several backends as one."""

    def __init__(self, backends: list[RunLogger]):
        self.backends = backends

    def start(self, step: int) -> None:
        for backend in self.backends:
            backend.start(step)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        for backend in self.backends:
            backend.log(scalars, step)

    def child(self, name: str, config: dict[str, Any] | None = None) -> RunLogger:
        return FanOut([backend.child(name, config) for backend in self.backends])

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def safe_run_name(name: str) -> str:
    """A name usable as one folder name."""
    return re.sub(r"[^A-Za-z0-9._%-]+", "_", name).strip("._") or "run"


class TensorBoardLogger(RunLogger):
    """Event files in `log_dir` (one TensorBoard run)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._writer: Any = None

    def _open(self, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)

    def start(self, step: int) -> None:
        self._open(step)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        if self._writer is None:
            self._open(None)
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, float(value), step)
        self._writer.flush()  # once per epoch: what a killed run logged is on disk

    def child(self, name: str, config: dict[str, Any] | None = None) -> RunLogger:
        return TensorBoardLogger(self.log_dir / safe_run_name(name))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbLogger(RunLogger):
    """One W&B run, started on first use. `id_file`: where the run's id is kept so that a later
    process continues the same run (None: a new run each time)."""

    def __init__(self, run_dir: Path, name: str, group: str, config: dict[str, Any] | None, id_file: Path | None):
        self.run_dir, self.name, self.group, self.config, self.id_file = run_dir, name, group, config, id_file
        self._run: Any = None

    def _open(self) -> None:
        import wandb

        run_id = self.id_file.read_text().strip() if self.id_file is not None and self.id_file.exists() else uuid.uuid4().hex[:12]
        if self.id_file is not None and not self.id_file.exists():
            self.id_file.parent.mkdir(parents=True, exist_ok=True)
            self.id_file.write_text(run_id + "\n")
        options: dict[str, Any] = {"name": self.name, "group": self.group, "id": run_id, "resume": "allow", "config": self.config, "reinit": "create_new"}
        if not os.environ.get("WANDB_PROJECT"):
            options["project"] = WANDB_PROJECT
        if not os.environ.get("WANDB_DIR"):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            options["dir"] = str(self.run_dir)
        settings = {}
        if not os.environ.get("WANDB_CONSOLE"):
            settings["console"] = "off"  # our progress bars stay on the terminal, not in W&B's capture
        if not os.environ.get("WANDB_SILENT"):
            settings["quiet"] = True
        try:
            self._run = wandb.init(**options, settings=wandb.Settings(**settings))
        except Exception as exc:  # no login, no network: one line, not W&B's traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"--logger wandb: W&B could not start run '{self.name}' ({first}); log in with `wandb login` "
                "or WANDB_API_KEY, or set WANDB_MODE=offline to log without a network"
            ) from None

    def start(self, step: int) -> None:
        if self._run is None:
            self._open()

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        if self._run is None:
            self._open()
        self._run.log({tag: float(value) for tag, value in scalars.items()}, step=step)

    def child(self, name: str, config: dict[str, Any] | None = None) -> RunLogger:
        return WandbLogger(self.run_dir, f"{self.name}/{name}", self.group, config, None)

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None
