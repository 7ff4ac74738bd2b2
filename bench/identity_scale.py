"""Identity at scale: resolve latency and stitching throughput with 1,000,000 identifiers stitched.

Run: .venv/bin/python -m bench.identity_scale [--url mongodb://127.0.0.1:27017/] [--identifiers 1000000]
Uses a scratch database of its own (dropped afterwards unless --keep). The graph is bulk-loaded in
the exact document shapes the identity repository writes (links, persons), then measured through
the identity service itself, as the API and the workers call it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient

from leadflow.devstack import ROOT, index_ferretdb_ids
from schemas.touchpoints import Identifier, IdentifierType, TouchpointReceived
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.domain import keys
from services.identity.domain.masking import mask
from services.identity.domain.normalize import NormalizedIdentifier
from services.identity.handlers import IdentityService

TENANT = "bench"
SECRET = b"bench-secret-" * 3
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5_000


def phone(n: int) -> str:
    return f"+86139{n:08d}"


def person_identifiers(n: int) -> list[NormalizedIdentifier]:
    """Person n: a phone, a unionid, and every other person a device: 2.5 identifiers on average."""
    ids = [NormalizedIdentifier(IdentifierType.PHONE, phone(n)),
           NormalizedIdentifier(IdentifierType.WECHAT_UNIONID, f"o6_bench_{n:09d}")]
    if n % 2 == 0:
        ids.append(NormalizedIdentifier(IdentifierType.DEVICE_ID, f"dev-{n:012x}"))
    return ids


async def load(repo: IdentityRepository, vault: Vault, total: int) -> int:
    """Bulk-load persons until `total` identifiers exist; returns the number of persons."""
    tenant_secret = keys.tenant_key(SECRET, TENANT)
    sealed = vault.seal("+8613900000000")  # one ciphertext for all: encryption is not what is measured
    persons, links, count, n = [], [], 0, 0
    started = time.perf_counter()
    while count < total:
        one_id = keys.new_one_id(TENANT, f"load-{n}")
        members = {}
        for i, ident in enumerate(person_identifiers(n)):
            key = keys.identifier_hash(tenant_secret, ident)
            members[key] = ident.type.value
            links.append({"_id": key, "tenant_id": TENANT, "one_id": one_id, "status": "active",
                          "type": ident.type.value, "namespace": "", "masked": mask(ident.type, ident.value),
                          "enc": sealed, "linked_at": T0, "event_id": f"load-{n}",
                          "cause": {"rule": "first_seen"} if i == 0 else {"rule": "co_occurred", "via": next(iter(members))}})
            count += 1
        persons.append({"_id": one_id, "tenant_id": TENANT, "created_at": T0 + timedelta(seconds=n),
                        "event_id": f"load-{n}", "members": members, "absorbed": [], "merged_into": None})
        n += 1
        if len(links) >= BATCH:
            await repo.links.insert_many(links, ordered=False)
            await repo.persons.insert_many(persons, ordered=False)
            links, persons = [], []
            if n % 50_000 < 2:
                rate = count / (time.perf_counter() - started)
                print(f"  loaded {count:>9,} identifiers ({rate:,.0f}/s)", flush=True)
    if links:
        await repo.links.insert_many(links, ordered=False)
        await repo.persons.insert_many(persons, ordered=False)
    return n


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def measure_resolve(service: IdentityService, persons: int, n: int) -> list[float]:
    rng = random.Random(7)
    samples = []
    for _ in range(n):
        who = rng.randrange(persons)
        identifier = Identifier(type=IdentifierType.PHONE, value=phone(who)) if rng.random() < 0.5 else \
            Identifier(type=IdentifierType.WECHAT_UNIONID, value=f"o6_bench_{who:09d}")
        started = time.perf_counter()
        found = await service.resolve(TENANT, identifier)
        samples.append((time.perf_counter() - started) * 1000)
        assert found is not None
    return samples


def touchpoint(run: str, i: int, persons: int, rng: random.Random) -> TouchpointReceived:
    """A realistic mix: returning people with a new device (60%), new people (30%), bridges (10%)."""
    roll = rng.random()
    if roll < 0.6:
        who = rng.randrange(persons)
        ids = [{"type": "phone", "value": phone(who)}, {"type": "device_id", "value": f"new-{i:010x}"}]
    elif roll < 0.9:
        ids = [{"type": "phone", "value": phone(20_000_000 + (1_000_000 if run == "w2" else 0) + i)}]
    else:
        a = rng.randrange(persons)
        ids = [{"type": "phone", "value": phone(a)}, {"type": "email", "value": f"bridge{i}@qq.com"}]
    return TouchpointReceived.model_validate({
        "event_id": f"bench-{run}-{i}", "event_type": "form_submitted", "tenant_id": TENANT,
        "occurred_at": (T0 + timedelta(days=30, seconds=i)).isoformat(),
        "source": {"system": "bench", "channel": "web"}, "identifiers": ids,
    })


async def measure_stitching(services: list[IdentityService], persons: int, n: int) -> tuple[float, list[float]]:
    rng = random.Random(len(services))
    events = [touchpoint(f"w{len(services)}", i, persons, rng) for i in range(n)]
    latencies: list[float] = []

    async def lane(service: IdentityService, batch: list[TouchpointReceived]) -> None:
        for event in batch:
            started = time.perf_counter()
            handled = await service.identify(event)
            await handled.after_emit()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(lane(s, events[w::len(services)]) for w, s in enumerate(services)))
    return n / (time.perf_counter() - started), latencies


async def main(url: str, total: int, ferretdb_dir: Path | None, keep: bool) -> None:
    client = AsyncMongoClient(url, retryWrites=False, tz_aware=True)
    db = client[f"bench_identity_{int(time.time())}"]
    repo = IdentityRepository(db)
    await repo.ensure_indexes()
    if ferretdb_dir:
        index_ferretdb_ids(ferretdb_dir)
    vault = Vault(Fernet.generate_key().decode())
    service = IdentityService(repo, master_secret=SECRET, vault=vault, clock=lambda: datetime.now(UTC))
    try:
        print(f"loading {total:,} identifiers …", flush=True)
        started = time.perf_counter()
        persons = await load(repo, vault, total)
        print(f"loaded {persons:,} persons in {time.perf_counter() - started:.0f} s")

        samples = await measure_resolve(service, persons, 5_000)
        print(f"resolve (5,000 look-ups, {total:,} identifiers): p50 {statistics.median(samples):.2f} ms  "
              f"p99 {percentile(samples, 0.99):.2f} ms  max {max(samples):.1f} ms")
        for workers in (1, 2):
            pool = [IdentityService(IdentityRepository(db), master_secret=SECRET, vault=vault,
                                    clock=lambda: datetime.now(UTC)) for _ in range(workers)]
            rate, lat = await measure_stitching(pool, persons, 3_000)
            print(f"stitching, {workers} worker(s) in one process: {rate:,.0f} touchpoints/s  "
                  f"p50 {statistics.median(lat):.1f} ms  p99 {percentile(lat, 0.99):.1f} ms")
    finally:
        if not keep:
            await client.drop_database(db.name)
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017/")
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    parser.add_argument("--ferretdb-dir", type=Path, default=ROOT / "var" / "ferretdb",
                        help="FerretDB's SQLite directory, to add the _id path index (ignored if absent)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.identifiers, args.ferretdb_dir if args.ferretdb_dir.exists() else None, args.keep))
