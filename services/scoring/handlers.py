"""scoring use cases: re-score a person when their lead changes; answer score queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow.runtime.messages import Handled, Outgoing
from schemas.leads import LeadSnapshot, LeadUpdated
from schemas.scores import Contribution, Grade, ScoreChanged
from schemas.topics import SCORES_CHANGES
from schemas.touchpoints import EventType
from services.scoring.adapters.repository import ScoreRepository
from services.scoring.domain.rules import RuleSet
from services.scoring.domain.score import Scored, Signal, add_signal, score, worth_emitting

_CHANGE_NS = uuid.UUID("3d3b6a0e-2f7c-4f0b-8d8e-1c9f4f5e2a77")
RECENT_TRIGGERS_KEPT = 256


class ScoringService:
    def __init__(self, repo: ScoreRepository, *, rules: RuleSet, clock: Callable[[], datetime]) -> None:
        self.repo = repo
        self.rules = rules
        self._clock = clock

    async def on_lead_updated(self, change: LeadUpdated) -> Handled:
        doc = await self.repo.get(change.tenant_id, change.one_id) or {}
        trigger_id = change.trigger.event_id
        if trigger_id in doc.get("recent_triggers", ()):
            last = doc.get("last_change")
            if last and last["trigger"]["event_id"] == trigger_id:
                # Replay of the newest change: the first attempt may not have reached the broker.
                return Handled([Outgoing(SCORES_CHANGES, change.one_id, ScoreChanged.model_validate(last))])
            return Handled()

        signals = tuple(
            Signal(s["event_id"], EventType(s["event_type"]), s["occurred_at"]) for s in doc.get("signals", ())
        )
        signals = add_signal(signals, Signal(trigger_id, change.trigger.event_type, change.trigger.occurred_at))
        lead = change.lead
        if doc.get("lead_version", 0) > change.version:
            lead = LeadSnapshot.model_validate(doc["lead"])  # keep the newer snapshot we already have
        now = self._clock()
        before = _scored(doc)
        after = score(signals, lead, self.rules, now)
        previous_lead = doc.get("lead")
        emit = worth_emitting(before, after, self.rules) or previous_lead != lead.model_dump(mode="json")

        fields: dict[str, Any] = {
            "tenant_id": change.tenant_id,
            "one_id": change.one_id,
            "signals": [{"event_id": s.event_id, "event_type": s.event_type.value, "occurred_at": s.occurred_at} for s in signals],
            "score": after.score,
            "grade": after.grade.value,
            "contributions": [c.model_dump() for c in after.contributions],
            "lead": lead.model_dump(mode="json"),
            "lead_version": max(doc.get("lead_version", 0), change.version),
            "scored_at": now,
            "rules": f"{self.rules.name}@{self.rules.version}",
            "recent_triggers": (list(doc.get("recent_triggers", ())) + [trigger_id])[-RECENT_TRIGGERS_KEPT:],
        }
        outgoing = []
        if emit:
            event = ScoreChanged(
                change_id=str(uuid.uuid5(_CHANGE_NS, f"{change.tenant_id}\x1f{trigger_id}")),
                tenant_id=change.tenant_id,
                one_id=change.one_id,
                score=after.score,
                grade=after.grade,
                previous_grade=before.grade if before else None,
                contributions=list(after.contributions),
                trigger=change.trigger,
                lead=lead,
                scored_at=now,
            )
            fields["last_change"] = event.model_dump(mode="json")
            outgoing.append(Outgoing(SCORES_CHANGES, change.one_id, event))
        await self.repo.save(change.tenant_id, change.one_id, fields, version=doc.get("version", 0) + 1)
        return Handled(outgoing)

    # ---- queries ---------------------------------------------------------------------------------
    async def get(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await self.repo.get(tenant_id, one_id)

    async def one_ids_with_grade(self, tenant_id: str, grades: list[str], limit: int) -> list[str]:
        return await self.repo.one_ids_with_grade(tenant_id, grades, limit)

    async def many(self, tenant_id: str, one_ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self.repo.many(tenant_id, one_ids)


def _scored(doc: dict[str, Any]) -> Scored | None:
    if "score" not in doc:
        return None
    return Scored(
        doc["score"], Grade(doc["grade"]), tuple(Contribution.model_validate(c) for c in doc["contributions"])
    )
