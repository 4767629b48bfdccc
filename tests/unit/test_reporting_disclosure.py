"""Disclosure control: primary suppression of small counts, secondary so none can be derived, rounding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.domain.disclosure import Relation, primary, rounded, suppress


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
