"""Tables from a fixed results file (tests/golden/results.jsonl) against golden Markdown and LaTeX.

The results file covers: two seeds (mean ± std), a cell run twice (the later row wins), a HaLP
variant (λ=0.6), an ablation method, a best-over-evaluations row (†), a method that does not
pretrain (no cost row), transfer rows and one semi-supervised row per method.
Set HALP_BENCH_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from halp_bench.results.row import ResultRow, read_rows
from halp_bench.results.tables import TABLES, build_tables, to_latex, to_markdown, write_tables

GOLDEN = Path(__file__).parent / "golden"
RESULTS = GOLDEN / "results.jsonl"
UPDATE = os.environ.get("HALP_BENCH_UPDATE_GOLDEN") == "1"


def _matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file (HALP_BENCH_UPDATE_GOLDEN=1 rewrites it)"


@pytest.fixture(scope="module")
def tables():
    return {t.name: t for t in build_tables(read_rows(RESULTS))}


@pytest.mark.parametrize("name", TABLES)
def test_tables_match_golden_markdown_and_latex(tables, name):
    _matches_golden(f"{name}.md", to_markdown(tables[name]))
    _matches_golden(f"{name}.tex", to_latex(tables[name]))


@pytest.mark.parametrize("name", ["linear", "cost", "ablations"])
def test_tables_with_paper_match_golden(name):
    (table,) = build_tables(read_rows(RESULTS), (name,), with_paper=True)
    _matches_golden(f"paper-{name}.md", to_markdown(table))
    _matches_golden(f"paper-{name}.tex", to_latex(table))


def test_what_the_golden_files_show(tables):
    """The properties the golden files lock in, spelled out."""
    linear = to_markdown(tables["linear"])
    # mean ± std over 2 seeds; not bold: its lead over the runner-up (1 seed) has no interval
    assert "| halp                    | 42.5 ± 0.7 (n=2) |" in linear
    assert not any("**" in line for line in linear.splitlines() if line.startswith("|"))
    assert "† Best test accuracy over evaluations every 2 epochs" in linear
    # the same cell reported as its best and as its final epoch: two rows, never one number replacing the other
    assert "| cmd [eval.report=best]  |                – |             48.0† |" in linear
    assert "| cmd [eval.report=final] | 41.5 ± 0.7 (n=2) |              35.0 |" in linear
    assert "halp (λ=0.6)" in linear and "seeds 0, 1" in linear
    assert "99.0" not in to_markdown(tables["knn"])  # an earlier run of the same cell lost
    cost = to_markdown(tables["cost"])
    # ratios to each method's declared base under the same key: halp to moco, halp_hardest to halp; cmd declares none
    assert "| halp         | synthetic/xsub        | 2.27 ± 0.01 (n=2) | moco   |        1.13× |" in cost
    assert "| halp_hardest | synthetic/xsub        |              2.10 | halp   |        0.93× |" in cost
    assert "| cmd          | synthetic/xsub        | 6.01 ± 0.01 (n=2) | –      |            – |" in cost and "random" not in cost
    tex = to_latex(tables["linear"])
    assert r"42.5 $\pm$ 0.7 (n=2)" in tex and r"48.0$^\dagger$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"halp ($\lambda$=0.6)" in tex
    differences = to_markdown(tables["differences"])
    assert "| halp − moco " in differences and "+2.0 [+2.0, +2.0] (n=2)" in differences and "halp_hardest − halp" in differences


def test_numbers_keep_their_digits_in_markdown():
    """tabulate would print a column of plain "20.0" cells as "20"; the decimals must stay."""
    row = next(r for r in read_rows(RESULTS) if r.method == "random" and r.protocol == "linear")
    (table,) = build_tables([row], ("linear",))
    assert "|             20.0 |" in to_markdown(table)


def test_latex_is_plain_ascii_with_balanced_braces():
    for table in build_tables(read_rows(RESULTS), with_paper=True):
        tex = to_latex(table)
        assert tex.isascii(), table.name
        assert tex.count("{") == tex.count("}"), table.name
        assert tex.count(r"\begin{") == tex.count(r"\end{"), table.name


def test_paper_rows_are_labelled_and_missing_cells_are_dashes():
    (table,) = build_tables(read_rows(RESULTS), ("transfer",), with_paper=True)
    text = to_markdown(table)
    assert "| halp (paper)     |" in text and "54.8†" in text and "55.4†" in text
    assert "ntu120/xsub → pku2/xsub" in text
    assert "published numbers (Shah et al." in text
    assert "–" in text  # our rows have no NTU numbers, the paper's no synthetic ones


def test_no_results_gives_no_tables_but_the_paper_alone_renders():
    assert build_tables([]) == []
    names = {t.name for t in build_tables([], with_paper=True)}
    assert names == {"linear", "knn", "transfer", "finetune", "cost", "ablations"}  # the paper has no semi-supervised numbers or differences


def test_write_tables_writes_each_table_and_format(tmp_path, tables):
    written = write_tables([tables["knn"]], tmp_path / "tables", ("md", "tex"))
    assert [p.name for p, _ in written] == ["knn.md", "knn.tex"]
    assert all(p.read_text(encoding="utf-8") == text for p, text in written)


def test_table_command_with_paper(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", "table", "--results", str(RESULTS), "--out", str(tmp_path), "--with-paper"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "moco (paper)" in result.stdout and r"\begin{tabular}" in result.stdout
    assert {p.name for p in (tmp_path / "tables").iterdir()} == {f"{n}.{f}" for n in TABLES for f in ("md", "tex")}


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_tables_compile_in_a_booktabs_article(tmp_path):
    """Every golden LaTeX table (ours and --with-paper) compiles in a standard article with booktabs."""
    body = "\n".join(rf"\input{{{path}}}" for path in sorted(GOLDEN.glob("*.tex")))
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=1cm]{geometry}\n\\begin{document}\n" + body + "\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def _row(method: str, seed: int, top1: float) -> ResultRow:
    return ResultRow(
        method=method,
        dataset="d",
        split="s",
        protocol="linear",
        transfer_from=None,
        preset="cpu",
        seed=seed,
        config_id=method,
        metrics={"top1": top1},
        config={"eval": {"eval_every": 5}},
        finished=f"{seed}",
    )


def test_bold_and_differences_follow_the_paired_interval():
    """Three seeds: a lead of 2 points with little spread is real (bold, interval above 0); a lead of
    0.3 with a seed-to-seed spread of a point is not (no bold, interval across 0)."""
    from scipy import stats

    moco = [60.0, 62.0, 61.0]
    rows = [_row("moco", s, v) for s, v in enumerate(moco)]
    rows += [_row("halp", s, v + d) for s, (v, d) in enumerate(zip(moco, (2.1, 1.9, 2.0)))]
    (linear,) = build_tables(rows, ("linear",))
    assert "**63.0 ± 0.9 (n=3)**" in to_markdown(linear)
    noisy = [_row("moco", s, v) for s, v in enumerate(moco)] + [_row("halp", s, v + d) for s, (v, d) in enumerate(zip(moco, (1.3, -0.7, 0.3)))]
    linear, differences = build_tables(noisy, ("linear", "differences"))
    assert not any("**" in line for line in to_markdown(linear).splitlines() if line.startswith("|"))
    half = stats.t.ppf(0.975, 2) * 1.0 / 3**0.5  # the differences 1.3, -0.7, 0.3: mean 0.3, sd 1.0
    assert f"+0.3 [−{half - 0.3:.1f}, +{0.3 + half:.1f}] (n=3)" in to_markdown(differences)


def test_a_setting_that_differs_between_rows_names_the_rows_of_each_value():
    rows = read_rows(RESULTS)
    other = [r for r in rows if r.method == "cmd" and r.protocol == "linear"]
    for row in other:
        row.settings = {**row.settings, "encoder": "stgcn h16/256", "linear_lr": 3.0}
    (table,) = build_tables(rows, ("linear",))
    settings = next(note for note in table.notes if note.startswith("Settings:"))
    assert "encoder bigru 1x128 (" in settings and "stgcn h16/256 (cmd" in settings
    assert "linear lr 0.1 (" in settings and "3.0 (cmd" in settings


def test_the_seeds_of_one_pretraining_are_one_row_of_the_cost_table():
    rows = [r for r in read_rows(RESULTS) if r.method == "moco"]
    assert len({r.seed for r in rows}) > 1  # the golden rows hold several seeds of moco
    for row in rows:  # as stored: the seed is part of the pretraining's settings
        row.pretrain_config = {**row.pretrain_config, "seed": row.seed}
    (cost,) = build_tables(rows, ("cost",))
    shown = [(label, cells["pretrained on"]) for label, cells in cost.rows]
    assert len(shown) == len(set(shown)) and {label for label, _ in shown} == {"moco"}  # one row per pretraining data, none per seed


def test_cost_ratios_compare_with_the_base_pretrained_under_the_same_key_only():
    rows = read_rows(RESULTS)
    for row in rows:
        if row.method == "halp" and row.data == "synthetic/xview":  # another encoder: another pretraining key
            row.pretrain_config = {**row.pretrain_config, "encoder": {**row.pretrain_config["encoder"], "hidden_size": 64}}
    (cost,) = build_tables(rows, ("cost",))
    cells = {(label, cells["pretrained on"]): cells for label, cells in cost.rows}
    assert "time ×base" not in cells[("halp", "synthetic/xview")] and cells[("halp", "synthetic/xsub")]["base"] == "moco"
    assert cells[("halp", "synthetic/xsub")]["time ×base"].mean == pytest.approx(2.27 / 2.01, abs=1e-3)
    assert any("No ratio for halp" in note for note in cost.notes)
