"""The board pack: one self-contained, printable HTML page with inline SVG charts.

Nothing is fetched from the network. Every figure comes from the suppressed board view,
so a withheld cell reads "suppressed" here too. Each chart has its own colour (NHS
palette) so a screenshot test can tell that all four were drawn.
"""

from __future__ import annotations

from html import escape
from typing import Any

from services.reporting.domain.facts import STATED_IF_RECORDED
from services.reporting.domain.metrics import CROSS, CROSSED
from services.reporting.domain.objectives import HEADLINE, OTHER_LENGTH

COLOURS = {"trend": "#005eb8", "ethnicity": "#330072", "police": "#007f3b", "sanctions": "#ed8b00"}
RAG = {"green": "#007f3b", "amber": "#ffb81c", "red": "#da291c", "unknown": "#768692"}
STYLE = """
body{font-family:Arial,Helvetica,sans-serif;color:#212b32;margin:24px;max-width:1000px}
h1{color:#005eb8;margin-bottom:4px}h2{border-bottom:2px solid #005eb8;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d8dde0;padding:4px 8px;text-align:left}
.rag{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-weight:bold}
.note{color:#4c6272;font-size:0.9em}.grid{display:flex;flex-wrap:wrap;gap:16px}
section{break-inside:avoid}@media print{body{margin:0}h2{break-after:avoid}}
"""


def _disclosure_note(suppression: dict[str, Any]) -> str:
    note = (f"Counts from 1 to {suppression['threshold'] - 1} are suppressed, and so is any figure that would let"
            " one be worked out; a suppressed figure reads \"suppressed\".")
    base = suppression["rounding"]
    return note if base == 1 else f"{note} Counts are rounded to the nearest {base}, and shares are made from them."


def _workforce_note(body: dict[str, Any]) -> str:
    missing = body.get("workforce_missing") or []
    if not missing:
        return ""
    at = " at this site" if body.get("site") else ""
    return (" No rate per 1,000 staff is given: no workforce is loaded for "
            f"{escape(', '.join(missing))}{at}, whose incidents the rates would count.")


def render(body: dict[str, Any]) -> str:
    """The whole page for one board view."""
    totals = body["totals"]
    places = (body.get("organisation"), body.get("site"), (body.get("location_type") or "").replace("_", " "))
    where = " · ".join(escape(x) for x in places if x) or "all organisations"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Board pack {escape(body['period'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Violence, aggression and abuse against staff: {escape(body['period'])}</h1>",
        f"<p class='note'>{where}. {_disclosure_note(body['suppression'])}{_workforce_note(body)}</p>",
        _objectives(body), "<div class='grid'>",
        _section("Incidents by month", _bars("trend", [(m["month"], m["incidents"]) for m in body["months"]])),
        _section("Staff affected by ethnic group", _bars("ethnicity", _dims(totals, "staff_affected_by_ethnic_group"))),
        _section("Police referral funnel", _bars("police", _funnel(totals))),
        _section("Sanctions", _bars("sanctions", _sanctions(totals))),
        "</div>", _tables(totals), "</body></html>",
    ]
    return "".join(parts)


def _section(title: str, chart: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{chart}</section>"


def _shown(value: Any, share: bool = False) -> str:
    """A figure as the pack prints it: a share as a percentage, anything else (a count, a rate
    per 1,000, a median in days) as it is. Told, not guessed: a rate of 0.4 per 1,000 is not 40%."""
    if isinstance(value, dict):
        return "suppressed"
    if value is None:
        return "–"
    return f"{value:.1%}" if share and isinstance(value, (int, float)) else str(value)


def is_share(name: str) -> bool:
    """Whether a figure is a fraction of a whole (0.25 is 25%): the shares and the police rates."""
    return name.endswith(("_share", "_rate")) or "_share_of_" in name


def _bars(chart: str, items: list[tuple[str, Any]], width: int = 460) -> str:
    """A horizontal bar chart; a suppressed value is an outlined bar labelled so."""
    if not items:
        return "<p class='note'>Nothing to show for this period.</p>"
    numbers = [v for _, v in items if isinstance(v, (int, float))]
    top, row, label_w = max(numbers + [1]), 26, 150
    svg = [f"<svg class='chart' data-chart='{chart}' xmlns='http://www.w3.org/2000/svg' width='{width + label_w + 90}'"
           f" height='{row * len(items) + 10}' role='img' aria-label='{escape(chart)} chart'>",
           # The axis is drawn in the chart's colour too, so a chart of zeros still shows it rendered.
           f"<rect x='{label_w - 3}' y='0' width='3' height='{row * len(items) + 10}' fill='{COLOURS[chart]}'/>"]
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        svg.append(f"<text x='{label_w - 6}' y='{y + 16}' font-size='12' text-anchor='end'>{escape(str(label))}</text>")
        if isinstance(value, (int, float)):
            w = max(2, int(width * value / top)) if value else 0
            svg.append(f"<rect x='{label_w}' y='{y}' width='{w}' height='{row - 6}' fill='{COLOURS[chart]}'/>")
        else:
            svg.append(f"<rect x='{label_w}' y='{y}' width='40' height='{row - 6}' fill='none' stroke='#768692'"
                       " stroke-dasharray='3 2'/>")
            w = 40
        svg.append(f"<text x='{label_w + w + 6}' y='{y + 16}' font-size='12'>{escape(_shown(value))}</text>")
    return "".join(svg) + "</svg>"


def _characteristics(totals: dict[str, Any]) -> str:
    """Staff affected by each protected characteristic beside ethnicity, in one table, with the
    share not stated: a breakdown mostly not stated says little about the gap."""
    rows = []
    for name in STATED_IF_RECORDED:
        label = name.replace("_", " ")
        cells = [(d, v) for d, v in _dims(totals, f"staff_affected_by_{name}") if d != "not_stated"]
        missing = totals["indicators"]["not_stated_share_by_characteristic"].get(name)
        rows += [f"<tr><td>{escape(label)}: {escape(d.replace('_', ' '))}</td><td>{escape(_shown(v))}</td></tr>"
                 for d, v in cells]
        rows.append(f"<tr><td>{escape(label)}: share not stated</td><td>{escape(_shown(missing, True))}</td></tr>")
    disabled = _shown(totals["indicators"]["disabled_share_of_staff_affected"], True)
    rows.append(f"<tr><td>disabled share of staff affected (stated)</td><td>{escape(disabled)}</td></tr>")
    return f"<section><h2>Staff affected by protected characteristic</h2><table>{''.join(rows)}</table></section>"


def _crossed(totals: dict[str, Any]) -> str:
    """Ethnic group against each other characteristic, one grid each, where any is stated."""
    grids = []
    for name in STATED_IF_RECORDED:
        cells = {tuple(d.split(CROSS)): v for d, v in _dims(totals, CROSSED[name])}
        if all(value == "not_stated" for _, value in cells):
            continue
        groups, values = sorted({g for g, _ in cells}), sorted({v for _, v in cells})
        head = "".join(f"<th>{escape(v.replace('_', ' '))}</th>" for v in values)
        rows = "".join(f"<tr><td>{escape(g.replace('_', ' '))}</td>"
                       + "".join(f"<td>{escape(_shown(cells.get((g, v), 0)))}</td>" for v in values) + "</tr>"
                       for g in groups)
        grids.append(f"<h3>ethnic group by {escape(name.replace('_', ' '))}</h3>"
                     f"<table><tr><th></th>{head}</tr>{rows}</table>")
    return (f"<section><h2>Staff affected by ethnic group and another characteristic</h2>{''.join(grids)}</section>"
            if grids else "")


def _dims(row: dict[str, Any], measure: str) -> list[tuple[str, Any]]:
    return list(row["breakdowns"].get(measure, {}).items())


def _funnel(totals: dict[str, Any]) -> list[tuple[str, Any]]:
    police, outcomes = totals["breakdowns"].get("police", {}), totals["breakdowns"].get("police_outcomes", {})
    return [("meeting criteria", police.get("meeting_criteria", 0)), ("referred", police.get("referred", 0)),
            ("outcome known", police.get("outcome_known", 0)), ("charged", outcomes.get("charged", 0)),
            ("victim declined", outcomes.get("victim_declined", 0))]


def _sanctions(totals: dict[str, Any]) -> list[tuple[str, Any]]:
    cards = totals["breakdowns"].get("sanctions", {})
    names = [("yellow 1", "yellow_card_1"), ("yellow 2", "yellow_card_2"), ("red proposed", "red_card_proposed"),
             ("red approved", "ban_imposed"), ("red rejected", "red_card_rejected"), ("rescinded", "rescinded")]
    return [(label, cards.get(key, 0)) for label, key in names] + [
        ("active bans at end", totals["indicators"]["active_bans_at_period_end"])]


def _objectives(body: dict[str, Any]) -> str:
    goals = {o["metric"]: o for o in body.get("objectives", [])}
    rows = ["<section><h2>Headline figures and objectives</h2><table><tr><th>figure</th><th>this period</th>"
            "<th>objective</th><th>status</th><th>trend</th></tr>"]
    figures = {"incidents": body["totals"]["incidents"]} | body["totals"]["indicators"]
    for name in HEADLINE:
        if name not in figures:
            continue
        goal = goals.get(name)
        target, chip = (_target(goal), _chip(goal)) if goal else ("–", "–")
        rows.append(f"<tr><td>{escape(name.replace('_', ' '))}</td><td>{escape(_shown(figures[name], is_share(name)))}</td>"
                    f"<td>{escape(target)}</td><td>{chip}</td><td>{escape(goal['trend']) if goal else '–'}</td></tr>")
    return "".join(rows) + "</table></section>"


PER = {1: "month", 3: "quarter", 12: "year"}


def _target(goal: dict[str, Any]) -> str:
    text = f"{goal['direction'].replace('_', ' ')} {goal['target']}"
    months = goal.get("months")
    return text if months is None else f"{text} per {PER.get(months, f'{months} months')}"


def _chip(goal: dict[str, Any]) -> str:
    """The status; a target for another length of period than the board's says so instead,
    or, set for a month, how many of the board's months met it."""
    label, colour = goal["status"], RAG.get(goal["status"], RAG["unknown"])
    if label == OTHER_LENGTH:
        each = goal.get("series_status")
        label = f"{each.count('green')} of {len(each)} months met" if each else "target is for another length"
    return f"<span class='rag' style='background:{colour}'>{escape(label)}</span>"


def _tables(totals: dict[str, Any]) -> str:
    parts = []
    for title, measure in (("Incidents by category", "incidents_by_category"), ("Incidents by harm", "incidents_by_harm"),
                           ("Hate aggravation (an incident may have several)", "hate_aggravation"),
                           ("Staff affected, injured, and off work over 7 days", "staff_affected"),
                           ("Incidents reportable to HSE under RIDDOR", "riddor_reportable"),
                           ("Reportable incidents reported to HSE: all, and within 15 days", "riddor_reported"),
                           ("Staff affected by staff group", "staff_affected_by_staff_group"),
                           ("Unwanted sexual behaviour: staff affected by sex", "sexual_safety_staff_by_sex"),
                           ("Unwanted sexual behaviour: staff affected by ethnic group",
                            "sexual_safety_staff_by_ethnic_group"),
                           ("Unwanted sexual behaviour: staff affected by staff group",
                            "sexual_safety_staff_by_staff_group"),
                           ("Red cards proposed by perpetrator vulnerability", "red_cards_by_vulnerability")):
        cells = "".join(f"<tr><td>{escape(d.replace('_', ' '))}</td><td>{escape(_shown(v))}</td></tr>"
                        for d, v in _dims(totals, measure))
        parts.append(f"<section><h2>{escape(title)}</h2><table>{cells or '<tr><td>none</td></tr>'}</table></section>")
    parts.append(_characteristics(totals))
    parts.append(_crossed(totals))
    sites = totals["indicators"]["body_worn_camera_share_by_site"]
    cells = "".join(f"<tr><td>{escape(s)}</td><td>{escape(_shown(v, True))}</td></tr>" for s, v in sites.items())
    parts.append(f"<section><h2>Body-worn camera footage, share of incidents by site</h2><table>{cells}</table></section>")
    return "".join(parts)
