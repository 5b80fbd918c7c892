"""`run --launcher local|slurm`: each unit of the grid (one pretraining and its protocol cells) is
one submitit job that runs the in-process grid on that unit alone.

The protocol cells run in the pretraining's job, not as dependent jobs: they need the trained
encoder in memory (minutes of kNN / linear work after hours of pretraining, on the GPU the job
already holds), a dependent job would queue again and load the checkpoint again, and one job per
unit keeps one claim, one log and one requeue story per pretraining. A job past its time limit or
preempted is signalled `signal_delay_s` before the end; submitit then requeues it with the same
arguments (GridJob is Checkpointable) and the rerun resumes from the run directory's last
checkpoint, skipping the cells already stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit

from halp_bench.orchestration.launch.options import LaunchOptions
from halp_bench.orchestration.launch.plan import JOBS_DIR, spec_for_unit, unit_id, write_job_record
from halp_bench.orchestration.launch.status import Scheduler, unit_needs_work
from halp_bench.results.store import ensure_output_dir

LOGS_DIR = "logs"  # under <out>/jobs/: submitit's pickles and each job's stdout/stderr


class GridJob(submitit.helpers.Checkpointable):
    """One unit in one job; requeued with the same arguments after preemption or the time limit."""

    def __init__(self, spec: Any, unit: dict[str, Any]):
        self.spec, self.unit = spec, unit

    def __call__(self) -> list[dict[str, Any]]:
        from halp_bench.orchestration.grid import run_grid  # torch is imported in the job, not in the submitting process

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one task per GPU: the DDP path reads the ranks torchrun would set
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        os.environ["HALP_BENCH_JOB_LOG"] = str(env.paths.stdout).replace("%t", str(env.global_rank))
        outcomes = [dataclasses.asdict(o) for o in run_grid(self.spec, say=lambda msg: print(msg, flush=True))]
        if env.global_rank == 0:
            _note_outcomes(Path(self.spec.out), self.unit, outcomes)
        return outcomes


def _note_outcomes(out: Path, unit: dict[str, Any], outcomes: list[dict[str, Any]]) -> None:
    """Add the job's final cell outcomes to the unit's job record (for `status`)."""
    path = out / JOBS_DIR / f"{unit_id(unit)}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    record.pop("unit", None)
    write_job_record(out, unit, {**record, "outcomes": {o["protocol"]: [o["status"], o["detail"]] for o in outcomes}})


def make_executor(launcher: str, out: Path, options: LaunchOptions) -> submitit.Executor:
    """submitit's executor for `launcher` with one job's resources from `options`."""
    folder = out / JOBS_DIR / LOGS_DIR / "%j"
    tasks = options.tasks_per_job()
    if launcher == "local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=options.max_requeues)
        executor.update_parameters(timeout_min=options.timeout_min(), tasks_per_node=tasks, gpus_per_node=options.gpus, signal_delay_s=options.signal_delay_s)
        return executor
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
    resources = {"partition": options.partition, "account": options.account, "qos": options.qos, "constraint": options.constraint, "mem": options.mem}
    executor.update_parameters(
        time=options.timeout_min(),
        ntasks_per_node=tasks,
        gpus_per_node=options.gpus or None,
        cpus_per_task=options.cpus,
        job_name="halp-bench",
        signal_delay_s=options.signal_delay_s,
        array_parallelism=options.max_jobs,
        additional_parameters=options.extra_sbatch() or None,
        **{k: v for k, v in resources.items() if v},
    )
    return executor


def launch(spec: Any, units: list[dict[str, Any]], launcher: str, options: LaunchOptions, say: Callable[[str], None], wait: bool) -> list[dict[str, Any]]:
    """Submit every unit that is neither done nor queued or running; with `wait` (always for the
    local launcher, whose jobs are this process's children) wait for them and return their outcomes."""
    out = Path(spec.out)
    ensure_output_dir(out, spec.force)
    scheduler = Scheduler(launcher)
    todo = [unit for unit in units if spec.force or unit_needs_work(out, unit, scheduler)]
    if len(todo) < len(units):
        say(f"{len(units) - len(todo)} of {len(units)} jobs not submitted: their cells are done, queued or running")
    if not todo:
        return []
    executor = make_executor(launcher, out, options)
    jobs = _submit_local(executor, spec, todo, options.max_jobs, out) if launcher == "local" else _submit_slurm(executor, spec, todo, out)
    say(
        f"submitted {len(jobs)} job(s) through submitit ({launcher}): {', '.join(job.job_id for job in jobs)}; follow them with `halp-bench status --out {out}`"
    )
    if not (wait or launcher == "local"):
        return []
    return _wait(jobs, say)


def _record(out: Path, unit: dict[str, Any], job: submitit.Job, launcher: str) -> None:
    write_job_record(
        out,
        unit,
        {
            "launcher": launcher,
            "job_id": str(job.job_id),
            "log": str(job.paths.stdout),
            "err": str(job.paths.stderr),
            "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _submit_slurm(executor: submitit.Executor, spec: Any, units: list[dict[str, Any]], out: Path) -> list[submitit.Job]:
    """One job array (throttled to `max_jobs` at once by Slurm) of one task per unit."""
    with executor.batch():
        jobs = [executor.submit(GridJob(spec_for_unit(spec, unit), unit)) for unit in units]
    for unit, job in zip(units, jobs):
        _record(out, unit, job, "slurm")
    return jobs


def _submit_local(executor: submitit.Executor, spec: Any, units: list[dict[str, Any]], max_jobs: int, out: Path) -> list[submitit.Job]:
    """Local processes, at most `max_jobs` at once: a new one starts when one ends."""
    jobs: list[submitit.Job] = []
    for unit in units:
        while sum(not job.done() for job in jobs) >= max_jobs:
            time.sleep(0.5)
        job = executor.submit(GridJob(spec_for_unit(spec, unit), unit))
        _record(out, unit, job, "local")
        jobs.append(job)
    return jobs


def _wait(jobs: list[submitit.Job], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every job's cell outcomes; a job that died is one failed outcome naming its log."""
    logging.getLogger("submitit").setLevel(logging.ERROR)  # e.g. a cluster without accounting: sacct's failures are expected
    outcomes = []
    for job in jobs:
        while isinstance(job, submitit.SlurmJob) and not job.paths.result_pickle.exists() and str(job.job_id) in Scheduler("slurm").slurm_jobs():
            time.sleep(2)  # squeue, not submitit's sacct polling: sacct needs Slurm's accounting database
        try:
            outcomes += job.results()[0]  # rank 0's outcomes (every rank runs the same cells)
        except Exception as exc:  # the job's own error: say where its log is, go on with the others
            line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            say(f"job {job.job_id} failed: {line} (log: {job.paths.stderr})")
            outcomes.append(
                {"method": "*", "seed": -1, "protocol": "*", "status": "failed", "detail": f"job {job.job_id}: {line}", "metrics": {}, "user_error": False}
            )
    return outcomes
