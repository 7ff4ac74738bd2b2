"""Scale-out, proven on one machine: the same stream through one worker per service, then through two
workers of every service on 8 partitions, with workers added and removed mid-stream (rebalances).
Both runs must end with the same real persons (the same events grouped into one person), the same grades
and scores, and as many tasks per person; neither may lose or double anything (tests/chaos/harness.py).
Junk actors and one_ids are left out of the comparison: both depend on the order of processing by design
(see `differences`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.chaos.harness import ChaosPlan, differences, one_ids_moved, run

SINGLE = ("identity", "leads", "scoring", "notify")


def test_two_workers_per_service_with_rebalances_give_what_one_worker_gives():
    common = dict(rate=15.0, events=900, partitions=8, seed=3, tenant=f"scale{uuid.uuid4().hex[:6]}",
                  anchor=datetime.now(UTC).replace(microsecond=0), kills_per_worker=0,
                  restart_broker=False, restart_store=False)
    single = run(ChaosPlan(workers=SINGLE, **common), say=lambda line: None)
    scaled = run(ChaosPlan(workers=(*SINGLE, "identity-2", "leads-2"),
                           actions=("add:scoring-2", "add:notify-2", "remove:leads-2", "add:leads-2",
                                    "remove:identity-2"), **common), say=lambda line: None)
    print("one worker each:\n" + "\n".join(single.lines()))
    print("two workers each, rebalanced:\n" + "\n".join(scaled.lines()))
    print(f"tasks: {single.outcome['tasks']} and {scaled.outcome['tasks']}; "
          f"{one_ids_moved(single.outcome, scaled.outcome)} persons under another one_id")
    assert single.problems == [] and scaled.problems == []
    assert len(single.outcome["persons"]) > 100 and single.outcome["tasks"] > 20  # a stream worth comparing
    assert differences(single.outcome, scaled.outcome, junk=single.junk_events) == []
