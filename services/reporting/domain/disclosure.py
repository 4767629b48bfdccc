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
holding that count is hidden too, and the rule runs again. The audit also knows what every
reader knows, that a hidden count is at least 1 (zero is shown), so two hidden counts in a
published sum of 2 are both 1 and are covered the same way (`pinned`).

A board also publishes counts that sit inside others without adding up to them (`Within`):
incidents filmed at a site are some of the site's incidents, staff affected by unwanted
sexual behaviour some of those in their ethnic group. A part shown bounds its hidden whole
from below, and with one published sum that can pin a small count: 6 incidents filmed at a
hidden site whose count and another hidden site's add up to 7 leave the other at 1. Each
such bound enters the audit as a sum with one more term, the unpublished rest (`Slack`),
which a reader knows only to be at least 0.

Suppression holds within one output, not across two: a site's board subtracted from its
organisation's, or one range from an overlapping one, can give back a hidden count. Rounding
every published count to a base (5, as many official statistics do) bounds what such a
difference can tell: each count is within half a base of the truth, so a difference of two
is within a base of it, and a small hidden count fits several values.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

Key = Hashable
# A target raised by less than this is taken as held: the programme's answers are floats, and
# its vertices here are small fractions (1, 1/2, 1/3 ...), far above it.
_RAISED = 1e-6


@dataclass(frozen=True)
class Relation:
    """Published cells that add up: sum(members) == margin."""

    members: tuple[Key, ...]
    margin: Key


@dataclass(frozen=True)
class Within:
    """Published cells that add up to no more than another: sum(parts) <= whole."""

    parts: tuple[Key, ...]
    whole: Key


@dataclass(frozen=True)
class Slack:
    """What a `Within` leaves out, whole less parts: never published, so always an unknown,
    and not itself a count to protect (it counts no group a reader is told of); at least 0."""

    within: Within

    def __str__(self) -> str:  # cells are ordered by their text: a slack's never ties with a cell's
        return f"~slack {self.within.whole} - {self.within.parts}"


def _slacks(cells: Mapping[Key, int], within: Iterable[Within]) -> tuple[dict[Key, int], list[Relation]]:
    """Each bound as a sum with its slack, and the slacks' values. A bound the counts do not keep
    (a part over its whole) is left out: it is not one a reader could rely on."""
    values: dict[Key, int] = {}
    found = []
    for w in within:
        rest = cells.get(w.whole, 0) - sum(cells.get(k, 0) for k in w.parts)
        if rest >= 0 and any(cells.get(k, 0) for k in w.parts):
            values[slack := Slack(w)] = rest
            found.append(Relation((*w.parts, slack), w.whole))
    return values, found


def primary(cells: Mapping[Key, int], threshold: int) -> set[Key]:
    """Counts too small to publish."""
    return {k for k, n in cells.items() if 0 < n < threshold}


def suppress(cells: Mapping[Key, int], relations: Sequence[Relation], threshold: int,
             start: Iterable[Key] = (), kept: frozenset[Key] = frozenset(),
             within: Iterable[Within] = ()) -> set[Key]:
    """Every cell to hide: primary suppression (and `start`), then secondary until no hidden
    count can be worked out, one relation at a time or all together, knowing each is at least 1
    and each `within` bound. Secondary suppression hides a `kept` cell only where no other term
    would do: cells another output publishes too, whose hiding must not differ from it."""
    slacks, bounded = _slacks(cells, within)
    hidden = primary(cells, threshold) | set(start) | set(slacks)
    cells, relations = {**cells, **slacks}, [*relations, *bounded]
    holding = _holding(relations)
    while True:
        _close(cells, relations, hidden, kept)
        extra = _covers(cells, holding, hidden, pinned(cells, relations, hidden) - set(slacks), kept)
        if not extra:
            return hidden - set(slacks)
        hidden |= extra


def _covers(cells: Mapping[Key, int], holding: Mapping[Key, list[Relation]], hidden: set[Key], found: set[Key],
            kept: frozenset[Key]) -> set[Key]:
    """A cover for each cell found pinned, in one round: the audit solves every sum again after
    each round, and on a long sparse board one round per cover took a minute. A cell in a sum
    a cover went into this round waits for the next (that cover may be enough for it); the
    rest get their own at once, at the price of a few cells hidden that one at a time would not."""
    covers: set[Key] = set()
    near: set[Key] = set()
    for k in sorted(found, key=str):
        if k in near or (c := _cover(cells, holding, hidden | covers, k, kept)) is None:
            continue
        covers.add(c)
        near |= {t for r in holding.get(c, ()) for t in (*r.members, r.margin)}
    return covers


def _close(cells: Mapping[Key, int], relations: Sequence[Relation], hidden: set[Key], kept: frozenset[Key]) -> None:
    """Hide terms until no relation has exactly one hidden term."""
    changed = True
    while changed:
        changed = False
        for relation in relations:
            extra = _protect(cells, relation, hidden, kept)
            if extra is not None:
                hidden.add(extra)
                changed = True


def _protect(cells: Mapping[Key, int], relation: Relation, hidden: set[Key], kept: frozenset[Key]) -> Key | None:
    terms = (*relation.members, relation.margin)
    # A slack is unknown whatever its value; one alone in its sum gives back only itself.
    unknown = [k for k in terms if k in hidden and (cells.get(k, 0) or isinstance(k, Slack))]
    if len(unknown) != 1 or isinstance(unknown[0], Slack):
        return None
    shown = sorted((k in kept, cells.get(k, 0), str(k), k) for k in relation.members
                   if k not in hidden and cells.get(k, 0) > 0)
    margin = relation.margin not in hidden and cells.get(relation.margin, 0) > 0
    if margin and (not shown or (shown[0][0] and relation.margin not in kept)):
        return relation.margin
    return shown[0][3] if shown else None


def _holding(relations: Sequence[Relation]) -> dict[Key, list[Relation]]:
    found: dict[Key, list[Relation]] = {}
    for r in relations:
        for t in dict.fromkeys((*r.members, r.margin)):
            found.setdefault(t, []).append(r)
    return found


def _cover(cells: Mapping[Key, int], holding: Mapping[Key, list[Relation]], hidden: set[Key], cell: Key,
           kept: frozenset[Key] = frozenset()) -> Key | None:
    """The smallest shown non-zero term of a relation holding `cell` (`holding`: the relations
    each cell is in), which puts another unknown in that sum. Where every such relation is
    hidden or zero, the search moves out to the relations holding their hidden terms, and so
    on: the derivation runs through them."""
    reached, frontier = {cell}, {cell}
    while frontier:
        near = list({id(r): r for k in frontier for r in holding.get(k, ())}.values())
        shown = sorted((k in kept, cells.get(k, 0), str(k), k) for r in near for k in (*r.members, r.margin)
                       if k not in hidden and cells.get(k, 0) > 0)
        if shown:
            return shown[0][3]
        frontier = {k for r in near for k in (*r.members, r.margin) if k in hidden} - reached
        reached |= frontier
    return None


def derivable(relations: Iterable[Relation], hidden: set[Key]) -> set[Key]:
    """Hidden cells whose exact value the published relations give back.

    With the shown terms known, each relation holding a hidden cell is a linear equation in
    the hidden cells. A reader can isolate a cell exactly when its unit vector lies in the
    span of those equations, which is when the reduced row echelon form has it as a row of
    its own. Exact fractions keep the answer exact. This ignores what a reader also knows, that
    a hidden count is at least 1: `pinned` adds that.
    """
    return _isolated(_equations(relations, hidden))


def pinned(cells: Mapping[Key, int], relations: Sequence[Relation], hidden: set[Key]) -> set[Key]:
    """Hidden cells a reader can give back from the published sums and the bound every hidden
    count has: zero is shown, so a hidden count is at least 1 (a slack at least 0).

    The bound matters where it is met: two hidden counts in a sum of 2 are both 1. The true
    counts are one solution; a hidden cell can move only along directions d that keep every
    sum (A d = 0) and do not take a count now at 1 below it (d >= 0 there). The counts at 1
    that no such direction raises are held at 1 ("implicit equalities", found by linear
    programming, `held_at_one`). Every other count can move a little, all at once, so the
    rest are fixed exactly when the sums, with the held counts known, isolate them, as in
    `derivable`.
    """
    # A slack above 0 can take up any small move of its sum's other terms, the only sum it is
    # in: that sum tells a reader nothing a direction must keep, and leaves both searches.
    equations = [e for e in _equations(relations, hidden)
                 if not any(isinstance(k, Slack) and cells.get(k, 0) > 0 for k in e)]
    at_bound = (k for k in hidden if cells.get(k, 0) == (0 if isinstance(k, Slack) else 1))
    held = held_at_one(equations, sorted(at_bound, key=str))
    # A held count is known: it leaves the equations as a constant, and the rest are solved for.
    # A slack not held is free in the one sum it is in, which then fixes nothing else: left out,
    # as on long sparse boards (where many parts equal their wholes) it multiplied the work.
    rest = [row for e in equations if (row := {k: v for k, v in e.items() if k not in held})
            and not any(isinstance(k, Slack) for k in row)]
    return held | _isolated(rest)


def held_at_one(equations: Sequence[Mapping[Key, Fraction]], ones: Sequence[Key]) -> set[Key]:
    """The counts in `ones` (hidden, at their bound: 1, or a slack's 0) that every direction
    keeping the sums leaves where they are. Each round asks a linear programme to raise as many of the rest as it
    can (each by up to 1) and drops those it raised, until it raises none."""
    if not ones:
        return set()
    cells = sorted({k for e in equations for k in e} | set(ones), key=str)
    at = {k: i for i, k in enumerate(cells)}
    bound = set(ones)
    held = list(ones)
    while held:
        raised = _raise(equations, cells, at, bound, held)
        if not raised:
            break
        held = [k for k in held if k not in raised]
    return set(held)


def _raise(equations: Sequence[Mapping[Key, Fraction]], cells: Sequence[Key], at: Mapping[Key, int],
           bound: set[Key], targets: Sequence[Key]) -> set[Key]:
    """The targets one direction d (A d = 0, d >= 0 on the bound cells) raises: maximise the sum
    of t_j with 0 <= t_j <= d_j and t_j <= 1 over the targets."""
    n, m = len(cells), len(targets)
    # Sparse: a long board has thousands of cells and sums, each sum a handful of them.
    entries = [(row, at[k], float(v)) for row, equation in enumerate(equations) for k, v in equation.items()]
    a_eq = _sparse(entries, len(equations), n + m)
    # t_j - d_j <= 0
    a_ub = _sparse([e for j, k in enumerate(targets) for e in ((j, n + j, 1.0), (j, at[k], -1.0))], m, n + m)
    bounds = [(0, None) if k in bound else (None, None) for k in cells] + [(0, 1)] * m
    result = linprog(np.r_[np.zeros(n), -np.ones(m)], A_ub=a_ub, b_ub=np.zeros(m),
                     A_eq=a_eq if equations else None, b_eq=np.zeros(len(equations)) if equations else None,
                     bounds=bounds, method="highs")
    if result.status != 0:  # cannot happen (d = 0 is feasible, t <= 1 bounds it); hold all, to be safe
        return set()
    return {k for j, k in enumerate(targets) if result.x[n + j] > _RAISED}


def _sparse(entries: Sequence[tuple[int, int, float]], rows: int, columns: int) -> sparse.csr_array:
    if not entries:
        return sparse.csr_array((rows, columns))
    r, c, v = zip(*entries, strict=True)
    return sparse.csr_array((v, (r, c)), shape=(rows, columns))


def _isolated(equations: Iterable[Mapping[Key, Fraction]]) -> set[Key]:
    """Cells the equations give back alone: rows of one term in the reduced row echelon form.
    Worked in whole numbers, each row divided by the greatest common divisor of its terms:
    exact as fractions are, and several times faster on a long board's thousands of sums."""
    pivots: dict[Key, dict[Key, int]] = {}
    for equation in equations:
        row = {k: int(v) for k, v in equation.items()}  # sums of cells: whole coefficients
        for p in [p for p in row if p in pivots]:
            if p in row:
                row = _eliminate(row, pivots[p], p)
        if not row:
            continue
        pivot = next(iter(row))
        for q, other in pivots.items():
            if pivot in other:
                pivots[q] = _eliminate(other, row, pivot)
        pivots[pivot] = row
    return {p for p, row in pivots.items() if len(row) == 1}


def _eliminate(row: dict[Key, int], other: dict[Key, int], p: Key) -> dict[Key, int]:
    """`row` less a multiple of `other`, both scaled, so that `p` cancels; divided by the gcd."""
    a, b = other[p], row[p]
    out = {k: v * a for k, v in row.items()}
    for k, v in other.items():
        out[k] = out.get(k, 0) - b * v
    out = {k: v for k, v in out.items() if v}
    g = math.gcd(*out.values()) if out else 1
    return {k: v // g for k, v in out.items()}


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


def rounded(n: int, base: int) -> int:
    """`n` to the nearest multiple of `base`, halves up (base 1 leaves it exact)."""
    return (n + base // 2) // base * base
