"""The README and docs/ stay true to the code: every relative link points at a file and heading that
exist, and every `halp-bench` command line shown in a shell block names a real command and real options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from halp_bench.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def shell_commands(page: Path) -> list[str]:
    """Every `halp-bench ...` (or `python -m halp_bench.cli ...`) command of the page's bash blocks,
    continuation lines joined and comments dropped; synopses such as `cmd [--opt X]` are skipped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if "[--" in line:
                continue  # a synopsis (optional parts in brackets), not a command to run
            for marker in ("halp-bench ", "halp_bench.cli "):
                if marker in line and not line.startswith("#"):
                    commands.append(line[line.index(marker) + len(marker) :])
                    break
    return commands


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading #{anchor} in {linked.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shown_commands_parse(page):
    for command in shell_commands(page):
        args = shlex.split(command)
        name, rest = args[0], args[1:]
        sub = cli.commands.get(name)
        assert sub is not None, f"{page.name}: `halp-bench {command}` names no command"
        parent = click.Context(cli, info_name="halp-bench")
        try:
            sub.make_context(name, rest, parent=parent)
        except (click.BadParameter, click.MissingParameter):
            pass  # a placeholder value such as FILE or RAW: the option itself exists
        except click.UsageError as error:  # an unknown option, a missing value, an extra argument
            pytest.fail(f"{page.name}: `halp-bench {command}`: {error.format_message()}")


def test_every_docs_page_is_indexed():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not link {page.name}"
