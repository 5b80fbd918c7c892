"""Tables as Markdown (tabulate) and LaTeX (booktabs), and writing them to files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.errors import ConfigError
from halp_bench.results.stats import paired_difference
from halp_bench.results.table_model import DAGGER, MISSING, Cell, Table

FORMATS = ("md", "tex")


def _best(table: Table) -> dict[str, int]:
    """Per column, the row index of our best mean, where its lead over the runner-up is real: the
    95 % interval of their paired difference over common seeds excludes zero (results/stats.py).
    With one seed, or fewer than two of our rows, nothing is bold."""
    if not table.bold_best:
        return {}
    ours = table.rows[: len(table.rows) - table.paper_rows]
    best = {}
    for col in table.columns:
        ranked = sorted(((cells[col], i) for i, (_, cells) in enumerate(ours) if isinstance(cells.get(col), Cell)), key=lambda item: -item[0].mean)
        if len(ranked) >= 2:
            (first, index), (second, _) = ranked[0], ranked[1]
            lead = paired_difference(first.by_seed, second.by_seed)
            if lead is not None and lead.significant and lead.mean > 0:
                best[col] = index
    return best


def _texts(table: Table) -> list[list[tuple[str, bool]]]:
    """Every row as (text, bold) pairs: the label, then each column's cell; bold on the best."""
    best = _best(table)
    lines = []
    for index, (label, cells) in enumerate(table.rows):
        line = [(label, False)]
        for col in table.columns:
            cell = cells.get(col, MISSING)
            if isinstance(cell, str):
                line.append((cell, False))
            else:
                line.append((cell.text(), best.get(col) == index))
        lines.append(line)
    return lines


def _align(table: Table, column: str) -> str:
    return "left" if column in table.text_columns else "right"


def to_markdown(table: Table) -> str:
    lines = [[f"**{text}**" if bold else text for text, bold in line] for line in _texts(table)]
    frame = pd.DataFrame(lines, columns=[table.first_column, *table.columns])
    body = frame.to_markdown(index=False, colalign=["left", *(_align(table, col) for col in table.columns)], disable_numparse=True)
    return "\n\n".join([f"**{table.title}**", body, *table.notes]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "−": r"$-$",
    DAGGER: r"$^\dagger$",
    "×": r"$\times$",
    "→": r"$\rightarrow$",
    MISSING: "--",
    "λ": r"$\lambda$",
    "·": r"$\cdot$",
    "“": "``",
    "”": "''",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SYMBOLS.get(ch, _LATEX_ESCAPES.get(ch, ch)) for ch in text)


def to_latex(table: Table) -> str:
    """A `table` float with a booktabs `tabular`; needs only \\usepackage{booktabs}."""
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:halp-bench-{table.name}}}",
        rf"\begin{{tabular}}{{l{''.join(_align(table, col)[0] for col in table.columns)}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in [table.first_column, *table.columns]) + r" \\",
        r"\midrule",
    ]
    ours = len(table.rows) - table.paper_rows
    for index, line in enumerate(_texts(table)):
        if index == ours and 0 < ours:
            lines.append(r"\midrule")
        cells = [rf"\textbf{{{latex_escape(text)}}}" if bold else latex_escape(text) for text, bold in line]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize " + r" \\ ".join(latex_escape(n) for n in table.notes) + "}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


RENDERERS = {"md": to_markdown, "tex": to_latex}


def check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown or not formats:
        raise ConfigError(f"unknown format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}")


def write_tables(tables: list[Table], out_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[tuple[Path, str]]:
    """`<out_dir>/<table>.<format>` for each table and format, each written atomically; returns
    (path, text) pairs so that the caller can print what it wrote."""
    check_formats(formats)
    written = []
    for table in tables:
        for fmt in formats:
            path = Path(out_dir) / f"{table.name}.{fmt}"
            text = RENDERERS[fmt](table)
            atomic_write_bytes(path, lambda handle, text=text: handle.write(text.encode("utf-8")))
            written.append((path, text))
    return written
