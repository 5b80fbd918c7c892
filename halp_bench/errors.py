"""Typed errors: the CLI turns every HalpBenchError into one red line and exit code 2.

Each error names the culprit (a file, a line, a key or an option) and what was expected, so users
never have to read a traceback from deep inside numpy or torch to learn what went wrong.
"""

from __future__ import annotations

from pathlib import Path


class HalpBenchError(Exception):
    """Base of every error a user can cause and fix."""


class ConfigError(HalpBenchError):
    """A bad option, preset, `--set` key or value."""


class UnknownNameError(ConfigError):
    """A name that no registry knows; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        choices = ", ".join(sorted(known)) or "(none registered)"
        super().__init__(f"unknown {kind} '{name}'; choose one of: {choices}")


class DataError(HalpBenchError):
    """A data file that is missing, malformed or inconsistent."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path, self.line = str(path), line
        where = f"{self.path} line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class CheckpointError(HalpBenchError):
    """A checkpoint that is corrupt, unsafe or incompatible with the run that wants it."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class TrainingError(HalpBenchError):
    """Training cannot continue (e.g. the loss became NaN/Inf)."""


class OutputError(HalpBenchError):
    """An output file or directory that cannot be written (not a directory, read-only, disk full)."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class HalpBenchWarning(UserWarning):
    """Something left out or doubtful that the user should know of (e.g. a results line that is
    not a row); the CLI prints each as one yellow line, once."""
