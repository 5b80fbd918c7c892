"""The `halp-bench` command line: parse, call the library, print with rich. Nothing else here.

One module per group of commands (grid, weights, results, data); `common` holds what they share."""

from __future__ import annotations

import sys
import warnings

import click
from rich.markup import escape

from halp_bench.cli import data, grid, results, weights  # noqa: F401  (registers the commands)
from halp_bench.cli.common import cli, err_console, warn
from halp_bench.errors import HalpBenchError, HalpBenchWarning

__all__ = ["cli", "main"]


def _show_warning(message, category, filename, lineno, file=None, line=None, shown: set[str] | None = None) -> None:
    """halp-bench's own warnings (errors.HalpBenchWarning) as one yellow line each, once per
    command; any other warning as Python shows it."""
    if not issubclass(category, HalpBenchWarning):
        return _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)
    text = str(message)
    if shown is not None and text in shown:
        return None
    if shown is not None:
        shown.add(text)
    warn(text)
    return None


_PYTHON_SHOWWARNING = warnings.showwarning


def main() -> None:
    """Entry point: user errors become one red line and exit code 2 (tracebacks with --debug)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", HalpBenchWarning)
        shown: set[str] = set()
        warnings.showwarning = lambda *args, **kwargs: _show_warning(*args, **kwargs, shown=shown)
        _main()


def _main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # one line, like our own errors, with where to look
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err_console.print(f"[red]error: {escape(exc.format_message() + hint)}[/red]", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except HalpBenchError as exc:
        if debug:
            raise
        err_console.print(f"[red]error: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        sys.exit(2)
