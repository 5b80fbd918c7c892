"""What the runner does where a pretraining starts and a cell finishes, so that many processes can
share one store: claim the run directory (results/claims.py) or skip it while it runs elsewhere,
re-read the store once claimed, write each row as its own cell file (results/cell_files.py), note
failures in the claim (for `halp-bench status`) and release the claims at the end.

Under torchrun rank 0 alone claims and writes; the other ranks follow its decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halp_bench.common import distributed
from halp_bench.orchestration.launch.plan import unit_of
from halp_bench.results.cell_files import CELL_FILE_FIELD, store_cell_row
from halp_bench.results.claims import Claim, Holder, try_claim
from halp_bench.results.store import RESULTS_FILE, append_result


class CellGuard:
    """The claims one grid process holds on its store `spec.out`."""

    def __init__(self, spec: Any):
        self.spec, self.out = spec, Path(spec.out)
        self.claims: dict[Path, Claim] = {}
        self.busy: dict[Path, str] = {}  # run dir -> why it is skipped here

    def take(self, run_dir: Path, method: str, seed: int, epochs: int) -> str | None:
        """Claim `run_dir` for this process; None when claimed, else who is running it."""
        if run_dir in self.claims:
            return None
        if run_dir not in self.busy:
            reason = None
            if distributed.info().is_main:
                got = try_claim(self.out, run_dir.name, unit_of(self.spec, method, seed), epochs)
                if isinstance(got, Holder):
                    reason = f"running elsewhere ({got.describe()})"
                else:
                    self.claims[run_dir] = got
            if distributed.active():
                reason = distributed.gather_objects(reason)[0]  # every rank follows rank 0
            if reason is None:
                return None
            self.busy[run_dir] = reason
        return self.busy[run_dir]

    def write_row(self, row: Any) -> None:
        """Store a finished cell's row (a ResultRow) as its cell file, and append it to results.jsonl
        as a log for people and tools that read that file (rank 0 alone)."""
        if distributed.info().is_main:
            path = store_cell_row(self.out, (*row.key, row.data_id), row.to_dict())  # a result on other data is another row
            append_result(self.out / RESULTS_FILE, {**row.to_dict(), CELL_FILE_FIELD: path.name})

    def failed(self, run_dir: Path, protocol: str, detail: str) -> None:
        if run_dir in self.claims:
            self.claims[run_dir].note_failure(protocol, detail)

    def release(self, run_dirs: Any = None) -> None:
        """Release the claims on `run_dirs` (default: all held)."""
        for run_dir in list(self.claims if run_dirs is None else run_dirs):
            claim = self.claims.pop(run_dir, None)
            if claim is not None:
                claim.release()
