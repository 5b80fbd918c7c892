"""What a launcher asks of the scheduler for each job, and where its defaults come from.

Each value is taken from, first to last: the command line, an environment variable
`HALP_BENCH_SLURM_<NAME>` (e.g. HALP_BENCH_SLURM_PARTITION), the `[slurm]` table of the user's
config file (`$HALP_BENCH_CONFIG`, default `~/.config/halp-bench/launcher.toml`), the built-in
default below."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from halp_bench.errors import ConfigError

CONFIG_ENV = "HALP_BENCH_CONFIG"
DEFAULT_CONFIG = Path("~/.config/halp-bench/launcher.toml")
ENV_PREFIX = "HALP_BENCH_SLURM_"


@dataclass
class LaunchOptions:
    """One job's resources and the launcher's limits."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time: str = "24:00:00"  # per job: minutes, or [D-]HH:MM[:SS], as sbatch --time takes it
    gpus: int = 0  # per job; >1 runs the DDP path, one task per GPU
    tasks: int = 0  # processes per job (DDP ranks); 0: one per GPU, at least one
    cpus: int = 4  # per task
    mem: str | None = None  # per job, e.g. 64G
    max_jobs: int = 64  # at once: Slurm's array throttle, or local processes at once
    signal_delay_s: int = 120  # the job is signalled this long before its time limit: it checkpoints and is requeued
    max_requeues: int = 10  # requeues after reaching the time limit (preemptions do not count)
    sbatch: list[str] = field(default_factory=list)  # extra sbatch lines, as KEY=VALUE (e.g. mail-type=END)

    def tasks_per_job(self) -> int:
        return self.tasks or max(self.gpus, 1)

    def timeout_min(self) -> int:
        return time_minutes(self.time)

    def extra_sbatch(self) -> dict[str, str]:
        """`sbatch` as submitit's additional parameters (`--mail-type=END` -> {"mail_type": "END"})."""
        extra = {}
        for line in self.sbatch:
            key, sep, value = line.removeprefix("--").partition("=")
            if not key.strip():
                raise ConfigError(f"--sbatch '{line}': expected KEY=VALUE, e.g. mail-type=END")
            extra[key.strip().replace("-", "_")] = value.strip() if sep else ""
        return extra


def time_minutes(text: str) -> int:
    """sbatch's --time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in whole minutes (at least 1)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(text).strip())
    if not match:
        raise ConfigError(f"time '{text}': expected minutes or [D-]HH:MM[:SS], e.g. 90 or 1-12:00:00")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-H[:M[:S]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # M:S
        seconds = a * 60 + b
    else:  # M
        seconds = a * 60
    return max(1, -(-seconds // 60))


def config_file() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def _file_defaults(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("slurm", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [slurm] must be a table of settings")
    return table


def resolve_options(given: dict[str, Any]) -> LaunchOptions:
    """The options of one launch: `given` (the command line's, None = not given) over the
    environment, the config file and the defaults. An unknown key or a bad value is one ConfigError."""
    path = config_file()
    from_file = _file_defaults(path)
    known = {f.name: f for f in fields(LaunchOptions)}
    unknown = sorted(set(from_file) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown [slurm] setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        env = os.environ.get(ENV_PREFIX + name.upper())
        value = given.get(name)
        source = "the command line"
        if value in (None, (), []):
            value, source = (env, ENV_PREFIX + name.upper()) if env is not None else (from_file.get(name), str(path))
        if value in (None, (), []):
            continue
        values[name] = _typed(name, spec.type, value, source)
    options = LaunchOptions(**values)
    options.timeout_min()  # a bad --time fails here, before anything is submitted
    for name in ("gpus", "tasks", "cpus", "max_jobs", "signal_delay_s", "max_requeues"):
        if getattr(options, name) < (0 if name in ("gpus", "tasks", "max_requeues", "signal_delay_s") else 1):
            raise ConfigError(f"{name}={getattr(options, name)}: too small")
    return options


def _typed(name: str, kind: Any, value: Any, source: str) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("list"):
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else [v for v in str(value).split(";") if v.strip()]
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} '{value}' (from {source}): expected {kind}") from None
