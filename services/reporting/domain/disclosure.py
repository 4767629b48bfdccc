"""Disclosure control: no published count between 1 and threshold-1, nor one derivable from others.

Primary suppression hides every count from 1 to threshold-1 (zero is shown: it names no
one). Secondary suppression then looks at each additive relation the output publishes,
`sum(members) = margin` (the categories of a breakdown and their total; the months of a
period and the period's figure). Where exactly one term of a relation is hidden, it could
be worked out by subtraction, so the smallest other non-zero member is hidden too (the
margin if no member is left). This repeats until no relation has a single hidden term.

That rule looks at one relation at a time, and two or more together can still give a hidden
count back: where the hidden cells of a months-by-categories table join two blocks by one
cell, adding the block's rows and subtracting its columns leaves that cell alone. So an
audit then solves all the relations at once, as a reader could (`derivable`), and while it
finds a hidden count given back exactly, the smallest shown non-zero term of a relation
holding that count is hidden too, and the rule runs again.

Suppression holds within one output, not across two: a site's board subtracted from its
organisation's, or one range from an overlapping one, can give back a hidden count. Rounding
every published count to a base (5, as many official statistics do) bounds what such a
difference can tell: each count is within half a base of the truth, so a difference of two
is within a base of it, and a small hidden count fits several values.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

Key = Hashable


@dataclass(frozen=True)
class Relation:
    """Published cells that add up: sum(members) == margin."""

    members: tuple[Key, ...]
    margin: Key


def primary(cells: Mapping[Key, int], threshold: int) -> set[Key]:
    """Counts too small to publish."""
    return {k for k, n in cells.items() if 0 < n < threshold}


def suppress(cells: Mapping[Key, int], relations: Sequence[Relation], threshold: int) -> set[Key]:
    """Every cell to hide: primary suppression, then secondary until no hidden count can be
    worked out, one relation at a time or all together."""
    hidden = primary(cells, threshold)
    while True:
        _close(cells, relations, hidden)
        covers = (_cover(cells, relations, hidden, k) for k in sorted(derivable(relations, hidden), key=str))
        extra = next((c for c in covers if c is not None), None)
        if extra is None:
            return hidden
        hidden.add(extra)


def _close(cells: Mapping[Key, int], relations: Sequence[Relation], hidden: set[Key]) -> None:
    """Hide terms until no relation has exactly one hidden term."""
    changed = True
    while changed:
        changed = False
        for relation in relations:
            extra = _protect(cells, relation, hidden)
            if extra is not None:
                hidden.add(extra)
                changed = True


def _protect(cells: Mapping[Key, int], relation: Relation, hidden: set[Key]) -> Key | None:
    terms = (*relation.members, relation.margin)
    if sum(1 for k in terms if k in hidden and cells.get(k, 0)) != 1:
        return None
    shown = sorted((cells.get(k, 0), str(k), k) for k in relation.members
                   if k not in hidden and cells.get(k, 0) > 0)
    if shown:
        return shown[0][2]
    if relation.margin not in hidden and cells.get(relation.margin, 0) > 0:
        return relation.margin
    return None


def _cover(cells: Mapping[Key, int], relations: Sequence[Relation], hidden: set[Key], cell: Key) -> Key | None:
    """The smallest shown non-zero term of a relation holding `cell`, which puts another
    unknown in that sum. Where every such relation is hidden or zero, the search moves out
    to the relations holding their hidden terms, and so on: the derivation runs through them."""
    reached, frontier = {cell}, {cell}
    while frontier:
        near = [r for r in relations if frontier & {*r.members, r.margin}]
        shown = sorted((cells.get(k, 0), str(k), k) for r in near for k in (*r.members, r.margin)
                       if k not in hidden and cells.get(k, 0) > 0)
        if shown:
            return shown[0][2]
        frontier = {k for r in near for k in (*r.members, r.margin) if k in hidden} - reached
        reached |= frontier
    return None


def derivable(relations: Iterable[Relation], hidden: set[Key]) -> set[Key]:
    """Hidden cells whose exact value the published relations give back.

    With the shown terms known, each relation holding a hidden cell is a linear equation in
    the hidden cells. A reader can isolate a cell exactly when its unit vector lies in the
    span of those equations, which is when the reduced row echelon form has it as a row of
    its own. Exact fractions keep the answer exact. Non-negativity can narrow a hidden count
    further; this audit asks only whether the value itself is given back.
    """
    pivots: dict[Key, dict[Key, Fraction]] = {}
    for equation in _equations(relations, hidden):
        row = equation
        for p in [p for p in row if p in pivots]:
            row = _minus(row, row[p], pivots[p])
        if not row:
            continue
        pivot = next(iter(row))
        row = {k: v / row[pivot] for k, v in row.items()}
        for q, other in pivots.items():
            if pivot in other:
                pivots[q] = _minus(other, other[pivot], row)
        pivots[pivot] = row
    return {p for p, row in pivots.items() if len(row) == 1}


def _equations(relations: Iterable[Relation], hidden: set[Key]) -> list[dict[Key, Fraction]]:
    found = []
    for relation in relations:
        row: dict[Key, Fraction] = {}
        for k, sign in [(m, 1) for m in relation.members] + [(relation.margin, -1)]:
            if k in hidden:
                row[k] = row.get(k, Fraction(0)) + sign
        if row := {k: v for k, v in row.items() if v}:
            found.append(row)
    return found


def _minus(row: dict[Key, Fraction], factor: Fraction, other: dict[Key, Fraction]) -> dict[Key, Fraction]:
    """row - factor * other, without the terms that cancel."""
    out = dict(row)
    for k, v in other.items():
        out[k] = out.get(k, Fraction(0)) - factor * v
    return {k: v for k, v in out.items() if v}


def rounded(n: int, base: int) -> int:
    """`n` to the nearest multiple of `base`, halves up (base 1 leaves it exact)."""
    return (n + base // 2) // base * base
