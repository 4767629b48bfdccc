"""The `vanda` command: local stack, services, demo, migrations and contracts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")
app = typer.Typer(help="vanda: violence and aggression incident pipeline for NHS trusts.", no_args_is_help=True)
stack_app = typer.Typer(help="Local Apache Kafka and PostgreSQL, started without Docker.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts and their JSON Schema files.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(schemas_app, name="schemas")
from vanda.docs_cli import docs as docs_command  # noqa: E402
app.command("docs")(docs_command)
keys_app = typer.Typer(help="API keys for upstream systems: shown once, stored as a digest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
dlq_app = typer.Typer(help="Dead letters: list them, and re-drive them after a fix.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
from vanda.reporting_cli import app as reporting_app  # noqa: E402
app.add_typer(reporting_app, name="reporting")
from vanda.sanctions_cli import app as sanctions_app  # noqa: E402
app.add_typer(sanctions_app, name="sanctions")
console = Console()

Home = Annotated[Path, typer.Option("--home", envvar="VANDA_HOME", help="State folder for the local stack.")]
Docker = Annotated[bool, typer.Option("--docker", envvar="VANDA_DOCKER",
                                      help="Start Kafka and PostgreSQL in Docker containers (testcontainers).")]
DEFAULT_HOME = Path(".vanda")
SERVICES = ("intake", "sanctions", "reporting")


@contextmanager
def _explained(what: str, home: Path) -> Iterator[None]:
    """A start that failed for a reason the operator can act on: said in a few lines, with
    where to look and how to clean up, not as a traceback."""
    from vanda.fleet import StartFailed
    from vanda.stack import StackError

    try:
        yield
    except (StackError, StartFailed) as failed:
        console.print(f"{what} failed: {failed}", style="red", markup=False, highlight=False)
        console.print(f"logs: {home / 'logs'}; `vanda down --home {home}` stops whatever did start")
        raise typer.Exit(1) from None


@stack_app.command("up")
def stack_up(home: Home = DEFAULT_HOME, docker: Docker = False) -> None:
    """Start Kafka and PostgreSQL (or use KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL) and wait for them."""
    from vanda import stack

    with _explained("starting Kafka and PostgreSQL", home.resolve()):
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
def migrate(
    home: Home = DEFAULT_HOME,
    service: Annotated[list[str] | None, typer.Option(
        help="Only this service's schema (repeat for several), as that service's own database user; default:"
             " every service's.")] = None,
    owner: Annotated[str | None, typer.Option(
        help="Then give the schema, and everything in it, to this database role: once, as an administrator,"
             " when a deployment moves to a user per service. Needs exactly one --service.")] = None,
) -> None:
    """Apply every service's database migrations to DATABASE_URL, else to the local stack's database."""
    from vanda.runtime.migrate import apply

    if unknown := sorted(set(service or ()) - set(SERVICES)):
        raise typer.BadParameter(f"{', '.join(unknown)}: must be one of {', '.join(SERVICES)}", param_hint="--service")
    if owner is not None and len(service or ()) != 1:
        raise typer.BadParameter("a role owns one service's schema: name that service once", param_hint="--service")
    url = _database_url(home)
    for name in service or SERVICES:
        console.print(f"{name}: {apply(url, name)} migration(s) applied")
        if owner is not None:
            _hand_over(url, name, owner)


def _hand_over(url: str, service: str, owner: str) -> None:
    import psycopg

    from vanda.runtime.migrate import hand_over

    try:
        given = hand_over(url, service, owner)
    except (LookupError, psycopg.Error) as refused:  # no such role, or not this user's to give
        console.print(f"[red]{service}: owners left as they were: {refused}[/red]")
        if isinstance(refused, psycopg.errors.InsufficientPrivilege):
            console.print(_hand_over_hint(str(refused), owner))
        raise typer.Exit(1) from None
    schemas = ", ".join(f"schema {schema} and {n} object(s) in it" for schema, n in given.items())
    console.print(f"{service}: {schemas} now owned by {owner}")


def _hand_over_hint(refusal: str, owner: str) -> str:
    """What to do about a hand-over PostgreSQL refused for want of a right, by the right."""
    if "permission denied for database" in refusal:
        # Giving a schema away needs CREATE on the database, as making one does.
        return "as an administrator, first: GRANT CREATE ON DATABASE <this database> TO <this user>; or run this" \
               " as a superuser"
    if "must be owner of" in refusal:
        # Only the owner gives an object away: one another user made (a rebuild run as them) is theirs.
        return "it belongs to another user: run this as a superuser, or as that user"
    # Only a superuser, or a member of the role, may give it anything (managed PostgreSQL
    # services have no superuser to ask).
    return f"as an administrator, first: GRANT {owner} TO <this user>; or run this as a superuser"


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
    from vanda import devsecrets, fleet, stack
    from vanda.runtime.migrate import apply_all

    home = home.resolve()
    with _explained("starting Kafka and PostgreSQL", home), console.status("starting Kafka and PostgreSQL"):
        info = stack.up(home, docker=docker)
    apply_all(info.database_url)
    secrets = devsecrets.load(home)
    with _explained("starting the services", home), console.status("starting intake, sanctions and reporting"):
        endpoints = fleet.start(home, info, env=secrets)
    values = {f"{e.name.upper()}_URL": e.url for e in endpoints}
    values |= {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers, "DATABASE_URL": info.database_url}
    if _own_database() and not docker:
        console.print("DATABASE_URL names a database of your own: no development key (one for any source) is"
                      " made in it; create each upstream system's with `vanda keys create`.")
    else:
        values["INTAKE_API_KEY"] = _development_key(home, info.database_url)
    text = "".join(f"{k}={v}\n" for k, v in values.items())
    (home / "endpoints.env").write_text(text)
    (home / "endpoints.env").chmod(0o600)
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
    docker: Docker = False,
) -> None:
    """Run `up`, then stream a synthetic feed of incidents and show the board's counts."""
    from vanda import demo as demo_feed, devsecrets
    from vanda.runtime.auth import Role, sign

    if _own_database():
        console.print("demo streams synthetic incidents: run it on the local stack (unset DATABASE_URL), not into"
                      " a database of your own")
        raise typer.Exit(2)
    endpoints = up(home, docker)
    token = sign(devsecrets.load(home.resolve())["AUTH_JWT_SECRET"], "demo", [Role.BOARD_VIEWER])
    demo_feed.run(endpoints, incidents, months, console, token)


@app.command()
def bench(
    incidents: Annotated[int, typer.Option(min=2, help="Synthetic incidents for the limit and the pipeline.")] = 200_000,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here as JSON.")] = None,
    naive_incidents: Annotated[int, typer.Option(min=1, help="Cap for the naive peer (it is slow).")] = 5000,
    http_incidents: Annotated[int, typer.Option(min=1, help="Single POSTs for HTTP throughput and latency.")] = 5000,
    http_concurrency: Annotated[int, typer.Option(min=1, help="Concurrent HTTP clients.")] = 16,
    latency_seconds: Annotated[float, typer.Option(min=1, help="How long the paced latency run lasts.")] = 20,
    latency_rate: Annotated[float, typer.Option(min=1, help="Incidents per second in the latency run.")] = 500,
    latency_via: Annotated[str, typer.Option(help="Submit the latency run by HTTP 'batch' or 'single'.")] = "batch",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic incidents.")] = 2024,
    pipeline_timeout: Annotated[float, typer.Option(help="Fail if the pipeline has not applied everything in "
                                                         "this many seconds.")] = 3600,
    phases: Annotated[str, typer.Option(help="Comma-separated subset of: limit, naive, pipeline, http, latency, "
                                              "rebuild.")] = "limit,naive,pipeline,http,latency,rebuild",
    home: Annotated[Path | None, typer.Option("--home", help="Reuse the stack running in this home instead of "
                                                            "starting a fresh one.")] = None,
) -> None:
    """Measure the pipeline against raw Kafka/PostgreSQL and a naive peer; HTTP, latency, rebuild, memory."""
    from vanda.bench.run import PHASE_NAMES, Settings, main

    chosen = tuple(p.strip() for p in phases.split(",") if p.strip())
    if unknown := [p for p in chosen if p not in PHASE_NAMES]:
        raise typer.BadParameter(f"unknown phase(s): {', '.join(unknown)}", param_hint="--phases")
    if latency_via not in ("batch", "single"):
        raise typer.BadParameter("must be batch or single", param_hint="--latency-via")
    settings = Settings(incidents=incidents, naive_incidents=naive_incidents, http_incidents=http_incidents,
                        http_concurrency=http_concurrency, latency_seconds=latency_seconds, latency_rate=latency_rate,
                        latency_via=latency_via, seed=seed, home=home, json_path=json_path, phases=chosen,
                        pipeline_timeout=pipeline_timeout)
    raise typer.Exit(main(settings, console))


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
    return _server(home, "KAFKA_BOOTSTRAP_SERVERS", "kafka", "address")


@dlq_app.command("list")
def dlq_list(home: Home = DEFAULT_HOME,
             topic: Annotated[list[str] | None, typer.Option(help="Dead-letter topic(s); default all.")] = None) -> None:
    """Show every dead letter: where it came from, why, its ref for replay, and whether a replay sent it."""
    import asyncio

    from rich.table import Table

    from vanda import dlq

    letters = _known_topic(lambda: asyncio.run(
        dlq.list_letters(_bootstrap(home), topic or dlq.DLQ_TOPICS, missing_ok=not topic)))
    table = Table(title=f"{len(letters)} dead letter(s), {sum(not d.passed for d in letters)} waiting"
                        " (not replayed or dismissed)")
    for column in ("topic", "ref", "source", "reason", "event type", "error", "done"):
        table.add_column(column, overflow="fold")
    for d in letters:
        done = "yes" if d.replayed else "passed, never sent: read it at its source" if d.passed else ""
        table.add_row(d.topic, d.ref, d.source, d.reason, d.event_type, d.error, done)
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(topic: Annotated[str, typer.Argument(help="Dead-letter topic, e.g. vanda.incidents.v1.dlq")],
               home: Home = DEFAULT_HOME,
               only: Annotated[list[str] | None, typer.Option(
                   help="partition:offset refs, replayed whether or not replayed before; default every letter"
                        " no replay has sent yet.")] = None,
               again: Annotated[bool, typer.Option(help="Every letter, those replayed before too.")] = False,
               ) -> None:
    """Publish dead letters back to their source topic, each once (consumers skip what they already applied)."""
    import asyncio

    from vanda import dlq

    _dead_letter_topic(topic)
    done = _known_topic(lambda: asyncio.run(dlq.replay(_bootstrap(home), topic, set(only) if only else None, again)))
    console.print(f"replayed {done.sent} dead letter(s) to {topic.removesuffix('.dlq')}"
                  + (f"; {done.already} replayed before, not sent again (--again sends them)" if done.already else ""))
    for letter in done.left:
        console.print(f"left {letter.ref}: sent without its value (too large); read it at {letter.source}")
    if done.unknown:
        console.print(f"no such letter on {topic}: {', '.join(done.unknown)}")
        raise typer.Exit(1)


@dlq_app.command("dismiss")
def dlq_dismiss(topic: Annotated[str, typer.Argument(help="Dead-letter topic, e.g. vanda.intake.submissions.v1.dlq")],
                home: Home = DEFAULT_HOME) -> None:
    """Mark every letter now on a topic as dealt with, sending none: for letters no replay can
    fix (a refused report its source must send again). They stop counting as waiting."""
    import asyncio

    from vanda import dlq

    _dead_letter_topic(topic)
    done = _known_topic(lambda: asyncio.run(dlq.dismiss(_bootstrap(home), topic)))
    console.print(f"dismissed {done} waiting dead letter(s) on {topic}; `vanda dlq replay --only` still sends one")


def _dead_letter_topic(topic: str) -> None:
    if not topic.endswith(".dlq"):
        raise typer.BadParameter("must be a dead-letter topic ending in .dlq", param_hint="topic")


def _known_topic(run: Callable[[], T]) -> T:
    """`run`, with a topic the broker does not have said plainly (exit 2), not a traceback."""
    from vanda import dlq

    try:
        return run()
    except dlq.UnknownTopic as e:
        console.print(f"no topic {e.args[0]} on the broker (it creates none by itself): check the name")
        raise typer.Exit(2) from None


@app.command()
def token(
    role: Annotated[list[str], typer.Option(help="sanction_approver, clinical_lead, appeals_officer, operations, "
                                                 "board_viewer, correspondence, police_liaison, footage_officer")],
    subject: Annotated[str, typer.Option(help="Who the token is for (their staff id).")],
    home: Home = DEFAULT_HOME,
    ttl: Annotated[int, typer.Option(min=1, help="Seconds the token is valid (at most AUTH_MAX_TOKEN_LIFETIME_S,"
                                                 " 12 hours unless set: the services refuse longer).")] = 3600,
    org: Annotated[list[str] | None, typer.Option(help="An organisation (ODS code) the person acts for; repeat for"
                                                       " several. None: every organisation.")] = None,
) -> None:
    """Development signer: print a bearer token for the local stack's secret."""
    import os

    from vanda import devsecrets
    from vanda.runtime.auth import AuthSettings, Role, sign

    unknown = [r for r in role if r not in Role.__members__.values()]
    if unknown:
        raise typer.BadParameter(f"unknown role(s): {', '.join(unknown)}", param_hint="--role")
    if ttl > (longest := AuthSettings().max_token_lifetime_s):
        raise typer.BadParameter(f"{ttl} is longer than the services accept (AUTH_MAX_TOKEN_LIFETIME_S, {longest})",
                                 param_hint="--ttl")
    # Without a stack's secrets, loading them would make new ones, which nothing running knows.
    if not os.environ.get("AUTH_JWT_SECRET") and not (home.resolve() / "dev-secrets.env").exists():
        raise typer.BadParameter(f"no stack's secrets in {home}: run `vanda up` first, or set AUTH_JWT_SECRET",
                                 param_hint="--home")
    print(sign(devsecrets.load(home.resolve())["AUTH_JWT_SECRET"], subject, role, ttl, org or None))


def _database_url(home: Path) -> str:
    """DATABASE_URL if set, else the local stack's database in `home`."""
    return _server(home, "DATABASE_URL", "postgres", "url")


def _server(home: Path, variable: str, component: str, field: str) -> str:
    """A connection string from the environment, else from the running local stack."""
    import os

    from vanda import stack

    if value := os.environ.get(variable):
        return value
    state = stack.status(home.resolve()).get(component, {})
    if not state.get("running") or not state.get(field):
        raise typer.BadParameter(f"no {component}: set {variable} or run `vanda up`", param_hint="--home")
    return str(state[field])


def _with_db(url: str, work):  # noqa: ANN001, ANN202 - a small bridge from sync CLI to asyncpg
    import asyncio

    import asyncpg

    from vanda.runtime.transport import TransportSettings, postgres_ssl

    async def run():  # noqa: ANN202
        # DATABASE_SSL as the services take it; an sslmode in the URL holds when it is unset.
        conn = await asyncpg.connect(url, ssl=postgres_ssl(TransportSettings()) or None)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _own_database() -> bool:
    """Whether `up` runs against a PostgreSQL named by DATABASE_URL rather than the stack's own."""
    import os

    return bool(os.environ.get("DATABASE_URL"))


def _development_key(home: Path, database_url: str) -> str:
    """A key for any source on a development stack, kept in the home so `up` reuses it."""
    from vanda import apikeys

    path = home / "dev-api-key"
    if path.exists() and _with_db(database_url, lambda c: apikeys.authenticate(c, path.read_text().strip())):
        return path.read_text().strip()
    key = _with_db(database_url, lambda c: apikeys.create(c, "development (any source)", [apikeys.ANY_SOURCE]))
    path.write_text(key)
    path.chmod(0o600)
    return key


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Option(help="Which upstream system this key is for.")],
                source: Annotated[list[str], typer.Option(help="source_system names it may submit for.")],
                home: Home = DEFAULT_HOME) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    from vanda import apikeys

    key = _with_db(_database_url(home), lambda c: apikeys.create(c, name, source))
    console.print("Store this key now; it cannot be shown again:")
    print(key)


@keys_app.command("list")
def keys_list(home: Home = DEFAULT_HOME) -> None:
    """List keys (never their secrets)."""
    from rich.table import Table

    from vanda import apikeys

    table = Table("key id", "name", "sources", "created", "revoked")
    for row in _with_db(_database_url(home), apikeys.listing):
        table.add_row(row["key_id"], row["name"], ", ".join(row["sources"]), str(row["created_at"])[:19],
                      str(row["revoked_at"] or "")[:19])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id shown by `vanda keys list`.")],
                home: Home = DEFAULT_HOME) -> None:
    """Revoke a key at once: its next request gets 401."""
    from vanda import apikeys

    if not _with_db(_database_url(home), lambda c: apikeys.revoke(c, key_id)):
        raise typer.BadParameter("no live key with that id", param_hint="key_id")
    console.print(f"revoked {key_id}")
