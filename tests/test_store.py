"""The results store: concurrent writers lose and tear nothing; a torn last line is skipped."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import pytest

from halp_bench.errors import OutputError
from halp_bench.results.store import append_result, ensure_output_dir, load_results

ROWS = 150
# Each writer waits for the start file so that both append at the same time; rows are large
# (~20 kB, more than one page and than PIPE_BUF) so that interleaved writes would show.
WRITER = """
import os, sys, time
from pathlib import Path
from halp_bench.results.store import append_result
store, start, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while not start.exists():
    time.sleep(0.001)
for i in range({rows}):
    append_result(store, {{"writer": name, "i": i, "payload": name * 20000}})
"""


def test_two_processes_appending_concurrently_lose_and_tear_no_row(tmp_path):
    store, start = tmp_path / "results.jsonl", tmp_path / "start"
    code = WRITER.format(rows=ROWS)
    writers = [subprocess.Popen([sys.executable, "-c", code, str(store), str(start), name]) for name in "ab"]
    time.sleep(0.5)  # both started and waiting
    start.touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn line would warn: fail instead
        rows = load_results(store)
    assert len(rows) == 2 * ROWS
    assert {(r["writer"], r["i"]) for r in rows} == {(w, i) for w in "ab" for i in range(ROWS)}
    assert all(r["payload"] == r["writer"] * 20000 for r in rows)
    order = [r["writer"] for r in rows]
    assert order != sorted(order), "the writers did not overlap; the test proves nothing"


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_row_starts_fresh(tmp_path):
    store = tmp_path / "results.jsonl"
    append_result(store, {"i": 0})
    with open(store, "ab") as handle:  # a power cut in the middle of a row
        handle.write(b'{"i": 1, "metr')
    with pytest.warns(UserWarning, match=r"results.jsonl line 2: not a complete JSON row \(torn write\?\); skipped"):
        assert load_results(store) == [{"i": 0}]
    append_result(store, {"i": 2})
    with pytest.warns(UserWarning, match="line 2"):
        assert load_results(store) == [{"i": 0}, {"i": 2}]


def test_an_output_directory_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OutputError, match=r"file: the output directory \(--out\) is a file"):
        ensure_output_dir(tmp_path / "file")
    with pytest.raises(OutputError, match=r"file/out: cannot write the output directory \(--out\): Not a directory"):
        ensure_output_dir(tmp_path / "file" / "out")
    with pytest.raises(OutputError, match="results.jsonl: cannot append a result"):
        append_result(tmp_path / "file" / "results.jsonl", {"i": 0})
    ensure_output_dir(tmp_path / "new" / "out")
    assert (tmp_path / "new" / "out").is_dir() and not list((tmp_path / "new" / "out").iterdir())


def test_a_foreign_non_empty_output_directory_is_refused_unless_forced(tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError, match="not empty and holds no halp-bench results"):
        ensure_output_dir(tmp_path)
    ensure_output_dir(tmp_path, force=True)
    (tmp_path / "results.jsonl").write_text("")
    ensure_output_dir(tmp_path)  # an earlier output is fine


def test_under_torchrun_only_rank_0_checks_the_output_directory(tmp_path, monkeypatch):
    """Another rank would find rank 0's write probe in a fresh directory and refuse it."""
    from halp_bench.errors import ConfigError
    from halp_bench.orchestration.grid import RunSpec, run_grid

    (tmp_path / ".write-test.abc123").write_text("x")  # rank 0's probe, caught in the act
    spec = RunSpec(methods=["no-such-method"], out=tmp_path, show_progress=False)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="no-such-method"):  # past the directory check
        run_grid(spec, say=lambda _: None)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="no-such-method"):  # another run's probe is no foreign file either
        run_grid(spec, say=lambda _: None)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        run_grid(spec, say=lambda _: None)


def test_atomic_files_are_readable_by_others(tmp_path):
    """mkstemp's 0600 would keep results, tables and checkpoints from a shared group."""
    from halp_bench.common.atomic import atomic_write_bytes

    atomic_write_bytes(tmp_path / "table.md", lambda handle: handle.write(b"x"))
    assert (tmp_path / "table.md").stat().st_mode & 0o777 == 0o644
