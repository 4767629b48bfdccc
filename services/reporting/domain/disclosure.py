"""Disclosure control: no published count between 1 and threshold-1, nor one derivable from others.

Primary suppression hides every count from 1 to threshold-1 (zero is shown: it names no
one). Secondary suppression then looks at each additive relation the output publishes,
`sum(members) = margin` (the categories of a breakdown and their total; the months of a
period and the period's figure). Where exactly one term of a relation is hidden, it could
be worked out by subtraction, so the smallest other non-zero member is hidden too (the
margin if no member is left). This repeats until no relation has a single hidden term.

Suppression holds within one output, not across two: a site's board subtracted from its
organisation's, or one range from an overlapping one, can give back a hidden count. Rounding
every published count to a base (5, as many official statistics do) bounds what such a
difference can tell: each count is within half a base of the truth, so a difference of two
is within a base of it, and a small hidden count fits several values.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

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
    """Every cell to hide: primary suppression, then secondary until no relation leaks one."""
    hidden = primary(cells, threshold)
    changed = True
    while changed:
        changed = False
        for relation in relations:
            extra = _protect(cells, relation, hidden)
            if extra is not None:
                hidden.add(extra)
                changed = True
    return hidden


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


def rounded(n: int, base: int) -> int:
    """`n` to the nearest multiple of `base`, halves up (base 1 leaves it exact)."""
    return (n + base // 2) // base * base
