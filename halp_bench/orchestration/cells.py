"""The benchmark's unit, a cell (one method, data split, protocol, preset, seed and settings), and
the one pipeline every cell goes through, whoever schedules it (`run`, `eval --checkpoint`, a
cluster launcher): done-check, train or reuse the encoder, protocol, result row, append, outcome.

`run_cell` is a plain function of a `Cell`, what it is computed with (`CellWork`) and where it is
stored (`CellStore`); it neither loops nor decides which cells exist, so a launcher can claim one
cell and call it. Pretraining, whatever happens, returns one type (`Pretrained`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from halp_bench.common import distributed
from halp_bench.common.loggers import RunLogger
from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.declarations import row_table_fields
from halp_bench.engine.compile import compiled_encoders
from halp_bench.engine.device import seed_everything
from halp_bench.engine.state import PretrainResult
from halp_bench.errors import HalpBenchError
from halp_bench.protocols.base import ProtocolContext
from halp_bench.registry import PROTOCOLS
from halp_bench.results.row import CELL_FIELDS, ResultRow, data_id, read_rows
from halp_bench.results.store import append_result


@dataclass(frozen=True)
class Cell:
    """One number of the benchmark: its grid coordinates and its settings' identity (config_id),
    and the pretraining it needs (`run_dir`; None for weights read from a file)."""

    method: str
    dataset: str
    split: str
    protocol: str
    preset: str
    seed: int
    transfer_from: str | None
    config_id: str
    run_dir: Path | None = None

    @property
    def key(self) -> tuple:
        """The key of its stored row (`ResultRow.key`): a stored row with this key makes it done."""
        return tuple(getattr(self, name) for name in CELL_FIELDS) + (self.config_id,)

    def describe(self) -> str:
        return f"{self.method} {self.protocol} seed {self.seed} on {self.dataset}/{self.split}"


@dataclass
class Pretrained:
    """What getting a cell's encoder gave: the pretrained method and its result, an encoder read
    from a file, or why it failed (`failure`; `user_error` for a reason the user can fix)."""

    method: Any = None  # methods.base.Method
    result: PretrainResult = field(default_factory=lambda: PretrainResult(epochs=0))
    encoder: Any = None  # an encoder given directly (eval --checkpoint)
    failure: str = ""
    user_error: bool = False

    @property
    def ok(self) -> bool:
        return not self.failure

    def encoder_for_eval(self) -> Any:
        return self.encoder if self.encoder is not None else self.method.encoder_for_eval()


@dataclass
class CellOutcome:
    method: str
    seed: int
    protocol: str
    status: str  # "ran", "skipped" or "failed"
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    user_error: bool = False  # failed for a reason the user can fix (e.g. a NaN loss): CLI exit code 2


@dataclass
class CellWork:
    """What one cell is computed with. `obtain` trains or reuses the encoder (called only when the
    cell is not done); `row_fields` are the row's fields that only the caller knows (pretraining
    summary and signature, run directory, weights, versions, device); the row's comparison key is
    computed from what it stores (declarations.row_table_fields)."""

    cfg: RunConfig  # the evaluation configuration
    train: SkeletonSubset
    test: SkeletonSubset
    fingerprint: dict[str, dict]  # ResultRow.data_fingerprint
    obtain: Callable[[], Pretrained]
    device: Any
    logger: Callable[[], RunLogger]  # the training log the cell's own log is a child of (opened on first call)
    row_fields: Callable[[Pretrained], dict[str, Any]]
    detail: str = ""  # the outcome's detail when it ran
    compile_encoders: bool = False  # `--compile`: the protocol trains a compiled encoder (engine/compile.py)
    pretrain_epochs: int = 0  # what a claim on the cell's run directory announces (halp-bench status)


@dataclass
class CellStore:
    """Where cells are recorded: the results file, the rows already in it and whether to redo them."""

    results_path: Path
    done: dict[tuple, ResultRow]
    force: bool = False
    show_progress: bool = True
    # claims and one file per cell when many processes share the store (orchestration/launch/guard.py's CellGuard); None: this process alone
    guard: Any = None

    def reload(self) -> None:
        """Read the rows again: cells another process finished since the last read."""
        self.done = {row.key: row for row in read_rows(self.results_path)}

    def claim(self, cell: Cell, work: CellWork, say: Callable[[str], None]) -> str | None:
        """Claim the cell's run directory for this process: None when it may run here, else why
        it is skipped (running elsewhere, or finished by another process before the claim)."""
        if self.guard is None or cell.run_dir is None:
            return None
        fresh = cell.run_dir not in self.guard.claims
        busy = self.guard.take(cell.run_dir, cell.method, cell.seed, work.pretrain_epochs)
        if busy is None and fresh and not self.force:
            self.reload()
            if is_done(self.done.get(cell.key), work.fingerprint, say, cell.describe()):
                busy = "already in the results store"
        return busy

    def failed(self, cell: Cell, detail: str) -> None:
        if self.guard is not None and cell.run_dir is not None:
            self.guard.failed(cell.run_dir, cell.protocol, detail)

    def write(self, row: ResultRow) -> None:
        """Store a finished cell's row: its own cell file under a guard, else an append (rank 0 alone)."""
        if self.guard is not None:
            self.guard.write_row(row)
        elif distributed.info().is_main:
            append_result(self.results_path, row.to_dict())


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_done(stored: ResultRow | None, fingerprint: dict[str, dict], say: Callable[[str], None], cell: str) -> bool:
    """Whether the stored row of a cell (None: none) makes it done: it must come from the same data
    (a row from before fingerprints counts as the same); one computed on other data is run again."""
    if stored is None:
        return False
    if stored.data_id is None or stored.data_id == data_id(fingerprint):
        return True
    say(f"{cell}: the stored result was computed on other data (fingerprint {stored.data_id}, now {data_id(fingerprint)}); running the cell again")
    return False


def run_cell(cell: Cell, work: CellWork, store: CellStore, say: Callable[[str], None] = print) -> CellOutcome:
    """Done-check, encoder (trained or reused), protocol, row, append: one cell, one outcome. A
    failing pretraining or protocol is an outcome ("failed"), not an exception, so one broken cell
    does not cost the others; a HalpBenchError (bad input) still stops the run."""
    if not store.force and is_done(store.done.get(cell.key), work.fingerprint, say, cell.describe()):
        return CellOutcome(cell.method, cell.seed, cell.protocol, "skipped", "already in the results store")
    busy = store.claim(cell, work, say)
    if busy:
        return CellOutcome(cell.method, cell.seed, cell.protocol, "skipped", busy)
    source = work.obtain()
    if not source.ok:
        store.failed(cell, source.failure)
        return CellOutcome(cell.method, cell.seed, cell.protocol, "failed", source.failure, user_error=source.user_error)
    cell_logger = work.logger().child(f"{cell.protocol}-{cell.config_id}", work.cfg.to_dict())
    cell_logger.start(0)  # a cell run again replaces its earlier curves
    ctx = ProtocolContext(
        cfg=work.cfg,
        device=work.device,
        show_progress=store.show_progress,
        say=say,
        logger=cell_logger,
        compiled=partial(compiled_encoders, device=work.device, enabled=work.compile_encoders),
    )
    started, t0 = now(), time.perf_counter()
    try:
        seed_everything(cell.seed)
        metrics = PROTOCOLS.get(cell.protocol)(source.encoder_for_eval(), work.train, work.test, ctx)
    except HalpBenchError:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        store.failed(cell, reason)
        return CellOutcome(cell.method, cell.seed, cell.protocol, "failed", reason)
    finally:
        cell_logger.close()
    row = ResultRow(
        method=cell.method,
        dataset=cell.dataset,
        split=cell.split,
        protocol=cell.protocol,
        transfer_from=cell.transfer_from,
        preset=cell.preset,
        seed=cell.seed,
        config_id=cell.config_id,
        metrics=metrics,
        report=work.cfg.eval.report,
        protocol_seconds=round(time.perf_counter() - t0, 3),
        config=work.cfg.to_dict(),
        started=started,
        finished=now(),
        data_fingerprint=work.fingerprint,
        **work.row_fields(source),
    )
    row = dataclasses.replace(row, **row_table_fields(row.to_dict()))  # what tables read instead of the plugins
    store.write(row)
    return CellOutcome(cell.method, cell.seed, cell.protocol, "ran", work.detail, metrics=metrics)
