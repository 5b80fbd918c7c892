"""Which rows a table compares: a method with its declared base (`compared_to`), only where both
were measured under one comparison key (identity.comparison_key: same data and fingerprint, split,
protocol and its settings, encoder, views, schedule, preset, precision), over the seeds both have.

A base measured only under another key is not paired: the table says so in a note instead, so a
plugin on a transformer is never "compared" with moco on the BiGRU.
"""

from __future__ import annotations

from halp_bench.results.stats import CONFIDENCE, paired_difference
from halp_bench.results.table_model import Cell, DifferenceCell, Table


def same_key_bases(label: str, keys: tuple[str, ...], base: str | None, candidates: dict[str, tuple[str, tuple[str, ...]]]) -> list[str]:
    """The labels among `candidates` ({label: (method, keys)}) of method `base` whose keys are `keys`:
    the row labelled by the base's bare name alone when it is one of them (so an ablation is paired
    with its base at the base's defaults, not with the base's own variants), else all of them."""
    if not base:
        return []
    matches = [other for other, (method, other_keys) in candidates.items() if method == base and other != label and other_keys == keys]
    return [base] if base in matches else matches  # the base's plain row, not its ablation variants, where there is one


def differences_table(accuracy: dict[str, Table]) -> Table:
    """Each row against the rows of its base under the same key, in every column of the given
    accuracy tables ({protocol: table}) where both have numbers; a note for each row whose base
    is in a table only under other keys."""
    rows: dict[str, dict[str, DifferenceCell]] = {}
    ranks: dict[str, tuple] = {}
    columns: list[str] = []
    unpaired: dict[str, set[str]] = {}
    for protocol, table in accuracy.items():
        labelled = dict(table.rows)
        for label, cells in table.rows:
            base = table.bases.get(label)
            if not base or not any(method == base for method in table.methods.values()):
                continue
            paired = False  # whether some column has a base row of this row's key
            for col, cell in cells.items():
                if not isinstance(cell, Cell):
                    continue
                candidates = {other: (table.methods[other], labelled[other][col].keys) for other in labelled if isinstance(labelled[other].get(col), Cell)}
                for base_label in same_key_bases(label, cell.keys, base, candidates):
                    paired = True  # same key: paired where the seeds overlap
                    difference = paired_difference(cell.by_seed, labelled[base_label][col].by_seed)
                    if difference is None:
                        continue
                    column = f"{protocol} {col}"
                    columns += [column] if column not in columns else []
                    name = f"{label} − {base_label}"
                    rows.setdefault(name, {})[column] = DifferenceCell(difference)
                    ranks[name] = table.ranks.get(label, ())
            if not paired:
                unpaired.setdefault(label, set()).add(protocol)
    ordered = sorted(rows, key=lambda name: (ranks[name], name))
    notes = (
        [
            f"Top-1 points, mean over the seeds both methods ran with, and the {CONFIDENCE:.0%} Student-t confidence interval "
            "of the paired difference in brackets (from 2 seeds on). An interval that contains 0 says the difference is "
            "within seed noise. Only rows of one comparison key are paired: same data, protocol settings, encoder, "
            "views, schedule, preset and precision; only the method differs."
        ]
        if rows
        else []
    )
    for label, protocols in unpaired.items():
        base = next(table.bases[label] for table in accuracy.values() if label in table.bases)
        notes.append(
            f"Not paired: {label} ({', '.join(sorted(protocols))}) is compared to {base}, which was measured only "
            "under other settings (another comparison key: encoder, data, protocol settings, views, schedule or preset)."
        )
    return Table(
        "differences",
        f"Paired differences against each method's base, top-1 (points, {CONFIDENCE:.0%} CI)",
        columns,
        [(name, rows[name]) for name in ordered],
        notes=notes if rows or unpaired else [],
        bold_best=False,
        first_column="comparison",
        ranks=ranks,
    )


def cost_base(label: str, base: str | None, key: str, candidates: dict[str, tuple[str, str]]) -> str | None:
    """The label of the row a cost ratio is taken to: a row of method `base` pretrained under the
    same pretraining key (candidates: {label: (method, pretraining key)}); its plain-named row
    first when several qualify (`same_key_bases`); None when none does."""
    matches = same_key_bases(label, (key,), base, {other: (method, (other_key,)) for other, (method, other_key) in candidates.items()})
    return matches[0] if matches else None
