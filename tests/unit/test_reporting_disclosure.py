"""Disclosure control: primary suppression of small counts, secondary so none can be derived, rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from services.reporting.domain.disclosure import Relation, Within, derivable, pinned, primary, rounded, suppress


def test_counts_from_one_to_four_are_suppressed_zero_and_five_are_not():
    cells = {"a": 0, "b": 1, "c": 4, "d": 5}
    assert primary(cells, 5) == {"b", "c"}


def test_one_small_cell_in_a_breakdown_hides_the_next_smallest_too():
    # total 30 = 3 + 7 + 20: showing 7, 20 and 30 would give the 3 back.
    cells = {"total": 30, "a": 3, "b": 7, "c": 20}
    assert suppress(cells, [Relation(("a", "b", "c"), "total")], 5) == {"a", "b"}


def test_two_small_cells_need_no_secondary_suppression():
    cells = {"total": 26, "a": 3, "b": 2, "c": 21}
    assert suppress(cells, [Relation(("a", "b", "c"), "total")], 5) == {"a", "b"}


def test_when_no_other_member_is_left_the_margin_is_hidden():
    # 12 = 3 + 9 over two relations; 9 hidden by the first leaves the second with its margin to hide.
    cells = {"t": 12, "a": 3, "b": 9}
    assert suppress(cells, [Relation(("a", "b"), "t")], 5) == {"a", "b"}
    assert suppress({"t": 8, "a": 3, "z": 0}, [Relation(("a", "z"), "t")], 5) == {"a", "t"}


def test_secondary_suppression_follows_both_rows_and_columns():
    # Two months x two categories, with row and column totals: hiding Jan/a (3) forces Jan/b,
    # then the column relation for b forces Feb/b, then row Feb forces Feb/a.
    cells = {("jan", "a"): 3, ("jan", "b"): 6, ("jan", "all"): 9, ("feb", "a"): 8, ("feb", "b"): 7,
             ("feb", "all"): 15, ("tot", "a"): 11, ("tot", "b"): 13, ("tot", "all"): 24}
    rel = [Relation((("jan", "a"), ("jan", "b")), ("jan", "all")), Relation((("feb", "a"), ("feb", "b")), ("feb", "all")),
           Relation((("jan", "a"), ("feb", "a")), ("tot", "a")), Relation((("jan", "b"), ("feb", "b")), ("tot", "b"))]
    hidden = suppress(cells, rel, 5)
    assert hidden == {("jan", "a"), ("jan", "b"), ("feb", "a"), ("feb", "b")}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=2, max_size=6))
def test_no_relation_is_left_with_exactly_one_hidden_term(values):
    cells = {i: v for i, v in enumerate(values)} | {"total": sum(values)}
    relation = Relation(tuple(range(len(values))), "total")
    hidden = suppress(cells, [relation], 5)
    assert primary(cells, 5) <= hidden
    assert sum(1 for k in (*relation.members, "total") if k in hidden) != 1


def table(values):
    """Months x categories with every row, column and grand total published, as the board does."""
    rows, cols = range(len(values)), range(len(values[0]))
    cells = {(i, j): values[i][j] for i in rows for j in cols}
    cells |= {(i, "all"): sum(values[i]) for i in rows} | {("tot", j): sum(v[j] for v in values) for j in cols}
    cells[("tot", "all")] = sum(map(sum, values))
    relations = [Relation(tuple((i, j) for j in cols), (i, "all")) for i in rows]
    relations += [Relation(tuple((i, j) for i in rows), ("tot", j)) for j in cols]
    relations += [Relation(tuple(("tot", j) for j in cols), ("tot", "all")),
                  Relation(tuple((i, "all") for i in rows), ("tot", "all"))]
    return cells, relations


def rank(matrix):
    """Rank by dense elimination over the rationals: an oracle independent of `derivable`."""
    m, r = [[Fraction(x) for x in row] for row in matrix], 0
    for c in range(len(m[0]) if m else 0):
        pivot = next((i for i in range(r, len(m)) if m[i][c]), None)
        if pivot is None:
            continue
        m[r], m[pivot] = m[pivot], m[r]
        for i in range(len(m)):
            if i != r and m[i][c]:
                m[i] = [a - m[i][c] / m[r][c] * b for a, b in zip(m[i], m[r], strict=True)]
        r += 1
    return r


def given_back(relations, hidden):
    """Hidden cells a reader isolates: dropping the cell's column lowers the rank of the hidden system."""
    keys = sorted(hidden, key=str)
    matrix = [[r.members.count(k) - (r.margin == k) for k in keys] for r in relations]
    full = rank(matrix)
    return {k for n, k in enumerate(keys) if rank([row[:n] + row[n + 1:] for row in matrix]) < full}


def test_two_blocks_joined_by_one_hidden_cell_give_it_back():
    # Hidden: Jan/a, Jan/b, Feb/a, Feb/b (a block); Mar/c, Mar/d, Apr/c, Apr/d (another); Jan/c joins them.
    # Every row and column then has two hidden cells or none, so no one sum gives a cell back; but the
    # rows of Mar and Apr sum the second block, columns c and d sum it plus Jan/c: the difference is Jan/c.
    blocks = {("jan", "a"), ("jan", "b"), ("feb", "a"), ("feb", "b"),
              ("mar", "c"), ("mar", "d"), ("apr", "c"), ("apr", "d")}
    months, cats = ("jan", "feb", "mar", "apr"), ("a", "b", "c", "d")
    relations = [Relation(tuple((m, c) for c in cats), (m, "all")) for m in months]
    relations += [Relation(tuple((m, c) for m in months), ("tot", c)) for c in cats]
    assert derivable(relations, blocks) == set()
    assert derivable(relations, blocks | {("jan", "c")}) == {("jan", "c")}
    assert given_back(relations, blocks | {("jan", "c")}) == {("jan", "c")}


def test_a_cell_the_one_relation_rule_leaves_derivable_is_covered():
    # Found by search: with only the one-relation rule, rows 2 and 3 and column 3 give (0, 1) back.
    cells, relations = table([[3, 3, 6, 9, 9], [3, 8, 6, 12, 20], [5, 3, 0, 1, 12], [6, 2, 12, 3, 5]])
    hidden = suppress(cells, relations, 5)
    assert primary(cells, 5) <= hidden
    assert given_back(relations, hidden) == set()
    assert len(hidden) > 9  # the one-relation rule stops at nine cells, one of them given back


@settings(max_examples=400, deadline=None)
@given(st.integers(2, 6).flatmap(lambda c: st.lists(
    st.lists(st.sampled_from([0, 1, 2, 3, 5, 6, 8, 9, 12, 20]), min_size=c, max_size=c), min_size=2, max_size=6)))
def test_no_hidden_count_in_a_table_with_margins_can_be_worked_out(values):
    cells, relations = table(values)
    hidden = suppress(cells, relations, 5)
    assert primary(cells, 5) <= hidden
    assert given_back(relations, hidden) == set()
    assert derivable(relations, hidden) == set()


def fixed(cells, relations, hidden, within=()):
    """Hidden cells a reader can fix from the sums, the bounds `within` and a hidden count being
    at least 1: the least and the greatest value each can take, by linear programming over all
    the values at once. An oracle independent of `pinned`, which reasons about directions and
    the bounds they meet, and of the slacks `suppress` turns bounds into."""
    keys = sorted(hidden, key=str)
    rows = [[r.members.count(k) - (r.margin == k) for k in keys] for r in relations]
    rows = [row for row in rows if any(row)]
    sums = [sum(c * cells[k] for c, k in zip(row, keys, strict=True)) for row in rows]
    # sum(parts) - whole <= 0, the shown terms taken to the right-hand side.
    under = [([w.parts.count(k) - (w.whole == k) for k in keys],
              sum(cells.get(k, 0) for k in w.parts if k not in hidden) * -1
              + (0 if w.whole in hidden else cells.get(w.whole, 0))) for w in within]
    under = [(row, rhs) for row, rhs in under if any(row)]
    found = set()
    for n, k in enumerate(keys):
        ends = [linprog([sign * (i == n) for i in range(len(keys))], A_eq=rows or None, b_eq=sums or None,
                        A_ub=[row for row, _ in under] or None, b_ub=[rhs for _, rhs in under] or None,
                        bounds=(1, None), method="highs") for sign in (1, -1)]
        if all(e.status == 0 for e in ends) and ends[1].x[n] - ends[0].x[n] < 1e-6:
            found.add(k)
    return found


def test_a_part_shown_inside_a_hidden_whole_is_covered_too():
    """6 incidents at site A, all filmed, 1 at B and 40 at C. Hiding A to cover B leaves A + B = 7,
    and A filmed 6 times says A >= 6: B is 1. The part shown must go as well."""
    cells = {"A": 6, "B": 1, "C": 40, "all": 47, "filmed A": 6, "filmed C": 10, "filmed": 16}
    relations = [Relation(("A", "B", "C"), "all"), Relation(("filmed A", "filmed C"), "filmed")]
    within = [Within(("filmed A",), "A"), Within(("filmed C",), "C")]
    blind = suppress(cells, relations, 5)
    assert blind == {"A", "B"} and fixed(cells, relations, blind, within) == {"A", "B"}
    hidden = suppress(cells, relations, 5, within=within)
    assert {"A", "B", "filmed A"} <= hidden and fixed(cells, relations, hidden, within) == set()


def test_a_bound_alone_in_its_sum_hides_nothing_more():
    """A whole less its part shown (10 at a site, 9 filmed: 1 not filmed) is no count the
    board publishes or protects: nothing is hidden for it."""
    cells = {"A": 10, "B": 12, "all": 22, "filmed A": 9, "filmed B": 12, "filmed": 21}
    relations = [Relation(("A", "B"), "all"), Relation(("filmed A", "filmed B"), "filmed")]
    assert suppress(cells, relations, 5, within=[Within(("filmed A",), "A"), Within(("filmed B",), "B")]) == set()


PAIR = st.sampled_from([0, 1, 1, 2, 3, 5, 6, 9]).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4).flatmap(lambda c: st.lists(st.lists(PAIR, min_size=c, max_size=c), min_size=1, max_size=3)))
def test_no_hidden_count_can_be_fixed_knowing_the_parts_inside_it(values):
    """Two tables with their margins, one counting a part of each cell of the other (filmed of
    all incidents, by site and month, say): no hidden count can be fixed from both."""
    wholes, wholes_rel = table([[w for w, _ in row] for row in values])
    parts, parts_rel = table([[p for _, p in row] for row in values])
    cells = {("all", *k): n for k, n in wholes.items()} | {("part", *k): n for k, n in parts.items()}
    relations = [Relation(tuple(("all", *m) for m in r.members), ("all", *r.margin)) for r in wholes_rel]
    relations += [Relation(tuple(("part", *m) for m in r.members), ("part", *r.margin)) for r in parts_rel]
    within = [Within((("part", *k),), ("all", *k)) for k in wholes]
    hidden = suppress(cells, relations, 5, within=within)
    assert primary(cells, 5) <= hidden
    assert fixed(cells, relations, hidden, within) == set()


@pytest.mark.parametrize(("values", "hidden", "given"), [
    # Two hidden counts in a shown sum of 2, or three in a sum of 3: every one of them is 1.
    ({"t": 7, "a": 5, "b": 1, "c": 1}, {"b", "c"}, {"b", "c"}),
    ({"t": 9, "a": 6, "b": 1, "c": 1, "d": 1}, {"b", "c", "d"}, {"b", "c", "d"}),
    # 1 + 2 in a sum of 3: either could be 1 or 2; 1 + 1 + 5 hidden in a sum of 7: one could be 5.
    ({"t": 8, "a": 5, "b": 1, "c": 2}, {"b", "c"}, set()),
    ({"t": 7, "a": 5, "b": 1, "c": 1}, {"a", "b", "c"}, set()),
])
def test_hidden_counts_pinned_by_their_sum_and_the_bound_of_one(values, hidden, given):
    relations = [Relation(("a", "b", "c", "d") if "d" in values else ("a", "b", "c"), "t")]
    assert pinned(values, relations, hidden) == given == fixed(values, relations, hidden)
    assert derivable(relations, hidden) == set()  # the sums alone give none of them back


def test_a_count_held_at_one_lets_the_sums_give_back_another():
    # x + y = 3 in one sum and y + z = 2 in another: y and z are both 1, so x is 2.
    cells = {"x": 2, "y": 1, "z": 1, "s": 6, "r": 7, "t": 9, "u": 8}
    relations = [Relation(("x", "y", "s"), "t"), Relation(("y", "z", "r"), "u")]
    hidden = {"x", "y", "z"}
    assert pinned(cells, relations, hidden) == {"x", "y", "z"} == fixed(cells, relations, hidden)


def test_a_sum_of_two_hidden_counts_of_one_is_covered_by_the_next_smallest():
    # Shown 7 = 5 + 1 + 1 would tell a reader both small counts are 1: the 5 goes too.
    cells = {"total": 7, "a": 5, "b": 1, "c": 1}
    assert suppress(cells, [Relation(("a", "b", "c"), "total")], 5) == {"a", "b", "c"}


SMALL = st.sampled_from([0, 1, 1, 1, 2, 3, 5, 6, 9])


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4).flatmap(lambda c: st.lists(st.lists(SMALL, min_size=c, max_size=c), min_size=2, max_size=4)),
       st.randoms(use_true_random=False))
def test_pinned_finds_exactly_the_counts_a_reader_can_fix(values, random):
    cells, relations = table(values)
    hidden = {k for k, n in cells.items() if n and random.random() < 0.6}
    assert pinned(cells, relations, hidden) == fixed(cells, relations, hidden)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda c: st.lists(st.lists(SMALL, min_size=c, max_size=c), min_size=2, max_size=5)))
def test_no_hidden_count_in_a_table_can_be_fixed_even_knowing_each_is_at_least_one(values):
    cells, relations = table(values)
    hidden = suppress(cells, relations, 5)
    assert primary(cells, 5) <= hidden
    assert fixed(cells, relations, hidden) == set()


@pytest.mark.parametrize(("n", "base", "shown"), [
    (0, 5, 0), (5, 5, 5), (7, 5, 5), (8, 5, 10), (12, 5, 10), (13, 5, 15), (1234, 5, 1235),
    (5, 10, 10), (14, 10, 10), (15, 10, 20), (3, 2, 4), (7, 1, 7), (0, 1, 0),
])
def test_rounding_goes_to_the_nearest_multiple_with_halves_up(n, base, shown):
    assert rounded(n, base) == shown


@given(st.integers(0, 10_000), st.integers(1, 20))
def test_a_rounded_count_is_a_multiple_of_the_base_and_within_half_a_base(n, base):
    shown = rounded(n, base)
    assert shown % base == 0 and abs(shown - n) <= base / 2


def test_riddor_incidents_reported_and_pending_are_within_those_reportable():
    """6 reportable, 5 pending shown: the 1 reported, hidden, would be 6 - 5 = 1 at most, so at
    least 1 pins it, unless the board's bounds say reported and pending share the reportable."""
    from services.reporting.domain.board import TOTAL, bounds

    reportable, pending = (TOTAL, "riddor_reportable", "over_7_day_incapacity"), (TOTAL, "riddor_pending",
                                                                                     "within_15_days")
    reported = (TOTAL, "riddor_reported", "all")
    cells = {reportable: 6, pending: 5, reported: 1}
    within = bounds(cells, [TOTAL])
    hidden = suppress(cells, [], 5, within=within)
    assert reported in hidden and len(hidden) > 1 and fixed(cells, [], hidden, within) == set()
