"""`vanda reporting`: rebuild the reporting projection from the topics and compare it with live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vanda import envfile

app = typer.Typer(help="Reporting: rebuild the board's fact tables from Kafka and compare with live.",
                  no_args_is_help=True)
console = Console()


def _connections(home: Path) -> tuple[str, str]:
    """DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, both from the environment or both from `vanda up`'s
    endpoints.env: one from each could pair production's database with a local stack's topics."""
    found = envfile.settings(home, CONNECTIONS)
    for name, value in found.items():
        if not value:
            raise typer.BadParameter(f"set {name}" + (" too: the connections come both from the environment"
                                                      " or both from `vanda up`" if any(found.values())
                                                      else " or run `vanda up`"), param_hint="--home")
    return found["DATABASE_URL"], found["KAFKA_BOOTSTRAP_SERVERS"]


CONNECTIONS = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")


def _where(database_url: str) -> str:
    """The database's host, port and name: never its password."""
    # The netloc as written, less any credentials: url.port raises on a multi-host URL.
    url = urlsplit(database_url)
    return f"{url.netloc.rpartition('@')[2] or 'localhost'}{url.path}"


@app.command()
def rebuild(
    home: Annotated[Path, typer.Option("--home", envvar="VANDA_HOME", help="State folder of `vanda up`.")] = Path(".vanda"),
    organisation: Annotated[str | None, typer.Option(help="Compare only this organisation (ODS code).")] = None,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Then make the rebuilt tables the live ones (reporting must be stopped); the replaced"
                          " tables are kept in schema reporting_replaced.")] = False,
) -> None:
    """Replay both topics from the beginning into schema reporting_rebuild, then compare it with live."""
    if promote and organisation:
        raise typer.BadParameter("a promotion replaces every organisation's rows: compare them all",
                                 param_hint="--organisation")
    database_url, bootstrap = _connections(home.resolve())
    differences = asyncio.run(_rebuild(database_url, bootstrap, organisation, promote))
    table = Table(title="live projection vs rebuild" + (f" ({organisation})" if organisation else ""))
    for column in ("table", "rows that differ"):
        table.add_column(column)
    for name, n in differences.items():
        table.add_row(name, str(n))
    console.print(table)
    if promote:
        console.print("promoted: the rebuilt tables are live; the replaced ones are in schema reporting_replaced")
    elif any(differences.values()):
        console.print("[red]rebuild differs from the live projection[/red]")
        raise typer.Exit(1)
    else:
        console.print("rebuild is identical to the live projection")


async def _rebuild(database_url: str, bootstrap: str, organisation: str | None, promote: bool) -> dict[str, int]:
    from zoneinfo import ZoneInfo

    from services.reporting import rebuild as replay
    from services.reporting.config import ReportingSettings, projection_settings
    from services.reporting.handlers import Projection
    from vanda.runtime.db import create_pool

    settings = ReportingSettings()
    console.print(f"Kafka {bootstrap}, PostgreSQL {_where(database_url)}, consumer group {settings.consumer_group}")
    if promote:
        await _stopped(bootstrap, settings.consumer_group)
    projection = Projection(ZoneInfo(settings.timezone), settings.police_criteria, schema=replay.REBUILD_SCHEMA,
                            emit=False)
    # No statement timeout: comparing a decade of facts takes longer than a service would wait.
    # Two connections: one holds the rebuild's lock, the other works.
    pool = await create_pool(database_url, max_size=2, command_timeout=None)
    try:
        async with replay.one_at_a_time(pool) as mine:
            if not mine:
                console.print("[red]another rebuild is under way on this database: wait for it to end[/red]")
                raise typer.Exit(1)
            if grant := await replay.grant_needed(pool):
                console.print(f"[red]this database user may not make the rebuild's schemas; as an administrator:"
                              f" {grant}[/red]")
                raise typer.Exit(1)
            await _same_settings(pool, projection_settings(settings), promote)
            if promote:
                await _may_promote(pool, bootstrap, settings.consumer_group)
            return await _replay_and_compare(pool, database_url, bootstrap, projection, organisation, promote,
                                             settings.consumer_group, mine)
    finally:
        await pool.close()


async def _replay_and_compare(pool: Any, database_url: str, bootstrap: str, projection: Any,
                              organisation: str | None, promote: bool, group: str, owner: int) -> dict[str, int]:
    from services.reporting import rebuild as replay

    await replay.fresh_schema(pool)
    columns = (TextColumn("[bold]replaying events"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("replay", total=None)
        try:
            result = await replay.replay(database_url, bootstrap, projection,
                                         lambda done, total: progress.update(task, completed=done, total=total),
                                         owner=owner)
        except replay.HistoryDeleted as gone:
            console.print(f"[red]{gone}[/red]")
            raise typer.Exit(1) from None
    console.print(f"replayed {result.total} record(s): {dict(result.outcomes)}")
    differences = await replay.differences(pool, organisation)
    if promote:
        await _stopped(bootstrap, group)  # still: nobody started it meanwhile
        if past := await replay.consumed_past(bootstrap, group, result.ends):
            where = ", ".join(f"{tp.topic}[{tp.partition}] at {n}" for tp, n in sorted(past.items()))
            console.print(f"[red]not promoted: reporting consumed past the replay while it ran ({where});"
                          " what it applied then would be lost. Stop it and rebuild again.[/red]")
            raise typer.Exit(1)
        await replay.promote(pool, criteria=projection.criteria)
    return differences


async def _same_settings(pool: Any, ours: dict[str, str], promote: bool) -> None:
    """Replay under the settings reporting builds the live projection with, or refuse (exit 2)."""
    from services.reporting import adapters
    from services.reporting import rebuild as replay

    recorded = await adapters.projection_settings(pool)
    if not recorded:
        if promote:
            console.print("[red]not promoted: reporting has not recorded the settings it builds the projection"
                          " under; start it once with this version, stop it, and rebuild again[/red]")
            raise typer.Exit(1)
        console.print("[yellow]reporting has not recorded the settings it builds the projection under: this"
                      " replay uses this shell's[/yellow]")
    if differ := replay.settings_differ(recorded, ours):
        for line in differ:
            console.print(f"[red]{line}[/red]")
        console.print("[red]set them as reporting has them: a replay under others is not the live projection[/red]")
        raise typer.Exit(2)


async def _may_promote(pool: Any, bootstrap: str, group: str) -> None:
    """Refuse, before the replay's work, a promotion that would leave reporting unable to read its
    tables, or whose checks that reporting is stopped look at a group nobody consumes in."""
    from services.reporting import rebuild as replay

    if owner := await replay.foreign_owner(pool):
        console.print(f"[red]not promoted: reporting's tables belong to {owner}; run the rebuild as {owner},"
                      " or reporting could not read the tables it promotes[/red]")
        raise typer.Exit(1)
    if not await replay.has_committed(bootstrap, group):
        console.print(f"[red]not promoted: consumer group {group} has committed nothing on this Kafka, so it is"
                      " not the group reporting consumes in here (REPORTING_CONSUMER_GROUP), or this is not"
                      " reporting's Kafka, or reporting has been stopped longer than Kafka keeps an idle"
                      " group's offsets (offsets.retention.minutes, a week by default): start it, let it"
                      " commit, stop it, and rebuild again[/red]")
        raise typer.Exit(1)


async def _stopped(bootstrap: str, group: str) -> None:
    """Refuse to promote while reporting consumes: its writes would land in tables about to be replaced,
    and it could read past the replay's end."""
    from services.reporting.rebuild import group_members

    members = await group_members(bootstrap, group)
    if members:
        console.print(f"[red]stop reporting before promoting: its consumer group {group} has {members}"
                      " member(s)[/red]")
        raise typer.Exit(1)
