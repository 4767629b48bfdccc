"""Reporting's HTTP API (board figures, board pack, referral and footage worklists, workforce, objectives) and subscriber."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from schemas.incidents import Disability, EthnicGroup, LocationType, OdsCode, Past, Sex, StaffGroup, Text
from schemas.topics import INCIDENTS, SANCTIONS
from services.reporting import adapters, handlers, pack
from services.reporting.domain import cursor, footage, periods
from services.reporting.domain.board import Disclosure
from services.reporting.domain.objectives import GROWS_WITH_PERIOD, HEADLINE, Direction, Objective, target_problem
from vanda.runtime.auth import AuthSettings, Principal, Role, require
from vanda.runtime.consumer import EventConsumer, subscribe as consume

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
# Staff in post on one row: the whole NHS is about 1.5 million, so more is a typing error.
MAX_HEADCOUNT = 2_000_000
PAGE, MAX_PAGE = 100, 1000  # referrals per worklist page: by default, and at most


# Filters take the stored values' own types, so they are stripped as the values were and one
# that no stored value can be is refused (422) rather than answered with nothing.
Organisation = Annotated[OdsCode | None, Query(description="ODS code, either case (`rj1` finds RJ1).")]
Site = Annotated[Text | None, Query()]
Location = Annotated[LocationType | None, Query(description="Only incidents at this type of location, and their"
                                                " sanctions; no rates per 1,000 staff (staff are counted by site).")]


@dataclass
class Deps:
    pool: Callable[[], Any]
    projection: handlers.Projection
    disclosure: Disclosure  # as every viewer gets it; raw reads drop suppression and rounding
    auth: AuthSettings
    max_months: int
    clock: Callable[[], datetime]
    footage_retention: timedelta = timedelta(days=30)
    retention: timedelta = timedelta(days=3650)  # of free-text reasons


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeadcountRow(Body):
    organisation: OdsCode
    site: Text
    staff_group: StaffGroup
    ethnic_group: EthnicGroup
    disability: Disability = Field(Disability.NOT_STATED, description="For the WDES gap per 1,000 staff.")
    sex: Sex = Field(Sex.NOT_STATED, description="For staff affected per 1,000 by sex, sexual safety's above all.")
    headcount: int = Field(ge=0, le=MAX_HEADCOUNT)


class FootageDeletion(Body):
    unplanned: bool = Field(False, description="It is already gone for another reason than its period ending:"
                            " deleted in error, lost, or deleted by the camera system on its own. Recorded"
                            " whatever the footage was; the audit says what that was.")
    deleted_at: Past | None = Field(None, description="When it was deleted, if not now.")


class Retraction(Body):
    reason: Text = Field(description="Why the deletion was recorded in error; kept in the audit.")


class Workforce(Body):
    rows: list[HeadcountRow] = Field(min_length=1, max_length=10_000, description=(
        "Staff in post of one or more organisations: the load replaces the period's rows of each organisation"
        " in it, and no other's. One row per organisation, site, staff group, ethnic group, disability and sex."))


# What makes two headcount rows the same staff (the table's key, less the period).
ROW_KEY = ("organisation", "site", "staff_group", "ethnic_group", "disability", "sex")


def duplicates(rows: list[HeadcountRow]) -> RequestValidationError | None:
    """Each row that repeats an earlier one's key, named by position only (no values echoed):
    adding or keeping either would be a guess at what the trust meant."""
    seen: dict[tuple[Any, ...], int] = {}
    errors = []
    for i, row in enumerate(rows):
        first = seen.setdefault(tuple(getattr(row, f) for f in ROW_KEY), i)
        if first != i:
            errors.append({"loc": ("body", "rows", i), "type": "value_error", "msg": f"duplicates row {first}"
                           " (same organisation, site, staff_group, ethnic_group, disability and sex)"})
    return RequestValidationError(errors) if errors else None


class ObjectiveBody(Body):
    target: float = Field(allow_inf_nan=False)  # NaN or infinity is stored as null: never met, or always
    direction: Direction
    tolerance: float = Field(0.1, ge=0, le=1, description="Amber band, as a fraction of the target.")
    months: int | None = Field(None, ge=1, le=120, description=(
        "The length of period the target is for (1 a month, 3 a quarter, 12 a year): required for a figure"
        f" that grows with the period ({', '.join(sorted(GROWS_WITH_PERIOD))}), refused for the others."))


def _invalid(field: str, msg: str, where: str = "query") -> RequestValidationError:
    return RequestValidationError([{"loc": (where, field), "msg": msg, "type": "value_error"}])


async def disclosure(deps: Deps, raw: bool, who: Principal, what: str) -> Disclosure:
    """Suppressed figures for every viewer; raw counts only for the operations role, and every such read is audited."""
    if not raw:
        return deps.disclosure
    if Role.OPERATIONS not in who.roles:
        raise HTTPException(403, detail=f"raw counts need the {Role.OPERATIONS} role")
    await adapters.audit(deps.pool(), who.subject, "raw_read", what)
    return replace(deps.disclosure, raw=True)


def scope(deps: Deps, from_: str | None, to: str | None, period: str | None,
          organisation: str | None, site: str | None, location: LocationType | None = None) -> handlers.Scope:
    location_type = location.value if location else None
    if period is not None:
        try:
            return handlers.Scope(periods.parse(period), organisation, site, location_type)
        except ValueError as exc:
            raise _invalid("period", str(exc).partition(": ")[2]) from None
    if from_ is None or to is None:
        raise _invalid("from", "give from and to (YYYY-MM), or period")
    first, last = _month("from", from_), _month("to", to)
    if last < first:
        raise _invalid("to", "must not be before 'from'")
    if len(periods.month_range(first, last)) > deps.max_months:
        raise _invalid("to", f"range must span at most {deps.max_months} months")
    return handlers.month_scope(first, last, organisation, site, location_type)


def _month(field: str, text: str) -> date:
    try:
        return periods.parse(text).first
    except ValueError as exc:
        raise _invalid(field, str(exc).partition(": ")[2]) from None


def routes(deps: Deps) -> APIRouter:
    router = APIRouter()
    _board_routes(router, deps)
    _referral_routes(router, deps)
    _footage_routes(router, deps)
    _admin_routes(router, deps)
    return router


def _board_routes(router: APIRouter, deps: Deps) -> None:
    # Suppressed figures still break V&A down by site, staff group and ethnic group: management
    # information for the board and its officers, not for anyone who can reach the port.
    viewers = Depends(require(Role.BOARD_VIEWER, Role.OPERATIONS, settings=deps.auth))

    @router.get("/v1/metrics/board", tags=["metrics"])
    async def board_metrics(
        from_: Annotated[str | None, Query(alias="from", pattern=MONTH, description="First month, YYYY-MM.")] = None,
        to: Annotated[str | None, Query(pattern=MONTH, description="Last month, YYYY-MM.")] = None,
        period: Annotated[str | None, Query(pattern=periods.PERIOD_PATTERN, description=periods.PERIOD_EXAMPLES + ".")] = None,
        organisation: Organisation = None, site: Site = None, location_type: Location = None,
        raw: Annotated[bool, Query(description="Unsuppressed counts (operations role only).")] = False,
        format: Annotated[Literal["json", "csv"] | None, Query()] = None,
        accept: Annotated[str | None, Header()] = None,
        who: Principal = viewers,
    ) -> Any:
        """Board figures per month and for the whole range, with disclosure control applied."""
        what = (f"board from={from_} to={to} period={period} organisation={organisation} site={site}"
                f" location_type={location_type}")
        if raw and who.organisations is not None and (organisation is None or not who.acts_for(organisation)):
            # Unsuppressed counts are small counts of people: only of a trust the person acts for.
            raise HTTPException(403, detail="raw counts need an organisation this token acts for")
        seen = await disclosure(deps, raw, who, what)
        body = await handlers.board(deps.pool(), scope(deps, from_, to, period, organisation, site, location_type),
                                    deps.projection, seen, deps.clock())
        if format == "csv" or (format is None and "text/csv" in (accept or "")):
            return Response(to_csv(body), media_type="text/csv; charset=utf-8")
        return body

    @router.get("/board", tags=["metrics"], response_class=HTMLResponse, dependencies=[viewers])
    async def board_pack(
        period: Annotated[str, Query(pattern=periods.PERIOD_PATTERN, description=periods.PERIOD_EXAMPLES + ".")],
        organisation: Organisation = None, site: Site = None, location_type: Location = None,
    ) -> HTMLResponse:
        """The board pack: one printable HTML page with inline charts; suppressed figures only."""
        body = await handlers.board(deps.pool(), scope(deps, None, None, period, organisation, site, location_type),
                                    deps.projection, deps.disclosure, deps.clock())
        return HTMLResponse(pack.render(body))


def _covered(who: Principal, organisation: str | None) -> list[str] | None:
    """The organisations an incident-level list covers: the one asked for, else those the
    person acts for (None: every one); 403 for one the person does not act for."""
    try:
        return who.scope(organisation)
    except PermissionError as exc:
        raise HTTPException(403, detail=str(exc)) from None


def _referral_routes(router: APIRouter, deps: Deps) -> None:
    @router.get("/v1/police-referrals", tags=["police"])
    async def police_referrals(
        status: Annotated[Literal["pending", "referred", "closed"] | None, Query()] = None,
        organisation: Organisation = None, site: Site = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Most referrals in this page.")] = PAGE,
        after: Annotated[str | None, Query(max_length=200, description="`next` from the previous page.")] = None,
        who: Principal = Depends(require(Role.POLICE_LIAISON, settings=deps.auth)),
    ) -> dict:
        """The police liaison worklist: incidents meeting the referral criteria, oldest first,
        a page at a time (years of referrals are far too many for one answer).

        Incident by incident, with crime references and outcomes: so a role of its own, and
        every read audited, as raw board counts are.
        """
        try:
            page = await handlers.worklist(deps.pool(), status, _covered(who, organisation), site, after, limit)
        except cursor.BadCursor as exc:
            raise _invalid("after", str(exc)) from None
        await adapters.audit(deps.pool(), who.subject, "referrals_read",
                             f"police-referrals status={status} organisation={organisation} site={site}"
                             f" after={after} limit={limit}")
        return page


def _footage_routes(router: APIRouter, deps: Deps) -> None:
    officer = Depends(require(Role.FOOTAGE_OFFICER, settings=deps.auth))

    @router.get("/v1/footage", tags=["footage"])
    async def footage_worklist(
        status: Annotated[Literal["evidence", "held", "delete_due", "deleted"] | None, Query()] = None,
        organisation: Organisation = None, site: Site = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Most incidents in this page.")] = PAGE,
        after: Annotated[str | None, Query(max_length=200, description="`next` from the previous page.")] = None,
        who: Principal = officer,
    ) -> dict:
        """Incidents with body-worn camera footage, oldest first, a page at a time: whether a
        police referral or a card rests on each one's footage (`evidence`, with its `uses`),
        whether it is still within its retention period (`held`), due for deletion
        (`delete_due`), or recorded as deleted."""
        try:
            return await handlers.footage_worklist(deps.pool(), status, _covered(who, organisation), site, after,
                                                   limit, deps.clock(), deps.footage_retention)
        except cursor.BadCursor as exc:
            raise _invalid("after", str(exc)) from None

    @router.post("/v1/footage/{incident_id}/deleted", tags=["footage"])
    async def footage_deleted(incident_id: UUID, body: FootageDeletion | None = None,
                              who: Principal = officer) -> dict:
        """Record that the incident's footage has been deleted, by whom (from the token), in the
        audit too, with what the footage was then. A planned deletion is refused (409) while the
        footage is evidence or within its period; an unplanned one is recorded whatever it was.
        A repeat answers with the first record."""
        body = body or FootageDeletion()
        try:
            done = await handlers.footage_deleted(deps.pool(), incident_id, who, deps.clock(),
                                                  deps.footage_retention, body.deleted_at, body.unplanned)
        except footage.Refused as exc:
            raise HTTPException(409, detail=str(exc)) from None
        except footage.BadTime as exc:
            raise RequestValidationError([{"loc": ("body", "deleted_at"), "msg": str(exc),
                                           "type": "value_error"}]) from None
        if done is None:
            raise HTTPException(404, detail=f"no incident {incident_id} with body-worn camera footage")
        return done

    @router.post("/v1/footage/{incident_id}/deleted/retract", tags=["footage"])
    async def footage_deletion_retracted(incident_id: UUID, body: Retraction, who: Principal = officer) -> dict:
        """Retract a deletion recorded in error (the wrong incident, or the clip found after
        all): the record is kept among the retractions with who retracted it and why, the
        audit says so, and the footage reads as it stands again, so it can be evidence or be
        recorded deleted anew. 404 when no deletion is recorded."""
        done = await handlers.footage_retracted(deps.pool(), incident_id, who, body.reason, deps.clock(),
                                                deps.footage_retention)
        if done is None:
            raise HTTPException(404, detail=f"no deletion recorded for incident {incident_id}")
        return done


def _admin_routes(router: APIRouter, deps: Deps) -> None:
    operations = Depends(require(Role.OPERATIONS, settings=deps.auth))

    @router.put("/v1/workforce/{period}", tags=["workforce"])
    async def put_workforce(body: Workforce, period: str = Path(pattern=periods.PERIOD_PATTERN),
                            who: Principal = operations) -> dict:
        """Load staff in post for a period: for each organisation in the body, replacing its
        earlier load for the period; other organisations' loads are kept."""
        first = _month("period", period)
        if error := duplicates(body.rows):
            raise error
        if others := sorted({r.organisation for r in body.rows if not who.acts_for(r.organisation)}):
            # Another trust's staff in post are what its rates are worked out on.
            raise HTTPException(403, detail=f"this token does not act for {', '.join(others)}: nothing was loaded")
        await adapters.put_workforce(deps.pool(), period, first, [r.model_dump(mode="json") for r in body.rows],
                                     who.subject)
        return {"period": period, "rows": len(body.rows), "headcount": sum(r.headcount for r in body.rows),
                "organisations": sorted({r.organisation for r in body.rows})}

    @router.delete("/v1/workforce/{period}/{organisation}", tags=["workforce"])
    async def delete_workforce(organisation: Annotated[OdsCode, Path(description="ODS code, either case.")],
                               period: str = Path(pattern=periods.PERIOD_PATTERN),
                               who: Principal = operations) -> dict:
        """Withdraw one organisation's load for a period, loaded by mistake (a load replaces only
        the organisations it holds, so no later load takes it away)."""
        _month("period", period)
        if not who.acts_for(organisation):
            raise HTTPException(403, detail=f"this token does not act for {organisation.upper()}")
        removed = await adapters.delete_workforce(deps.pool(), period, organisation, who.subject)
        if not removed:
            raise HTTPException(404, detail=f"no workforce loaded for {organisation} in {period}")
        return {"period": period, "organisation": organisation, "rows": removed}

    @router.put("/v1/objectives/{metric}", tags=["objectives"])
    async def put_objective(body: ObjectiveBody, metric: str = Path(description=f"One of {', '.join(HEADLINE)}."),
                            who: Principal = operations) -> dict:
        """Set the board's target for a headline figure (one for every organisation's board)."""
        if who.organisations is not None:
            # Every trust's board is judged on it: not one trust's to set for the others.
            raise HTTPException(403, detail="objectives apply to every organisation's board: set them with a token"
                                            " that acts for every organisation (no orgs)")
        if metric not in HEADLINE:
            raise HTTPException(404, detail=f"no headline figure {metric!r}; one of {', '.join(HEADLINE)}")
        if body.months is None and metric in GROWS_WITH_PERIOD:
            raise _invalid("months", f"{metric} grows with the length of the period: say what length of period"
                           " the target is for, in months (1, 3, 12...)", "body")
        if body.months is not None and metric not in GROWS_WITH_PERIOD:
            raise _invalid("months", f"{metric} does not depend on the length of the period: leave months out", "body")
        if problem := target_problem(metric, body.target):
            raise _invalid("target", problem, "body")
        await adapters.put_objective(deps.pool(), Objective(metric, body.target, body.direction, body.tolerance,
                                                            body.months), who.subject)
        return {"metric": metric, **body.model_dump(mode="json")}

    @router.get("/v1/objectives", tags=["objectives"],
                dependencies=[Depends(require(Role.BOARD_VIEWER, Role.OPERATIONS, settings=deps.auth))])
    async def get_objectives() -> dict:
        return {"objectives": [vars(o) | {"direction": o.direction.value} for o in await adapters.objectives(deps.pool())]}


def to_csv(body: dict[str, Any]) -> str:
    """One line per published cell: row, section, measure, dimension, value, suppressed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "row", "measure", "dimension", "value", "suppressed"])
    for row in [*body["months"], {"month": "total", **body["totals"]}]:
        for measure, dimension, value in _cells(row):
            hidden = isinstance(value, dict)
            writer.writerow([body["period"], row["month"], measure, _inert(dimension),
                             "" if hidden or value is None else value, "true" if hidden else "false"])
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(text: str) -> str:
    """A site name is free text from reports: one beginning like a formula would run as one
    when the board opens the file in a spreadsheet, so it is marked as text."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cells(row: dict[str, Any]) -> list[tuple[str, str, Any]]:
    cells = [("incidents", "all", row["incidents"])]
    cells += [("incidents_by_site", site, v) for site, v in row["incidents_by_site"].items()]
    cells += [(m, d, v) for m, dims in row["breakdowns"].items() for d, v in dims.items()]
    for name, value in row["indicators"].items():
        if isinstance(value, dict) and "suppressed" not in value:
            cells += [(name, d, v) for d, v in value.items()]
        elif not isinstance(value, bool):
            cells.append((name, "", value))
    return cells


def subscribe(broker: KafkaBroker, consumer: EventConsumer, group_id: str, max_records: int,
              copies: int = 1) -> None:
    """Consume incidents and sanctions in batches; offsets commit after the facts are stored."""
    consume(broker, consumer, INCIDENTS, SANCTIONS, group_id=group_id, max_records=max_records, copies=copies,
            description="Incidents and sanction decisions, folded into reporting's fact tables.")
