"""Derived indicators: shares, rates per 1,000 staff, gaps and medians, suppression-aware.

A share or rate is withheld when any count it is made from is withheld (the share and
the shown denominator would give the count back); a median is withheld when fewer than
`threshold` values make it. Shares are fractions (0.25 is 25%), rounded to 3 places.
Where counts are published rounded to a base, shares and rates are made from the rounded
counts: made from the exact ones, they and the rounded denominator would give a count back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any

from services.reporting.domain.disclosure import Relation, rounded, suppress
from services.reporting.domain.metrics import BY_CHARACTERISTIC, CROSS, CROSSED, MINORITY, SEXUAL, SEXUAL_SAFETY_BY

SUPPRESSED = {"suppressed": True}
Figure = int | float | dict[str, bool] | None
Headcount = Mapping[tuple[str, str, str, str], int]  # (staff_group, ethnic_group, disability, sex) -> staff in post
# The characteristics the workforce load can state, by their place in a Headcount key.
IN_WORKFORCE = {"disability": 2, "sex": 3}
AXES = {"staff_group": 0, "ethnic_group": 1, **IN_WORKFORCE}
ALL_STAFF = ("all", "all")
Heads = tuple[str, str]  # (axis, value): staff in post with that value, as a rate's denominator


@dataclass(frozen=True)
class Cells:
    """One row's counts, the ones withheld, and the samples behind its medians."""

    counts: Mapping[tuple[str, str], int]
    hidden: set[tuple[str, str]]
    samples: Mapping[str, list[float]]
    threshold: int
    raw: bool
    rounding: int = 1  # published counts are multiples of this

    def n(self, measure: str, dimension: str) -> int:
        return self.counts.get((measure, dimension), 0)

    def published(self, n: int) -> int:
        return n if self.raw else rounded(n, self.rounding)

    def show(self, measure: str, dimension: str) -> Figure:
        """A count as published: the number (rounded, if so set), or the suppressed marker."""
        return SUPPRESSED if (measure, dimension) in self.hidden else self.published(self.n(measure, dimension))

    def blocked(self, *keys: tuple[str, str]) -> bool:
        return any(k in self.hidden for k in keys)

    def share(self, num: tuple[str, str], den: tuple[str, str]) -> Figure:
        if self.blocked(num, den):
            return SUPPRESSED
        return _ratio(self.published(self.n(*num)), self.published(self.n(*den)))

    def summed(self, measure: str, dims: tuple[str, ...]) -> int | None:
        """A total of cells as published, or None when it would reveal a withheld one or is itself too small."""
        total = sum(self.n(measure, d) for d in dims)
        if self.raw:
            return total
        if self.blocked(*((measure, d) for d in dims)) or 0 < total < self.threshold:
            return None
        return self.published(total)

    def middle(self, name: str) -> Figure:
        values = self.samples.get(name, [])
        if not values:
            return None
        if not self.raw and len(values) < self.threshold:
            return SUPPRESSED
        return round(median(values), 1)


def _ratio(num: int, den: int, scale: float = 1.0, places: int = 3) -> float | None:
    return None if den == 0 else round(scale * num / den, places)


def indicators(c: Cells, headcount: Headcount, hidden: frozenset[Heads] = frozenset(),
               crossed: bool = False) -> dict[str, Any]:
    """Every derived figure for one row; headcount is (staff_group, ethnic_group, disability, sex) -> staff in post,
    `hidden` the headcounts no rate may be made from (`hidden_heads`). `crossed`: the row has the counts by
    ethnic group crossed with another characteristic (the period's)."""
    all_incidents = ("incidents", "all")
    referred = ("police", "referred")
    out: dict[str, Any] = {
        "medical_factors_share": c.share(("medical_factors", "yes"), all_incidents),
        "sexual_safety_count": c.show("incidents_by_category", "sexual_misconduct"),
        "sexual_safety_share": c.share(("incidents_by_category", "sexual_misconduct"), all_incidents),
        "hate_aggravated_share": c.share(("hate_aggravated", "all"), all_incidents),
        "body_worn_camera_share": c.share(("body_worn_camera", "used"), all_incidents),
        "riddor_reported_on_time_share": _riddor_on_time(c),
        "body_worn_camera_share_by_site": {
            site: c.share(("body_worn_camera_by_site", site), ("incidents_by_site", site))
            for (m, site) in sorted(c.counts) if m == "incidents_by_site"},
        "police_referral_rate": c.share(referred, ("police", "meeting_criteria")),
        "charge_rate": c.share(("police_outcomes", "charged"), referred),
        "victim_declined_rate": c.share(("police_outcomes", "victim_declined"), referred),
        "median_days_to_referral": c.middle("days_to_referral"),
        "median_days_to_card": c.middle("days_to_card"),
        "active_bans_at_period_end": c.show("sanctions_at_period_end", "active_bans"),
        "repeat_perpetrators": c.show("repeat_perpetrators", "subjects"),
        "red_card_share_by_vulnerability": _vulnerability(c, "red_cards_by_vulnerability", ("sanctions", "red_card_proposed")),
        "incident_share_by_vulnerability": _vulnerability(c, "perpetrator_vulnerability", ("incidents_identified", "all")),
    }
    return out | _ethnicity(c) | _characteristics(c) | _rates(c, headcount, hidden, crossed)


def _riddor_on_time(c: Cells) -> Figure:
    """Reported within 15 days ÷ reportable. An unreported incident counts as late, the share
    the law asks for being of all reportable ones, but only once its 15 days have run out:
    until then it may yet be on time, and a month published days after it ends would
    otherwise call its last fortnight's incidents late for good."""
    on_time, reportable = ("riddor_reported", "within_15_days"), ("riddor_reportable", "over_7_day_incapacity")
    pending = ("riddor_pending", "within_15_days")
    if c.blocked(on_time, reportable, pending):
        return SUPPRESSED
    return _ratio(c.published(c.n(*on_time)), c.published(c.n(*reportable)) - c.published(c.n(*pending)))


def _vulnerability(c: Cells, measure: str, den: tuple[str, str]) -> dict[str, Figure]:
    return {d: c.share((measure, d), den) for (m, d) in sorted(c.counts) if m == measure}


def _ethnicity(c: Cells) -> dict[str, Figure]:
    """WRES indicator 5 in count form: ethnic minority share of staff affected (Not stated excluded).

    The share of staff whose group is not stated goes beside it: the more of them, the
    less the equality figures can be relied on.
    """
    not_stated = c.share(("staff_affected_by_ethnic_group", "not_stated"), ("staff_affected", "all"))
    minority = c.summed("staff_affected_by_ethnic_group", MINORITY)
    stated = c.summed("staff_affected_by_ethnic_group", (*MINORITY, "white"))
    share = SUPPRESSED if minority is None or stated is None else _ratio(minority, stated)
    return {"ethnic_minority_share_of_staff_affected": share, "ethnicity_not_stated_share": not_stated}


def _characteristics(c: Cells) -> dict[str, Any]:
    """WDES metric 4a in count form: the disabled share of staff affected (Not stated excluded),
    and for every characteristic the share not stated, which says how far its breakdown can
    be relied on."""
    measure = BY_CHARACTERISTIC["disability"]
    disabled = c.summed(measure, ("disabled",))
    stated = c.summed(measure, ("disabled", "not_disabled"))
    share = SUPPRESSED if disabled is None or stated is None else _ratio(disabled, stated)
    return {"disabled_share_of_staff_affected": share, "not_stated_share_by_characteristic": {
        name: c.share((m, "not_stated"), ("staff_affected", "all")) for name, m in BY_CHARACTERISTIC.items()}}


def hidden_heads(headcount: Headcount, threshold: int) -> frozenset[Heads]:
    """The staff-in-post figures no rate may be made from. A rate beside its count gives its
    headcount back (1000 x count / rate): fewer in post than the threshold is a handful of
    people whom the count says were affected, and it must not come back by subtraction either
    (the ethnic minority rate's headcount less each minority group's), so the headcounts go
    through the same disclosure control as the counts, with every value the load states,
    not stated included, taken as known to a reader.

    Worked out once per board and used on every row, months and period alike: rows that hid
    different headcounts would give each other's back (a month's rate by sex beside the
    period's crossed cells), so every row hides what the period's row, with its crossed
    rates, must."""
    cells, relations = {ALL_STAFF: sum(headcount.values())}, []
    for axis, place in AXES.items():
        values = _heads(headcount, place)
        cells |= {(axis, v): n for v, n in values.items()}
        relations.append(Relation(tuple((axis, v) for v in sorted(values)), ALL_STAFF))
    minority = tuple(("ethnic_group", g) for g in MINORITY)
    cells[("ethnic_group", "minority")] = sum(cells.get(k, 0) for k in minority)
    relations.append(Relation(minority, ("ethnic_group", "minority")))
    for characteristic, place in IN_WORKFORCE.items():
        crossed_cells = _crossed_heads(headcount, place, include_not_stated=True)
        cells |= {(characteristic, k): n for k, n in crossed_cells.items()}
        for axis, side in (("ethnic_group", 0), (characteristic, 1)):
            for value in {k.split(CROSS)[side] for k in crossed_cells}:
                members = tuple((characteristic, k) for k in sorted(crossed_cells) if k.split(CROSS)[side] == value)
                relations.append(Relation(members, (axis, value)))
    return frozenset(suppress(cells, relations, threshold))


def _crossed_heads(headcount: Headcount, place: int, include_not_stated: bool = False) -> dict[str, int]:
    """Staff in post by ethnic group crossed with the characteristic at `place` (`black/disabled`)."""
    heads: dict[str, int] = {}
    for key, n in headcount.items():
        if include_not_stated or key[place] != "not_stated":
            cell = f"{key[1]}{CROSS}{key[place]}"
            heads[cell] = heads.get(cell, 0) + n
    return heads


def _rates(c: Cells, headcount: Headcount, hidden: frozenset[Heads], crossed: bool) -> dict[str, Any]:
    """Per 1,000 staff in post, where the trust has loaded its workforce for the period."""
    if not headcount:
        return {"workforce_loaded": False}
    r = Rates(c, hidden)
    by_group, by_ethnic, by_disability, by_sex = (_heads(headcount, axis) for axis in range(4))
    ethnic, disability = BY_CHARACTERISTIC["ethnic_group"], BY_CHARACTERISTIC["disability"]
    minority, white, ethnic_gap = r.gap(ethnic, "ethnic_group", by_ethnic, MINORITY, ("white",))
    disabled, not_disabled, disability_gap = r.gap(disability, "disability", by_disability, ("disabled",),
                                                   ("not_disabled",))
    return {
        "workforce_loaded": True,
        "incidents_per_1000_staff": r.per_1000(c.summed("incidents", ("all",)), sum(headcount.values()), ALL_STAFF),
        "staff_affected_per_1000_by_staff_group": r.by("staff_affected_by_staff_group", "staff_group", by_group),
        "staff_affected_per_1000_by_ethnic_group": r.by(ethnic, "ethnic_group", by_ethnic),
        "ethnic_minority_staff_affected_per_1000": minority,
        "white_staff_affected_per_1000": white,
        "ethnic_minority_white_gap_per_1000": ethnic_gap,
        # WDES: only where the workforce load states disability; otherwise undefined, not zero.
        "disabled_staff_affected_per_1000": disabled,
        "non_disabled_staff_affected_per_1000": not_disabled,
        "disabled_non_disabled_gap_per_1000": disability_gap,
        # Only where the load states sex, like disability: a value not stated has no rate.
        "staff_affected_per_1000_by_sex": r.by(BY_CHARACTERISTIC["sex"], "sex", _stated(by_sex)),
    } | _sexual_safety(r, headcount, by_ethnic, by_sex) | (_crossed(r, headcount) if crossed else {})


@dataclass(frozen=True)
class Rates:
    """Rates per 1,000 in post for one row: its counts, and the headcounts none may be made from."""

    c: Cells
    hidden: frozenset[Heads]

    def per_1000(self, num: int | None, den: int, heads: Heads) -> Figure:
        # No one in post to count against (the load does not state the value): undefined, hidden count or not.
        if den == 0:
            return None
        return SUPPRESSED if num is None or heads in self.hidden else _ratio(num, den, 1000, 1)

    def by(self, measure: str, axis: str, heads: Mapping[str, int]) -> dict[str, Figure]:
        """The rate for each value with staff in post, its count from `measure`."""
        return {v: self.per_1000(self.c.summed(measure, (v,)), n, (axis, v)) for v, n in sorted(heads.items())}

    def gap(self, measure: str, axis: str, heads: Mapping[str, int], focus: tuple[str, ...],
            base: tuple[str, ...]) -> tuple[Figure, Figure, Figure]:
        """Staff affected per 1,000 in post for a group and its comparison group, and the gap between."""
        def rate_of(dims: tuple[str, ...]) -> Figure:
            heads_key = (axis, dims[0]) if len(dims) == 1 else (axis, "minority")
            return self.per_1000(self.c.summed(measure, dims), sum(heads.get(d, 0) for d in dims), heads_key)
        group, other = rate_of(focus), rate_of(base)
        gap = None if group is None or other is None else (
            SUPPRESSED if SUPPRESSED in (group, other) else round(group - other, 1))
        return group, other, gap


def _stated(heads: Mapping[str, int]) -> dict[str, int]:
    return {v: n for v, n in heads.items() if v != "not_stated"}


def _crossed(r: Rates, headcount: Headcount) -> dict[str, dict[str, Figure]]:
    """Staff affected per 1,000 in post in each ethnic group with each value of disability and
    sex (`black/disabled`), so that the rate for disabled Black staff, say, is seen apart from
    both; only for values the load states, like the rates by one characteristic."""
    return {f"staff_affected_per_1000_by_ethnic_group_and_{characteristic}": r.by(
                CROSSED[characteristic], characteristic,
                {cell: n for cell, n in _crossed_heads(headcount, place).items() if n})
            for characteristic, place in IN_WORKFORCE.items()}


def _sexual_safety(r: Rates, headcount: Headcount, by_ethnic: Mapping[str, int],
                   by_sex: Mapping[str, int]) -> dict[str, Any]:
    """Staff affected by unwanted sexual behaviour per 1,000 in post: the prevalence the Sexual
    Safety Charter asks trusts to capture, by sex, and its gap by ethnicity."""
    measure = SEXUAL_SAFETY_BY["ethnic_group"]
    minority, white, gap = r.gap(measure, "ethnic_group", by_ethnic, MINORITY, ("white",))
    return {
        "sexual_safety_staff_affected_per_1000_by_sex": r.by(SEXUAL_SAFETY_BY["sex"], "sex", _stated(by_sex)),
        "sexual_safety_staff_affected_per_1000": r.per_1000(r.c.summed("staff_affected_by_category", (SEXUAL,)),
                                                            sum(headcount.values()), ALL_STAFF),
        "sexual_safety_staff_affected_per_1000_by_ethnic_group": r.by(measure, "ethnic_group", by_ethnic),
        "sexual_safety_ethnic_minority_staff_affected_per_1000": minority,
        "sexual_safety_white_staff_affected_per_1000": white,
        "sexual_safety_ethnic_minority_white_gap_per_1000": gap,
    }


def _heads(headcount: Headcount, axis: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key, n in headcount.items():
        totals[key[axis]] = totals.get(key[axis], 0) + n
    return totals
