"""The `leadflow` command: run the local stack, publish simulated traffic, manage topics."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="leadflow: the lead-lifecycle platform", no_args_is_help=True)
stack = typer.Typer(help="The local stack under var/: broker, store, services, API", no_args_is_help=True)
topics = typer.Typer(help="Kafka topics of the registry", no_args_is_help=True)
app.add_typer(stack, name="stack")
app.add_typer(topics, name="topics")
console = Console()


@stack.command("up")
def stack_up(infra_only: bool = typer.Option(False, help="Only the broker and the store")) -> None:
    """Start everything (idempotent) and print the URLs and the dev API key."""
    from leadflow.devstack import StackConfig, StackError, up

    config = StackConfig.from_env()
    try:
        env = up(config, infra_only=infra_only, say=lambda line: console.print(f"  {line}"))
    except StackError as exc:
        console.print(f"[red]failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"\nKafka   {config.kafka_bootstrap}\nStore   {config.mongo_url}")
    if not infra_only:
        key = env["LEADFLOW_API_KEYS"].split(",")[0].split("=")[0]
        console.print(f"API     {config.api_url}   (OpenAPI: {config.api_url}/docs)\n"
                      f"API key {key}   (header X-Api-Key; all keys in LEADFLOW_API_KEYS / var/leadflow.env)")


@stack.command("down")
def stack_down() -> None:
    """Stop every process the stack started, and any test stack left under var/."""
    from leadflow.devstack import StackConfig, down, down_leftovers

    config = StackConfig.from_env()
    down(config, say=lambda line: console.print(f"  {line}"))
    down_leftovers(config, say=lambda line: console.print(f"  {line}"))


def _readiness(url: str) -> str:
    """A worker's or the API's /readyz in one cell: ready, or what it says is missing."""
    import httpx

    try:
        body = httpx.get(url, timeout=2).json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"[red]no answer ({type(exc).__name__})[/red]"
    if body.get("status") == "ready":
        return f"[green]ready[/green] {len(body.get('partitions', ()))} partitions" if "partitions" in body \
            else "[green]ready[/green]"
    return "[red]" + "; ".join(body.get("problems", ["not ready"])) + "[/red]"


def _last_error(log: str) -> str:
    """The newest ERROR or WARNING line of a log (its message only), or empty."""
    path = Path(log)
    if not path.exists():
        return ""
    for line in reversed(path.read_text(errors="replace").splitlines()[-2000:]):
        if "ERROR" in line or "WARNING" in line:
            return line[-80:]
    return ""


@stack.command("status")
def stack_status() -> None:
    """Every component: pid, readiness, last error; then consumer lag per group and topic."""
    from leadflow.devstack import StackConfig, status

    config = StackConfig.from_env()
    rows = status(config)
    table = Table("component", "pid", "ready", "last error or warning", "log")
    for name, pid, log in rows:
        if not pid:
            ready = ""
        elif name == "api":
            ready = _readiness(f"{config.api_url}/readyz")
        elif name in config.worker_ports:
            ready = _readiness(f"http://127.0.0.1:{config.worker_ports[name]}/readyz")
        else:
            ready = "[green]running[/green]"
        table.add_row(name, str(pid) if pid else "[red]down[/red]", ready, _last_error(log), log)
    console.print(table)
    if not rows[0][1]:
        return  # no broker, no lag to show
    from leadflow.runtime.lag import consumer_lag, registry_groups

    lag = Table("consumer group", "topic", "committed", "end", "lag")
    totals: dict[tuple[str, str], list[int]] = {}
    for row in consumer_lag(config.kafka_bootstrap, registry_groups()):
        total = totals.setdefault((row.group, row.topic), [0, 0, 0])
        total[0] += row.committed
        total[1] += row.end
        total[2] += row.lag
    for (group, topic), (committed, end, behind) in totals.items():
        lag.add_row(group, topic, str(committed), str(end), f"[red]{behind}[/red]" if behind else "0")
    console.print(lag)


@topics.command("create")
def topics_create(
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="LEADFLOW_KAFKA_BOOTSTRAP"),
    prefix: str = typer.Option("", envvar="LEADFLOW_TOPIC_PREFIX"),
    partitions: int = typer.Option(4, envvar="LEADFLOW_PARTITIONS"),
) -> None:
    """Create every registered topic that is missing."""
    from leadflow.runtime.admin import ensure_topics

    for name in ensure_topics(bootstrap, prefix=prefix, partitions=partitions):
        console.print(f"created {name}")


@app.command()
def simulate(
    tenant: str = typer.Option("demo"),
    rate: float = typer.Option(50.0, min=0.1, help="events per second"),
    duration: float = typer.Option(60.0, min=0.1, help="seconds"),
    seed: int = typer.Option(7),
    truth: Path = typer.Option(Path("var/sim-truth.json"), help="where to write the ground truth"),
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="LEADFLOW_KAFKA_BOOTSTRAP"),
    prefix: str = typer.Option("", envvar="LEADFLOW_TOPIC_PREFIX"),
    api_url: str | None = typer.Option(None, help="post to the HTTP API instead of Kafka"),
    api_key: str | None = typer.Option(None, envvar="LEADFLOW_API_KEY"),
) -> None:
    """Publish a realistic, seeded stream for a car-dealer group, with its ground truth."""
    from leadflow.simulate.runner import run

    truth.parent.mkdir(parents=True, exist_ok=True)
    report = run(bootstrap_servers=bootstrap, tenant=tenant, rate=rate, duration=duration, seed=seed,
                 truth_path=truth, topic_prefix=prefix, api_url=api_url, api_key=api_key)
    console.print(report)


@app.command()
def rescore(
    tenant: str = typer.Option(..., help="the tenant whose persons are re-scored"),
    wait: bool = typer.Option(True, help="wait until every person is re-scored, showing progress"),
    timeout: float = typer.Option(1800.0, min=1.0, help="seconds to wait at most"),
) -> None:
    """Re-score every person of a tenant from stored state after a rule change, emitting only real changes.

    The running scoring workers do the work (they are the only writers of scores, and hold the rules in
    force: restart them after editing the rules file, then run this). Store settings come from the
    LEADFLOW_* environment, as for the services."""
    import asyncio
    import time
    import uuid

    from leadflow.runtime import store
    from services.scoring.adapters.repository import RescoreReplaced
    from services.scoring.bootstrap import build_for_reads
    from services.scoring.settings import ScoringSettings

    settings = ScoringSettings()
    request_id = uuid.uuid4().hex[:12]

    async def go() -> int:
        client, db = store.connect(settings, app_name="leadflow-cli")
        try:
            service = build_for_reads(db, settings.scoring_rules_file)
            rules = service.rules.for_tenant(tenant)
            total = await service.request_rescore(tenant, request_id)
            console.print(f"rescore {request_id}: {total} persons of {tenant} queued for the scoring timer (rules {rules.ref})",
                          soft_wrap=True)
            if not wait or not total:
                return 0
            deadline = time.monotonic() + timeout
            while True:
                try:
                    waiting, changed = await service.rescore_progress(tenant, request_id)
                except RescoreReplaced as replaced:
                    console.print(f"rescore {request_id} was replaced by a later one of {tenant} ({replaced.by}), "
                                  "which re-scores the same persons: follow that one", soft_wrap=True)
                    return 0
                console.print(f"  {total - waiting}/{total} re-scored, {changed} changes emitted", soft_wrap=True)
                if not waiting:
                    return 0
                if time.monotonic() > deadline:
                    console.print(f"[red]{waiting} persons still waiting after {timeout:g} s: is a scoring worker running?[/red]")
                    return 1
                await asyncio.sleep(2.0)
        finally:
            await client.close()

    raise typer.Exit(asyncio.run(go()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
