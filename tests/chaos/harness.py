"""The crash test: a stream with duplicated event ids goes through the whole pipeline while its
workers are SIGKILLed and the broker and the store are killed and restarted; afterwards every
accepted event must be reflected exactly once at every stage.

Consumes: nothing but the simulator's seed. Runs its own broker, store and workers under
var/test/chaos, on ports of their own, so that killing them hurts nobody else.
Produces: a `ChaosReport` (printed by `make chaos` and asserted by tests/chaos/test_chaos.py).

What "exactly once" means here, stage by stage (at-least-once delivery, idempotent writes):
- identity: one receipt per accepted event id, no more, no fewer; touchpoints.identified carries
  every accepted id (a redelivery may carry one twice: the topic is at-least-once, the stores are not);
- leads: one timeline entry per accepted event id, and the touchpoint counts of the live leads add
  up to the number of accepted events (a replay that counted twice would show here);
- scoring: no person's signals name one event twice, and every signal is an accepted event;
- notify: no two tasks for one triggering event, at most one open task per person, no version of a
  task pushed twice on one channel.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from cryptography.fernet import Fernet
from kafka import KafkaConsumer, TopicPartition
from pymongo import MongoClient

from leadflow.devstack import (
    ROOT, WORKERS, Processes, StackConfig, _alive, down, port_open, index_ferretdb_ids, start_api, start_kafka, start_store,
    start_worker,
)
from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.lag import consumer_lag, registry_groups
from leadflow.sdk import Publisher
from leadflow.simulate.scenario import generate
from schemas.tasks import TaskStatus
from services.notify.domain.merging import DUPLICATE_AFTER_MERGE
from schemas.topics import TOUCHPOINTS_IDENTIFIED

CHAOS_STACK = StackConfig(
    var=ROOT / "var" / "test" / "chaos",
    kafka_port=29092, controller_port=29093, store_port=27019, api_port=28000,
    worker_ports={"identity": 26101, "leads": 26102, "scoring": 26103, "notify": 26104, "identity-2": 26105,
                  "leads-2": 26106, "scoring-2": 26107, "notify-2": 26108},
    mongo_db="chaos",
)


@dataclass(frozen=True)
class ChaosPlan:
    rate: float = 20.0  # events per second offered, duplicates not counted
    events: int = 2400  # distinct events in the stream
    kills_per_worker: int = 2
    restart_broker: bool = True
    restart_store: bool = True
    duplicate_rate: float = 0.10  # share of events sent a second time, with the same event id
    start_after: float = 0.20  # the first fault comes after this share of the stream was published
    resume_limit_s: float = 60.0
    drain_limit_s: float = 300.0
    seed: int = 7
    workers: tuple[str, ...] = WORKERS  # started at the beginning
    partitions: int = 4
    # What happens, in order, spread over the stream: "kill:<worker>" (SIGKILL and restart), "add:<worker>",
    # "remove:<worker>" (SIGTERM: a scale-down), "broker", "store". Empty: the crash schedule of the fields above.
    actions: tuple[str, ...] = ()
    tenant: str | None = None  # two runs with the same tenant, anchor and seed get the same stream
    anchor: datetime | None = None


@dataclass
class Fault:
    target: str  # an action: "kill:<worker>", "add:<worker>", "remove:<worker>", "broker" or "store"
    at_progress: float  # share of the stream published when it struck
    back_after_s: float = float("nan")  # from the kill until the target was up again
    resumed_after_s: float = float("nan")  # from the kill until it processed a record again


@dataclass
class ChaosReport:
    plan: ChaosPlan
    tenant: str
    accepted: int = 0  # distinct event ids the broker acknowledged
    sent: int = 0  # records sent, duplicates and retried batches included
    faults: list[Fault] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    drained_after_s: float = float("nan")
    sustained_per_s: float = float("nan")  # distinct events / (first send until every group caught up)
    outcome: dict = field(default_factory=dict)  # what the stores hold, comparable across runs (`outcome`)
    junk_events: frozenset[str] = frozenset()  # the simulator's truth: events of junk actors

    def lines(self) -> list[str]:
        out = [f"tenant {self.tenant}: {self.accepted} distinct events accepted, {self.sent} records sent "
               f"({self.sent - self.accepted} duplicates and re-sends)"]
        for f in self.faults:
            out.append(f"  {f.target:<17} at {f.at_progress:4.0%} of the stream: up again after "
                       f"{f.back_after_s:5.1f} s, processing again after {f.resumed_after_s:5.1f} s")
        out.append(f"drained {self.drained_after_s:.1f} s after the last event was accepted; "
                   f"{self.sustained_per_s:.1f} events/s from the first send to drained")
        out += [f"  {name:<44} {value}" for name, value in self.counts.items()]
        out += [f"PROBLEM: {p}" for p in self.problems] or ["no loss, no duplicates"]
        return out


# ---- the stream ------------------------------------------------------------------------------------
class StreamPublisher(threading.Thread):
    """Publishes the simulated stream, paced, with duplicates; retries every batch the broker did not
    acknowledge (an upstream system that cares about its events does the same)."""

    def __init__(self, config: StackConfig, tenant: str, plan: ChaosPlan) -> None:
        super().__init__(name="chaos-publisher", daemon=True)
        self.config, self.plan = config, plan
        # Three times the planned stream, so that it is still flowing when the last fault strikes.
        self.sims, _ = generate(tenant, plan.seed, plan.events * 3, plan.anchor or datetime.now(UTC))
        self.accepted: set[str] = set()
        self.sent = 0
        self.published = 0  # distinct events acknowledged so far, in stream order
        self.failed_batches = 0
        self.done = threading.Event()
        self.faults_over = threading.Event()  # the stream goes on past `plan.events` until this is set
        self.error: BaseException | None = None

    @property
    def progress(self) -> float:
        return self.published / max(1, self.plan.events)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the harness
            self.error = exc
        finally:
            self.done.set()

    def _run(self) -> None:
        rng = random.Random(self.plan.seed)
        later: list[tuple[int, object]] = []  # (index to resend after, event): duplicates come a little later
        publisher = Publisher(self.config.kafka_bootstrap, timeout_s=20.0, retries=2, max_block_ms=10_000,
                              request_timeout_ms=10_000, client_id="chaos-publisher")
        tick = 0.2
        per_tick = max(1, round(self.plan.rate * tick))
        started = time.monotonic()
        try:
            for first in range(0, len(self.sims), per_tick):
                if first >= self.plan.events and self.faults_over.is_set():
                    break
                batch = [s.event for s in self.sims[first:first + per_tick]]
                for event in batch:
                    if rng.random() < self.plan.duplicate_rate:
                        later.append((first + rng.randint(per_tick, 20 * per_tick), event))
                due = [e for at, e in later if at <= first]
                later = [(at, e) for at, e in later if at > first]
                self._publish(publisher, batch + due)
                self.published = min(len(self.sims), first + per_tick)
                wait = started + (first + per_tick) / self.plan.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -1.0:  # held up by a fault: go on at the rate, without a burst to catch up
                    started -= wait
            if later:
                self._publish(publisher, [e for _, e in later])
        finally:
            publisher.close()

    def _publish(self, publisher: Publisher, events: list) -> None:
        while True:
            try:
                publisher.publish_many(events)
                break
            except Exception:  # noqa: BLE001 - the broker is away: send the batch again
                self.failed_batches += 1
                time.sleep(1.0)
        self.sent += len(events)
        self.accepted.update(e.event_id for e in events)


# ---- the faults -------------------------------------------------------------------------------------
def sigkill(procs: Processes, name: str, port: int) -> None:
    pid = procs.pid(name)
    if pid is None:
        raise RuntimeError(f"{name} is not running; read {procs.log(name)}")
    os.killpg(pid, signal.SIGKILL)
    # The JVM's listening socket outlives the reaped process by a moment; a restart needs the port.
    if not wait_until(lambda: not _alive(pid) and not port_open(port), 30.0, 0.05):
        raise RuntimeError(f"{name} (pid {pid}) still holds port {port} 30 s after SIGKILL")
    (procs.run_dir / f"{name}.pid").unlink(missing_ok=True)


def processed(config: StackConfig, worker: str) -> float | None:
    """Records this worker process has finished (handled or dead-lettered), from its /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{config.worker_ports[worker]}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("leadflow_processing_seconds_count{") and 'topic="timer:' not in line)


def wait_until(probe: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval_s)
    return False


class Chaos:
    def __init__(self, config: StackConfig, env: dict[str, str], plan: ChaosPlan,
                 say: Callable[[str], None]) -> None:
        self.config, self.env, self.plan, self.say = config, env, plan, say
        self.procs = Processes(config)
        self.running = list(plan.workers)

    def schedule(self, rng: random.Random) -> list[str]:
        if self.plan.actions:
            return list(self.plan.actions)
        targets = [f"kill:{w}" for w in self.plan.workers for _ in range(self.plan.kills_per_worker)]
        rng.shuffle(targets)
        # The broker and the store go down in the middle of the worker kills, not at the edges.
        for name, wanted in (("broker", self.plan.restart_broker), ("store", self.plan.restart_store)):
            if wanted:
                targets.insert(rng.randint(1, len(targets) - 1), name)
        return targets

    def strike(self, action: str, progress: float) -> Fault:
        fault = Fault(action, progress)
        verb, _, target = action.partition(":")
        service = target.split("-")[0]
        if verb == "remove":  # the service's other workers take over its partitions
            watched = [w for w in self.running if w.split("-")[0] == service and w != target]
        else:
            watched = [target] if target in self.config.worker_ports else ["identity", "leads"]
        before = {w: processed(self.config, w) or 0.0 for w in watched}
        killed_at = time.monotonic()
        if verb == "add":
            start_worker(self.config, self.procs, target, self.env)
            self.running.append(target)
            before = {target: 0.0}
        elif verb == "remove":
            self.procs.stop(target)
            self.running.remove(target)
        elif action == "broker":
            sigkill(self.procs, "kafka", self.config.kafka_port)
            start_kafka(self.config, self.procs)
        elif action == "store":
            sigkill(self.procs, "store", self.config.store_port)
            start_store(self.config, self.procs)
        elif verb == "kill" and target in self.config.worker_ports:
            sigkill(self.procs, target, self.config.worker_ports[target])
            start_worker(self.config, self.procs, target, self.env)
            before = {target: 0.0}  # a new process counts from zero
        else:
            raise ValueError(f"unknown chaos action {action!r}")
        fault.back_after_s = time.monotonic() - killed_at
        if wait_until(lambda: all((processed(self.config, w) or 0.0) > before[w] for w in watched),
                      self.plan.resume_limit_s * 2):
            fault.resumed_after_s = time.monotonic() - killed_at
        self.say(f"{action}: done after {fault.back_after_s:.1f} s, "
                 f"processing after {fault.resumed_after_s:.1f} s")
        return fault


# ---- the checks -------------------------------------------------------------------------------------
def topic_event_ids(bootstrap: str, topic: str) -> Counter:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=5000, client_id="chaos-check")
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        seen: Counter = Counter()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    seen[json.loads(record.value)["event_id"]] += 1
        return seen
    finally:
        consumer.close()


def check(db, bootstrap: str, tenant: str, accepted: set[str], report: ChaosReport) -> None:
    problems, counts = report.problems, report.counts

    def same(stage: str, found: set[str]) -> None:
        if found != accepted:
            problems.append(f"{stage}: {len(accepted - found)} accepted events missing, "
                            f"{len(found - accepted)} never accepted")

    receipts = [d["_id"].split("\x1f", 1)[1] for d in db.identity_receipts.find({"tenant_id": tenant}, {"_id": 1})]
    counts["identity: receipts"] = len(receipts)
    same("identity receipts", set(receipts))

    identified = topic_event_ids(bootstrap, TOUCHPOINTS_IDENTIFIED.name)
    identified = Counter({k: n for k, n in identified.items() if k in accepted or k.startswith(tenant)})
    counts["identity: events on touchpoints.identified"] = sum(identified.values())
    counts["identity: of which redelivered (allowed)"] = sum(n - 1 for n in identified.values())
    same("touchpoints.identified", set(identified))

    entries = [d["event_id"] for d in db.lead_touchpoints.find({"tenant_id": tenant, "kind": "touchpoint"},
                                                               {"event_id": 1})]
    counts["leads: timeline touchpoints"] = len(entries)
    if len(entries) != len(set(entries)):
        problems.append(f"leads: {len(entries) - len(set(entries))} touchpoints filed twice")
    same("leads timeline", set(entries))
    live = list(db.leads.find({"tenant_id": tenant, "merged_into": {"$exists": False}}, {"event_counts": 1}))
    counted = sum(pair["n"] for lead in live for pair in lead.get("event_counts", []))
    counts["leads: live leads"] = len(live)
    counts["leads: touchpoints counted on live leads"] = counted
    if counted != len(accepted):
        problems.append(f"leads: live leads count {counted} touchpoints, {len(accepted)} were accepted")

    signals = 0
    for doc in db.scores.find({"tenant_id": tenant, "merged_into": {"$exists": False}}, {"signals": 1}):
        ids = [s["event_id"] for s in doc.get("signals", [])]
        signals += len(ids)
        if dupes := [i for i, n in Counter(ids).items() if n > 1]:
            problems.append(f"scoring: {doc['_id']!r} counts {len(dupes)} events twice")
        if stray := {i for i in ids if not i.startswith(("outcome", "task")) and i not in accepted}:
            problems.append(f"scoring: {doc['_id']!r} has {len(stray)} signals of events never accepted")
    counts["scoring: signals on live scores"] = signals

    tasks = list(db.tasks.find({"tenant_id": tenant}, {"trigger_event_id": 1, "one_id": 1, "status": 1,
                                                       "closed_reason": 1}))
    counts["notify: tasks"] = len(tasks)
    # Two persons with a task each that turn out to be one: the merge keeps one task and closes the other
    # as a duplicate (by design; with several workers it happens more often). Any other double is a fault.
    merged = [t for t in tasks if t.get("closed_reason") == DUPLICATE_AFTER_MERGE]
    counts["notify: of which closed as duplicates after a merge"] = len(merged)
    triggers = Counter(t.get("trigger_event_id") for t in tasks if t.get("closed_reason") != DUPLICATE_AFTER_MERGE)
    if dupes := [k for k, n in triggers.items() if n > 1]:
        problems.append(f"notify: {len(dupes)} triggering events made more than one task")
    open_per_person = Counter(t["one_id"] for t in tasks if t.get("status") == TaskStatus.OPEN.value)
    if crowded := [k for k, n in open_per_person.items() if n > 1]:
        problems.append(f"notify: {len(crowded)} persons have more than one open task")
    pushes = Counter((d["task_id"], d["task_version"], d["channel"])
                     for d in db.task_pushes.find({"tenant_id": tenant}, {"task_id": 1, "task_version": 1, "channel": 1}))
    counts["notify: pushes"] = sum(pushes.values())
    if dupes := [k for k, n in pushes.items() if n > 1]:
        problems.append(f"notify: {len(dupes)} task versions pushed twice on one channel")
    counts["notify: inbox entries"] = db.inbox.count_documents({"tenant_id": tenant})

    # A consultant's load is counted with $inc and repaired by notify's periodic recount: it must agree
    # with the open tasks within one recount period (10 timer runs) of the pipeline going quiet.
    def load_differences() -> list[str]:
        owned = Counter(t["consultant_id"] for t in db.tasks.find(
            {"tenant_id": tenant, "status": TaskStatus.OPEN.value}, {"consultant_id": 1}) if t.get("consultant_id"))
        return [c["consultant_id"] for c in db.consultants.find({"tenant_id": tenant})
                if c.get("open_tasks", 0) != owned.get(c["consultant_id"], 0)]

    if not wait_until(lambda: not load_differences(), 30.0, 1.0):
        problems.append(f"notify: the open-task count of {len(load_differences())} consultants is wrong")
    counts["notify: consultants with open tasks"] = db.consultants.count_documents(
        {"tenant_id": tenant, "open_tasks": {"$gt": 0}})


def outcome(db, tenant: str) -> dict:
    """What the stores hold, in a form two runs of one stream can be compared in: each person as the set
    of their event ids, with their one_id, grade and score (to a point: decay moves scores a little
    between two runs minutes apart) and how many tasks they got (merge duplicates aside)."""
    # A timeline entry keeps the one_id it was filed under; a merged person's lead says whom they live on as.
    merged_into = {d["_id"].split("\x1f", 1)[1]: d["merged_into"] for d in db.leads.find(
        {"tenant_id": tenant, "merged_into": {"$exists": True}}, {"merged_into": 1})}

    def live(one_id: str) -> str:
        seen = set()
        while one_id in merged_into and one_id not in seen:
            seen.add(one_id)
            one_id = merged_into[one_id]
        return one_id

    events: dict[str, set[str]] = {}
    for d in db.lead_touchpoints.find({"tenant_id": tenant, "kind": "touchpoint"}, {"event_id": 1, "one_id": 1}):
        events.setdefault(live(d["one_id"]), set()).add(d["event_id"])
    scores = {d["one_id"]: (d.get("grade"), round(d.get("score", 0.0), 2))
              for d in db.scores.find({"tenant_id": tenant, "merged_into": {"$exists": False}},
                                      {"one_id": 1, "grade": 1, "score": 1})}
    tasks = [t for t in db.tasks.find({"tenant_id": tenant}, {"one_id": 1, "status": 1, "closed_reason": 1})
             if t.get("closed_reason") != DUPLICATE_AFTER_MERGE]
    per_person = Counter(live(t["one_id"]) for t in tasks)
    return {
        "persons": {frozenset(ids): one_id for one_id, ids in events.items()},
        "scores": {frozenset(ids): scores.get(one_id) for one_id, ids in events.items()},
        "tasks_per_person": {frozenset(ids): per_person.get(one_id, 0) for one_id, ids in events.items()},
        "tasks": len(tasks),
    }


def differences(a: dict, b: dict, *, junk: frozenset[str] = frozenset()) -> list[str]:
    """How two runs' outcomes differ for real persons (empty: the same results).

    Persons with a junk event are left out: the guardrails against brushing (a device or IP over its
    limit of forms) judge each form by what came before it, so which forms of a burst pass depends on
    the order partitions are processed in. One_ids are compared by `one_ids_moved`: a person's one_id
    is minted from the first of their events identity processes, and that is order too."""
    real_a = {k for k in a["persons"] if not k & junk}
    real_b = {k for k in b["persons"] if not k & junk}
    out = []
    if real_a != real_b:
        out.append(f"persons: {len(real_a ^ real_b)} groupings of real persons' events differ")
    same = real_a & real_b

    def scored_apart(x: tuple | None, y: tuple | None) -> bool:
        if x is None or y is None:
            return x != y
        gap = abs(x[1] - y[1])
        # A grade may differ only where the two scores sit on either side of a grade's threshold.
        return gap > 1.0 or (x[0] != y[0] and gap > 0.5)

    if off := [k for k in same if scored_apart(a["scores"][k], b["scores"][k])]:
        out.append(f"scores: {len(off)} persons scored differently")
    if off := [k for k in same if a["tasks_per_person"][k] != b["tasks_per_person"][k]]:
        out.append(f"tasks: {len(off)} persons got another number of tasks")
    return out


def one_ids_moved(a: dict, b: dict) -> int:
    return sum(a["persons"][k] != b["persons"][k] for k in set(a["persons"]) & set(b["persons"]))


# ---- the run ----------------------------------------------------------------------------------------
ADMIN_KEY = "chaos-admin-key-0001"
STORES = 5  # the simulator's default: store-01 … store-05


def add_consultants(config: StackConfig, tenant: str) -> None:
    """Two consultants per store, so that tasks are routed, counted and pushed to inboxes."""
    with httpx.Client(base_url=config.api_url, headers={"X-Api-Key": ADMIN_KEY}, timeout=30) as api:
        for store in range(1, STORES + 1):
            for n in (1, 2):
                body = {"name": f"顾问{store}-{n}", "store_id": f"store-{store:02d}", "capacity": 10_000}
                api.put(f"/v1/consultants/c-{store:02d}-{n}", json=body).raise_for_status()


def stack_env(config: StackConfig, tenant: str) -> dict[str, str]:
    return {
        "LEADFLOW_KAFKA_BOOTSTRAP": config.kafka_bootstrap,
        "LEADFLOW_MONGO_URL": config.mongo_url,
        "LEADFLOW_MONGO_DB": config.mongo_db,
        "LEADFLOW_TOPIC_PREFIX": "",
        "LEADFLOW_HMAC_SECRET": uuid.uuid4().hex,
        "LEADFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "LEADFLOW_API_KEYS": f"{ADMIN_KEY}={tenant}:admin",
        "LEADFLOW_API_PORT": str(config.api_port),
        "LEADFLOW_NOTIFY_TIMER_INTERVAL_S": "1",  # consultants' load is recounted every 10 runs
    }


def run(plan: ChaosPlan, *, config: StackConfig = CHAOS_STACK, say: Callable[[str], None] = print) -> ChaosReport:
    down(config, say=lambda line: None, names=("api", *config.worker_ports, "store", "kafka"))
    shutil.rmtree(config.var, ignore_errors=True)  # a fresh broker and store: the counts are this run's
    tenant = plan.tenant or f"chaos{uuid.uuid4().hex[:6]}"
    report = ChaosReport(plan, tenant)
    env = stack_env(config, tenant)
    procs = Processes(config)
    try:
        start_kafka(config, procs)
        start_store(config, procs)
        ensure_topics(config.kafka_bootstrap, partitions=plan.partitions)
        for name in plan.workers:
            start_worker(config, procs, name, env)
        start_api(config, procs, env)
        index_ferretdb_ids(config.var / "ferretdb")
        add_consultants(config, tenant)
        say(f"stack up under {config.var}; publishing {plan.events} events at {plan.rate:.0f}/s")

        chaos = Chaos(config, env, plan, say)
        stream = StreamPublisher(config, tenant, plan)
        stream.start()
        stream_started = time.monotonic()
        targets = chaos.schedule(random.Random(plan.seed))
        window = (1.0 - plan.start_after) * 0.8  # the faults are spread over the middle of the stream
        for i, target in enumerate(targets):
            due = plan.start_after + window * i / max(1, len(targets))
            while stream.progress < due and not stream.done.is_set():
                time.sleep(0.2)
            report.faults.append(chaos.strike(target, stream.progress))
        time.sleep(5.0)  # a little of the stream after the last fault
        stream.faults_over.set()
        stream.join()
        if stream.error is not None:
            raise stream.error
        report.accepted, report.sent = len(stream.accepted), stream.sent
        report.junk_events = frozenset(s.event.event_id for s in stream.sims if s.junk)
        accepted_at = time.monotonic()

        groups = registry_groups("")
        settled = 0
        while time.monotonic() - accepted_at < plan.drain_limit_s and settled < 3:
            settled = settled + 1 if sum(row.lag for row in consumer_lag(config.kafka_bootstrap, groups)) == 0 else 0
            time.sleep(1.0)
        report.drained_after_s = time.monotonic() - accepted_at
        report.sustained_per_s = report.accepted / (time.monotonic() - stream_started)
        for fault in report.faults:
            if not fault.resumed_after_s <= plan.resume_limit_s:
                report.problems.append(f"{fault.target}: processing did not resume within {plan.resume_limit_s:.0f} s")
        if settled < 3:  # the stages are still moving: comparing them now would only show the backlog
            report.problems.append(f"the consumers still lag {plan.drain_limit_s:.0f} s after the last event "
                                   "(offered more than the stack sustains, or a loop between services)")
            return report
        with MongoClient(config.mongo_url, tz_aware=True) as client:
            check(client[config.mongo_db], config.kafka_bootstrap, tenant, stream.accepted, report)
            report.outcome = outcome(client[config.mongo_db], tenant)
        return report
    finally:
        if not os.environ.get("LEADFLOW_CHAOS_KEEP"):  # keep the stack up to look into a failed run
            down(config, say=lambda line: None, names=("api", *config.worker_ports, "store", "kafka"))
