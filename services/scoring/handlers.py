"""scoring use cases: re-score a person when their lead changes or a consultant reports an outcome;
learn from outcomes; let quiet persons' scores fall on a timer; re-score a tenant after a rule change;
fold, split and erase persons as identity decides; answer score and model queries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from leadflow.runtime import metrics
from leadflow.runtime.agenda import Entry
from leadflow.runtime.leases import PersonGuard, PersonLeases
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.runtime.ownership import OVERFETCH, Owned, Owns, everything, unpartitioned
from leadflow.runtime.persons import persons_of
from schemas.identity import PersonErased, PersonsMerged, PersonSplit
from schemas.leads import LeadSnapshot, LeadUpdated, Trigger
from schemas.scores import Grade, ScoreChanged
from schemas.tasks import TaskOutcomeRecorded
from schemas.topics import SCORES_CHANGES
from services.scoring.adapters.models import ModelStore, StoredModel
from services.scoring.adapters.repository import Rescore, ScoreRepository, due_of, waits_for
from services.scoring.domain.learning import Evaluation, Quality, blend_weight, quality, update
from services.scoring.domain.merging import RECENT_TRIGGERS_KEPT, History, covers, join, split
from services.scoring.domain.rules import LearningMode, RuleBook, RuleSet, outcome_kind
from services.scoring.domain.score import Scored, Signal, add_signal, score, worth_emitting

log = logging.getLogger(__name__)

_CHANGE_NS = uuid.UUID("3d3b6a0e-2f7c-4f0b-8d8e-1c9f4f5e2a77")
MODEL_REFRESH_S = 60.0  # one scoring worker of several re-reads its tenants' models this often
LEASES = "score_leases"  # the persons' leases while several workers run (`PersonGuard`)


class ScoringService:
    def __init__(self, repo: ScoreRepository, models: ModelStore, *, rules: RuleBook, clock: Callable[[], datetime],
                 timer_batch: int = 500, timer_interval_s: float = 30.0) -> None:
        self.repo = repo
        self.models = models
        self.owns: Owns = everything  # the timer's persons; one worker of several: its partitions' (bootstrap)
        self.owned: Owned = unpartitioned  # ... and those partitions (bootstrap)
        self.rules = rules
        self.timer_batch = timer_batch
        self.timer_interval_s = timer_interval_s
        self._clock = clock
        # Each tenant's model as this worker last read or wrote it. Alone, it is the models' only writer;
        # one of several, it learns under the model's lease from a fresh read, and re-reads to score
        # after MODEL_REFRESH_S (the others learn too).
        self._model_cache: dict[str, tuple[StoredModel, float]] = {}
        # A worker's agents (lead changes, identity changes, outcomes) and its timer write the same
        # documents: one change at a time, and the persons' leases when scoring runs as several workers
        # (`leadflow/runtime/leases.py`; the entrypoint sets `guard.sole`).
        self.guard = PersonGuard(PersonLeases(repo.scores.database, collection=LEASES), repo.resolve)

    async def ensure_indexes(self) -> None:
        await self.repo.ensure_indexes()
        await self.models.ensure_indexes()
        await self.guard.ensure_indexes()

    # ---- lead changes ----------------------------------------------------------------------------
    async def on_lead_updated(self, change: LeadUpdated) -> Handled:
        async with self.guard.person(change.tenant_id, change.one_id), AsyncExitStack() as more:
            return await self._lead_updated(change, more)

    async def _lead_updated(self, change: LeadUpdated, more: AsyncExitStack) -> Handled:
        tenant, trigger_id = change.tenant_id, change.trigger.event_id
        target, doc = await self.repo.resolve(tenant, change.one_id)  # a merged person's: the survivor's
        # An erasure runs under the same guard, so none comes between this look and the writes below.
        if doc is None and await self.repo.is_erased(tenant, target):
            return Handled()  # sent before the person was erased: nothing may bring them back
        moved_to = _history(doc).moved_to(trigger_id)
        if moved_to:  # a touchpoint that a split gave to another person, applied by leads before the split
            await more.enter_async_context(self.guard.also(tenant, moved_to))
            target, doc = await self.repo.resolve(tenant, moved_to)
        # A change of another person (a merged one's, or one a split moved away) brings its signal along,
        # but its snapshot and version count on that person's sequence, not on this one's.
        own = target == change.one_id
        history = _history(doc)
        known = trigger_id in history.triggers
        newer = own and change.version > history.lead_version
        if known and not newer:
            # A replay. Send again what it caused if that was the last change: the first attempt may not
            # have reached the broker.
            last, source = last_change(doc), (doc or {}).get("last_source")
            if last and (source == change.change_id if source else last.trigger.event_id == trigger_id):
                return Handled([Outgoing(SCORES_CHANGES, target, last)])
            return Handled()
        if not known:
            signal = Signal(trigger_id, change.trigger.event_type, change.trigger.occurred_at)
            history = replace(history, signals=add_signal(history.signals, signal),
                              triggers=(history.triggers + (trigger_id,))[-RECENT_TRIGGERS_KEPT:])
        if newer or history.lead is None:
            history = replace(history, lead=change.lead, lead_version=change.version if own else 0)
        history = replace(history, trigger=change.trigger)
        # A known trigger with a newer lead (leads' change after a merge or split) is a change of its own.
        key = trigger_id if not known else f"{trigger_id}\x1f{change.change_id}"
        return Handled(await self._rescore(doc, tenant, target, history, key=key, source=change.change_id, cause="lead"))

    # ---- identity changes ------------------------------------------------------------------------
    async def on_identity_changed(self, change: PersonsMerged | PersonSplit | PersonErased) -> Handled:
        async with self.guard.person(change.tenant_id, *persons_of(change)):
            match change:
                case PersonsMerged():
                    return await self._merged(change)
                case PersonSplit():
                    return await self._split(change)
                case PersonErased():
                    await self.repo.erase(change.tenant_id, change.one_ids, at=change.erased_at)
                    return Handled()

    async def _merged(self, merge: PersonsMerged) -> Handled:
        """Fold the loser's signals into the winner's and re-score; the loser redirects late changes."""
        tenant = merge.tenant_id
        if await self._any_erased(tenant, merge.winner, merge.loser):
            return Handled()  # a replay after an erasure must not bring anybody back
        # The tombstone first, keeping the loser's state: a replay after a crash still has it to fold.
        buried = await self.repo.get(tenant, merge.loser)
        if buried is None or not buried.get("merged_into"):
            buried = {**(buried or {"tenant_id": tenant, "one_id": merge.loser}), "merged_into": merge.winner}
            await self.repo.save(tenant, merge.loser, buried, version=buried.get("version", 0) + 1)
        target, _ = await self.repo.resolve(tenant, merge.winner)  # the winner may be merged by now
        if target == merge.loser:
            raise RuntimeError(f"merge {merge.merge_id} would merge {merge.loser} into itself")
        return Handled(await self._join(tenant, target, _history(buried), cause=merge.merge_id, kind="merge"))

    async def _split(self, split_: PersonSplit) -> Handled:
        """The moved events' signals go to the new person; both are re-scored."""
        tenant = split_.tenant_id
        if await self._any_erased(tenant, split_.source, split_.new_one_id):
            return Handled()
        source, doc = await self.repo.resolve(tenant, split_.source)
        new, _ = await self.repo.resolve(tenant, split_.new_one_id)
        history = _history(doc)
        staying, moving = split(history, set(split_.moved_event_ids), to=new)
        # The new person first: if we die before the source lets go, the replay finds it all again.
        outgoing = await self._join(tenant, new, moving, cause=split_.split_id, kind="split")
        if staying == history:  # let go already (a replay)
            return Handled(outgoing + _again(doc, source, split_.split_id))
        return Handled(outgoing + await self._rescore(doc, tenant, source, staying, key=f"{split_.split_id}\x1f{source}",
                                                      source=_identity_source(split_.split_id), cause="split"))

    async def _join(self, tenant: str, target: str, other: History, *, cause: str, kind: str) -> list[Outgoing]:
        """Fold `other` into the target's history and re-score (idempotent: signals are a set)."""
        doc = await self.repo.get(tenant, target)
        history = _history(doc)
        if covers(history, other):
            return _again(doc, target, cause)  # folded already (a replay)
        return await self._rescore(doc, tenant, target, join(history, other), key=f"{cause}\x1f{target}",
                                   source=_identity_source(cause), cause=kind)

    async def _any_erased(self, tenant: str, *one_ids: str) -> bool:
        return any([await self.repo.is_erased(tenant, one_id) for one_id in one_ids])

    # ---- outcomes ---------------------------------------------------------------------------------
    async def on_outcome(self, recorded: TaskOutcomeRecorded) -> Handled:
        async with self.guard.person(recorded.tenant_id, recorded.one_id):
            return await self._outcome(recorded)

    async def _outcome(self, recorded: TaskOutcomeRecorded) -> Handled:
        """An outcome is a signal of its own (an appointment raises the score, an invalid number sinks it),
        and one that ends the story (won, lost...) first tests, then trains the tenant's model."""
        tenant, outcome_id = recorded.tenant_id, recorded.outcome_id
        target, doc = await self.repo.resolve(tenant, recorded.one_id)
        if doc is None:
            return Handled()  # nobody scored (erased, or the task's person never had a lead change)
        history = _history(doc)
        if outcome_id in history.triggers:  # a replay: send again what it caused, if that was the last change
            if doc.get("last_source") == outcome_id and (last := last_change(doc)):
                return Handled([Outgoing(SCORES_CHANGES, target, last)])
            return Handled()
        rules = self.rules.for_tenant(tenant)
        label = rules.learning.labels.get(recorded.outcome)
        if label is not None and rules.learning.mode is not LearningMode.OFF and history.lead is not None \
                and not _labelled(history, rules):
            await self._learn(tenant, outcome_id, history, label, rules, at=recorded.recorded_at)
        history = replace(
            history,
            signals=add_signal(history.signals, Signal(outcome_id, outcome_kind(recorded.outcome), recorded.recorded_at)),
            triggers=(history.triggers + (outcome_id,))[-RECENT_TRIGGERS_KEPT:],
        )
        return Handled(await self._rescore(doc, tenant, target, history, key=outcome_id, source=outcome_id,
                                           cause="outcome"))

    async def _learn(self, tenant: str, outcome_id: str, history: History, label: int, rules: RuleSet, *,
                     at: datetime) -> None:
        """Test, then train: score the person as they were just before the outcome, keep that for the
        quality report, then take one SGD step. The outcome id goes in with the model in one write."""
        async with self.guard.exclusive(tenant, "\x1fmodel"):
            await self._learn_under_lease(tenant, outcome_id, history, label, rules, at=at)

    async def _learn_under_lease(self, tenant: str, outcome_id: str, history: History, label: int, rules: RuleSet, *,
                                 at: datetime) -> None:
        stored = await self._model(tenant, fresh=not self.guard.sole())
        if outcome_id in stored.applied:
            return
        assert history.lead is not None
        before = score(history.signals, history.lead, rules, at, stored.model)
        probability = stored.model.predict(dict(before.features))
        weight = blend_weight(stored.model.n, rules.learning)
        rule = (before.rule_score or 0.0) / 100
        evaluation = Evaluation(round(rule, 4), round(probability, 4), round((1 - weight) * rule + weight * probability, 4),
                                label)
        stored = StoredModel(update(stored.model, dict(before.features), label, rules.learning),
                             (*stored.applied, outcome_id), (*stored.evaluations, evaluation), self._clock())
        await self.models.save(tenant, stored, evaluations_kept=rules.learning.evaluations_kept)
        self._model_cache[tenant] = (stored, time.monotonic())
        metrics.MODEL_UPDATES.labels(tenant, str(label)).inc()

    async def _model(self, tenant: str, *, fresh: bool = False) -> StoredModel:
        cached = self._model_cache.get(tenant)
        if cached is None or fresh or (not self.guard.sole() and time.monotonic() - cached[1] > MODEL_REFRESH_S):
            cached = self._model_cache[tenant] = (await self.models.load(tenant), time.monotonic())
        return cached[0]

    # ---- the re-score timer ----------------------------------------------------------------------
    async def on_timer(self, now: datetime | None = None) -> Handled:
        """Persons due for a re-score (quiet ones decaying, or waiting for their tenant's rescore request):
        their real changes. Saved before they are sent, marked `unsent` until the broker has them, so a
        crash in between sends them on the next run. They come from the agenda
        (`leadflow/runtime/agenda.py`), swept from the scores twice a day and after a rescore request."""
        outgoing: list[Outgoing] = []
        sent: list[tuple[str, str]] = []
        agenda = self.repo.agenda
        requests: dict[str, Rescore | None] = {}  # each tenant's rescore request, read once a run

        async def request_of(tenant: str) -> Rescore | None:
            if tenant not in requests:
                requests[tenant] = await self.repo.rescore_request(tenant)
            return requests[tenant]

        async with self.guard.locked():
            now = now or self._clock()
            if await agenda.sweep_needed(now, self.owned()):
                entered = await agenda.swept(await self.repo.due_until(now + agenda.horizon), now)
                log.info("scoring: the agenda's sweep entered %d persons", entered)
            due = [e for e in await agenda.due(now, self.timer_batch * OVERFETCH) if self.owns(e.owner)]
            for entry in due[:self.timer_batch]:
                tenant, one_id = entry.tenant_id, entry.key
                request = await request_of(tenant)
                async with self.guard.also(tenant, one_id):
                    doc = await self.repo.get(tenant, one_id)
                    if doc is None or doc.get("merged_into"):
                        await agenda.drop(tenant, one_id)  # merged away or erased since
                        continue
                    if doc.get("unsent") and (last := last_change(doc)):
                        outgoing.append(Outgoing(SCORES_CHANGES, one_id, last))
                        sent.append((tenant, one_id))
                        continue
                    due_at = due_of(doc, request)
                    if due_at is None or due_at > now:
                        await agenda.settle(entry, due_at, now)  # moved since it was entered
                        continue
                    rescoring = waits_for(doc, request)
                    cause = "rescore" if rescoring else "decay"
                    key = f"rescore\x1f{request.request_id}" if rescoring else f"decay\x1f{doc.get('version', 0)}"
                    out = await self._rescore(doc, tenant, one_id, _history(doc), key=key, source=key, cause=cause,
                                              now=now, unsent=True, rescored_for=request.request_id if rescoring else None)
                    if not out:  # nothing to send: the entry follows the person's next look now
                        after = await self.repo.get(tenant, one_id)
                        await agenda.settle(entry, due_of(after, request) if after else None, now)
                outgoing += out
                sent += [(tenant, one_id)] * bool(out)
                metrics.RESCORES.labels(tenant, cause, "changed" if out else "unchanged").inc()

        async def acknowledged() -> None:
            # After the send, outside the run: FerretDB applies `$unset` as a read and a write of the whole
            # document, so it is a write to the person like any other. The entry then waits for the
            # person's next look.
            async with self.guard.locked():
                for tenant, one_id in sent:
                    async with self.guard.also(tenant, one_id):
                        await self.repo.mark_sent(tenant, one_id)
                        doc = await self.repo.get(tenant, one_id)
                        await agenda.settle(Entry(tenant, one_id, now), due_of(doc, requests.get(tenant)) if doc else None,
                                            now)

        return Handled(outgoing, after_emit=acknowledged if sent else None)

    async def request_rescore(self, tenant_id: str, request_id: str) -> int:
        """Have the timer re-score every person of the tenant (after a rule change); how many persons."""
        return await self.repo.request_rescore(tenant_id, request_id, self._clock())

    async def rescore_progress(self, tenant_id: str, request_id: str) -> tuple[int, int]:
        return await self.repo.rescore_progress(tenant_id, request_id)

    # ---- scoring ---------------------------------------------------------------------------------
    async def _rescore(self, doc: dict[str, Any] | None, tenant: str, one_id: str, history: History, *,
                       key: str, source: str, cause: str, now: datetime | None = None,
                       unsent: bool = False, rescored_for: str | None = None) -> list[Outgoing]:
        """Store the person re-scored on `history`; a ScoreChanged when it differs enough from the last one sent."""
        now = now or self._clock()
        rules = self.rules.for_tenant(tenant)
        fields: dict[str, Any] = {"tenant_id": tenant, "one_id": one_id, **_fields(history), "scored_at": now,
                                  "rules": rules.ref}
        # What was told last stays until something new is; the rescore request answered last, until the next.
        for kept in ("last_change", "last_source", "emitted", "rescored_for"):
            if doc and doc.get(kept) is not None:
                fields[kept] = doc[kept]
        if rescored_for is not None:
            fields["rescored_for"] = rescored_for
        outgoing = []
        if history.lead is not None:  # without a snapshot (a split's new person) it waits for leads
            stored = await self._model(tenant) if rules.learning.mode is not LearningMode.OFF else None
            after = score(history.signals, history.lead, rules, now, stored.model if stored else None)
            fields.update(score=after.score, grade=after.grade.value,
                          contributions=[c.model_dump(mode="json") for c in after.contributions],
                          rule_score=after.rule_score, probability=after.probability, blend_weight=after.blend_weight,
                          model_version=after.model_version,
                          rescore_at=_next_rescore(after, rules, now))
            before = _emitted(doc or {})
            lead_changed = (doc or {}).get("lead") != fields["lead"]
            if (worth_emitting(before, after, rules) or lead_changed) and history.trigger is not None:
                event = ScoreChanged(
                    change_id=str(uuid.uuid5(_CHANGE_NS, f"{tenant}\x1f{key}")),
                    tenant_id=tenant,
                    one_id=one_id,
                    score=after.score,
                    grade=after.grade,
                    previous_grade=before.grade if before else None,
                    contributions=list(after.contributions),
                    trigger=history.trigger,
                    lead=history.lead,
                    scored_at=now,
                    cause=cause,
                    rules=rules.ref,
                    rule_score=after.rule_score,
                    probability=after.probability,
                    blend_weight=after.blend_weight,
                    model_version=after.model_version,
                )
                if before is None or before.grade != after.grade:
                    metrics.GRADE_CHANGES.labels(tenant, before.grade.value if before else "none", after.grade.value).inc()
                fields["last_change"] = event.model_dump(mode="json")
                fields["last_source"] = source
                fields["emitted"] = {"score": after.score, "grade": after.grade.value}
                if unsent:
                    fields["unsent"] = True
                outgoing.append(Outgoing(SCORES_CHANGES, one_id, event))
        await self.repo.save(tenant, one_id, fields, version=(doc or {}).get("version", 0) + 1, was=doc)
        return outgoing

    # ---- queries ---------------------------------------------------------------------------------
    async def get(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        """The score of the person `one_id` lives on as (a merged one_id leads to the survivor's)."""
        _, doc = await self.repo.resolve(tenant_id, one_id)
        return doc

    async def one_ids_with_grade(self, tenant_id: str, grades: list[str], limit: int) -> list[str]:
        return await self.repo.one_ids_with_grade(tenant_id, grades, limit)

    async def many(self, tenant_id: str, one_ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self.repo.many(tenant_id, one_ids)

    async def model_report(self, tenant_id: str) -> tuple[RuleSet, StoredModel, Quality]:
        """The tenant's rules, learned model and its held-out quality (read from the store, not a cache:
        the gateway is not the writer)."""
        stored = await self.models.load(tenant_id)
        return self.rules.for_tenant(tenant_id), stored, quality(stored.evaluations)


def _labelled(history: History, rules: RuleSet) -> bool:
    """Whether one of the person's outcomes taught the model already: each person teaches it once."""
    labels = {outcome_kind(o) for o in rules.learning.labels}
    return any(s.kind in labels for s in history.signals)


def _next_rescore(scored: Scored, rules: RuleSet, now: datetime) -> datetime | None:
    """When the timer should look again: never for O and F (the lifecycle decides those) or for a score
    that cannot fall further."""
    if scored.grade in (Grade.O, Grade.F) or scored.score <= 0:
        return None
    return now + timedelta(hours=rules.rescore.every_hours)


def _identity_source(cause: str) -> str:
    return f"identity\x1f{cause}"


def _again(doc: dict[str, Any] | None, one_id: str, cause: str) -> list[Outgoing]:
    """A replayed identity change sends again what it caused, if that is still the last change."""
    if doc and doc.get("last_source") == _identity_source(cause) and (last := last_change(doc)):
        return [Outgoing(SCORES_CHANGES, one_id, last)]
    return []


def last_change(doc: dict[str, Any] | None) -> ScoreChanged | None:
    """The last change sent, kept to send again on a replay."""
    last = (doc or {}).get("last_change")
    return ScoreChanged.model_validate(last) if last else None


def _history(doc: dict[str, Any] | None) -> History:
    if not doc:
        return History()
    return History(
        # `kind` since v1.1 of the document; older ones stored the event type
        signals=tuple(Signal(s["event_id"], s.get("kind") or s["event_type"], s["occurred_at"]) for s in doc.get("signals", ())),
        triggers=tuple(doc.get("recent_triggers", ())),
        lead=LeadSnapshot.model_validate(doc["lead"]) if doc.get("lead") else None,
        lead_version=doc.get("lead_version", 0),
        # Documents from before `trigger` was kept: the trigger of the last change sent.
        trigger=Trigger.model_validate(doc["trigger"]) if doc.get("trigger")
        else last.trigger if (last := last_change(doc)) else None,
        moved_out=tuple((m["event_id"], m["one_id"]) for m in doc.get("moved_out", ())),
    )


def _fields(history: History) -> dict[str, Any]:
    return {
        "signals": [{"event_id": s.event_id, "kind": str(s.kind), "occurred_at": s.occurred_at}
                    for s in history.signals],
        "recent_triggers": list(history.triggers),
        "lead": history.lead.model_dump(mode="json") if history.lead else None,
        "lead_version": history.lead_version,
        "trigger": history.trigger.model_dump(mode="json") if history.trigger else None,
        "moved_out": [{"event_id": e, "one_id": o} for e, o in history.moved_out],  # FerretDB v1: no nested arrays
    }


def _emitted(doc: dict[str, Any]) -> Scored | None:
    """What consumers were told last: a slow decay is compared with that, not with the last stored score,
    or it would creep below the threshold step by step and never be told."""
    told = doc.get("emitted") or (doc if "score" in doc else None)
    if told is None:
        return None
    return Scored(told["score"], Grade(told["grade"]), ())
