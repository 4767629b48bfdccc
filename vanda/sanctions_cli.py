"""`vanda sanctions simulate`: what a candidate card policy would have decided, beside the running one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from vanda import envfile

app = typer.Typer(help="Sanctions: weigh a change of card policy on the incidents already held.",
                  no_args_is_help=True)
console = Console()
# Rows of the comparison, in the order a reader weighs them.
ROWS = ("people", "people_warned", "people_proposed_a_ban", "people_banned", "yellow_card_1", "yellow_card_2",
        "warning_lapsed", "red_card_proposed", "red_card_proposed:red.extension", "evidence_attached", "ban_imposed",
        "ban_expired", "clinical_review_requested", "safeguarding_referral_requested")


def _database_url(home: Path) -> str:
    """DATABASE_URL from the environment, else from `vanda up`'s endpoints.env."""
    if url := envfile.setting(home, "DATABASE_URL"):
        return url
    raise typer.BadParameter("set DATABASE_URL or run `vanda up`", param_hint="--home")


@app.command()
def simulate(
    policy: Annotated[Path, typer.Option(help="The candidate policy file (TOML, as policy.toml).", exists=True,
                                         dir_okay=False)],
    current: Annotated[Path | None, typer.Option(
        help="The policy it is weighed against; default SANCTIONS_POLICY_FILE, else the shipped one.",
        exists=True, dir_okay=False)] = None,
    approve_all: Annotated[bool, typer.Option(
        "--approve-all", help="Have every proposed red card approved at once (the most each policy could"
                              " exclude); without it, proposals stay proposed.")] = False,
    organisation: Annotated[str | None, typer.Option(
        help="Only this organisation's people and the decisions on its incidents (ODS code); a person's"
             " incidents elsewhere still count towards their ladder.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the comparison here.")] = None,
    home: Annotated[Path, typer.Option("--home", envvar="VANDA_HOME", help="State folder of `vanda up`.")] = Path(".vanda"),
) -> None:
    """Replay every subject's incidents under the running policy and the candidate, and compare.

    Reads sanctions' stored states only: nothing is written or published, no one is carded.
    """
    from services.sanctions.config import SanctionsSettings, load_policy

    try:
        running, candidate = load_policy(current or SanctionsSettings().policy_file), load_policy(policy)
    except ValueError as bad:
        raise typer.BadParameter(str(bad)) from None
    before, after = asyncio.run(_compare(_database_url(home.resolve()), running, candidate, approve_all,
                                         organisation.upper() if organisation else None))
    table = Table(title=f"card policy {running.version} vs {candidate.version}"
                        + (f" at {organisation.upper()}" if organisation else "")
                        + (" (every proposal approved)" if approve_all else " (proposals left proposed)"))
    for column in ("decisions and people", running.version, candidate.version, "change"):
        table.add_column(column, justify="left" if column == "decisions and people" else "right")
    result = {}
    for row in ROWS:
        was, now = before.decisions[row], after.decisions[row]
        result[row] = {"current": was, "candidate": now}
        table.add_row(row, f"{was:,}", f"{now:,}", f"{now - was:+,}")
    for by in ("by_kind_of_perpetrator", "by_vulnerability"):
        was_by, now_by = getattr(before, by), getattr(after, by)
        for who in sorted({k for k, _ in was_by | now_by}):
            for what in ("red_card_proposed", "ban_imposed"):
                was, now = was_by[(who, what)], now_by[(who, what)]
                result[f"{what} ({who})"] = {"current": was, "candidate": now}
                table.add_row(f"{what} ({who})", f"{was:,}", f"{now:,}", f"{now - was:+,}")
    console.print(table)
    if json_path:
        json_path.write_text(json.dumps({"current": running.version, "candidate": candidate.version,
                                         "approve_all": approve_all, "organisation": organisation,
                                         "rows": result}, indent=2))


async def _compare(database_url: str, running, candidate, approve_all: bool,  # noqa: ANN001, ANN202
                   organisation: str | None):
    from services.sanctions import adapters
    from services.sanctions.domain.simulate import Comparison
    from vanda.runtime.db import create_pool

    # Time runs on to today after each subject's last incident: warnings lapse, bans end.
    comparison = Comparison(running, candidate, approve_all, until=datetime.now(UTC), organisation=organisation)
    pool = await create_pool(database_url, max_size=1, command_timeout=None)
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval("SELECT count(*) FROM sanctions.subjects")
            columns = (TextColumn("[bold]replaying subjects"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("replay", total=total)
                async for state in adapters.every_state(conn):
                    comparison.add(state)
                    progress.advance(task)
    finally:
        await pool.close()
    return comparison.before, comparison.after
