"""The `vanda` command: local stack, services, demo, migrations and contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="vanda: violence and aggression incident pipeline for NHS trusts.", no_args_is_help=True)
stack_app = typer.Typer(help="Local Apache Kafka and PostgreSQL, started without Docker.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts and their JSON Schema files.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(schemas_app, name="schemas")
dlq_app = typer.Typer(help="Dead letters: list them, and re-drive them after a fix.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console()

Home = Annotated[Path, typer.Option("--home", envvar="VANDA_HOME", help="State folder for the local stack.")]
Docker = Annotated[bool, typer.Option("--docker", envvar="VANDA_DOCKER",
                                      help="Start Kafka and PostgreSQL in Docker containers (testcontainers).")]
DEFAULT_HOME = Path(".vanda")
SERVICES = ("intake", "sanctions", "reporting")


@stack_app.command("up")
def stack_up(home: Home = DEFAULT_HOME, docker: Docker = False) -> None:
    """Start Kafka and PostgreSQL (or use KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL) and wait for them."""
    from vanda import stack

    info = stack.up(home.resolve(), docker=docker)
    console.print(f"KAFKA_BOOTSTRAP_SERVERS={info.kafka_bootstrap_servers}\nDATABASE_URL={info.database_url}")


@stack_app.command("down")
def stack_down(home: Home = DEFAULT_HOME) -> None:
    """Stop the Kafka and PostgreSQL processes this home started."""
    from vanda import stack

    stack.down(home.resolve())
    console.print("stack stopped")


@stack_app.command("status")
def stack_status(home: Home = DEFAULT_HOME) -> None:
    """Show whether each component runs, where, and its pid."""
    from vanda import stack

    for name, state in stack.status(home.resolve()).items():
        console.print(f"{name}: {state}")


@stack_app.command("fetch")
def stack_fetch() -> None:
    """Download the Kafka broker jars into the per-user cache (once)."""
    from vanda.stack.kafka import fetch_jars

    console.print(f"Kafka jars in {fetch_jars()}")


@app.command()
def migrate() -> None:
    """Apply every service's database migrations to DATABASE_URL."""
    from vanda.runtime.migrate import apply_all
    from vanda.runtime.settings import CommonSettings

    for service, count in apply_all(CommonSettings().database_url).items():
        console.print(f"{service}: {count} migration(s) applied")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="intake, sanctions or reporting")],
    host: str = "127.0.0.1",
    port: int = 8000,
    graceful_timeout: Annotated[int, typer.Option(help="Seconds to finish in-flight work on SIGTERM.")] = 20,
) -> None:
    """Run one service in the foreground."""
    from vanda.runtime.logs import configure
    from vanda.runtime.serve import serve as run_server

    if service not in SERVICES:
        raise typer.BadParameter(f"must be one of {', '.join(SERVICES)}", param_hint="service")
    configure()
    run_server(f"services.{service}.bootstrap:create_app", host=host, port=port, graceful_timeout=graceful_timeout)


@app.command()
def up(home: Home = DEFAULT_HOME, docker: Docker = False) -> dict[str, str]:
    """Start the stack, apply migrations, start the three services; write endpoints.env."""
    from vanda import fleet, stack
    from vanda.runtime.migrate import apply_all

    home = home.resolve()
    with console.status("starting Kafka and PostgreSQL"):
        info = stack.up(home, docker=docker)
    apply_all(info.database_url)
    with console.status("starting intake, sanctions and reporting"):
        endpoints = fleet.start(home, info)
    values = {f"{e.name.upper()}_URL": e.url for e in endpoints}
    values |= {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers, "DATABASE_URL": info.database_url}
    text = "".join(f"{k}={v}\n" for k, v in values.items())
    (home / "endpoints.env").write_text(text)
    console.print(text + f"(written to {home / 'endpoints.env'})")
    return values


@app.command()
def down(home: Home = DEFAULT_HOME) -> None:
    """Stop the services, then the stack, that `vanda up` started."""
    from vanda import fleet, stack

    home = home.resolve()
    stopped = fleet.stop(home)
    stack.down(home)
    console.print(f"stopped {', '.join(stopped) or 'no services'} and the stack")


@app.command()
def demo(
    home: Home = DEFAULT_HOME,
    incidents: Annotated[int, typer.Option(min=1, help="How many incidents to stream.")] = 600,
    months: Annotated[int, typer.Option(min=1, max=24, help="Months the incidents spread over.")] = 6,
) -> None:
    """Run `up`, then stream a synthetic feed of incidents and show the board's counts."""
    from vanda import demo as demo_feed

    endpoints = up(home)
    demo_feed.run(endpoints, incidents, months, console)


@schemas_app.command("export")
def schemas_export() -> None:
    """Regenerate schemas/json from the pydantic contracts."""
    from schemas.export import write

    for path in write():
        console.print(str(path))


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail if schemas/json differs from the contracts."""
    from schemas.export import stale

    if names := stale():
        console.print(f"out of date: {', '.join(names)}; run `vanda schemas export`")
        raise typer.Exit(1)
    console.print("schemas up to date")



def _bootstrap(home: Path) -> str:
    """KAFKA_BOOTSTRAP_SERVERS if set, else the broker of the local stack in `home`."""
    import os

    from vanda import stack

    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return servers
    kafka = stack.status(home.resolve()).get("kafka", {})
    if not kafka.get("running") or not kafka.get("address"):
        raise typer.BadParameter("no broker: set KAFKA_BOOTSTRAP_SERVERS or run `vanda up`", param_hint="--home")
    return str(kafka["address"])


@dlq_app.command("list")
def dlq_list(home: Home = DEFAULT_HOME,
             topic: Annotated[list[str] | None, typer.Option(help="Dead-letter topic(s); default all.")] = None) -> None:
    """Show every dead letter: where it came from, why, and its ref for replay."""
    import asyncio

    from rich.table import Table

    from vanda import dlq

    letters = asyncio.run(dlq.list_letters(_bootstrap(home), topic or dlq.DLQ_TOPICS))
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("topic", "ref", "source", "reason", "event type", "error"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(d.topic, d.ref, d.source, d.reason, d.event_type, d.error)
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(topic: Annotated[str, typer.Argument(help="Dead-letter topic, e.g. vanda.incidents.v1.dlq")],
               home: Home = DEFAULT_HOME,
               only: Annotated[list[str] | None, typer.Option(help="partition:offset refs; default all.")] = None,
               ) -> None:
    """Publish dead letters back to their source topic (consumers skip what they already applied)."""
    import asyncio

    from vanda import dlq

    if not topic.endswith(".dlq"):
        raise typer.BadParameter("must be a dead-letter topic ending in .dlq", param_hint="topic")
    count = asyncio.run(dlq.replay(_bootstrap(home), topic, set(only) if only else None))
    console.print(f"replayed {count} dead letter(s) to {topic.removesuffix('.dlq')}")
