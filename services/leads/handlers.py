"""leads use cases: apply an identified touchpoint (cleaned, assessed, counted) to the person's lead;
apply consultants' outcomes and task assignments; credit referrers; send persons dormant on a timer;
fold, split and erase persons as identity decides; answer lead and source-quality queries."""

from __future__ import annotations

import logging
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from leadflow.runtime import metrics
from leadflow.runtime.leases import PersonGuard, PersonLeases
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.runtime.ownership import OVERFETCH, Owned, Owns, everything, unpartitioned
from leadflow.runtime.persons import persons_of
from schemas.identity import PersonErased, PersonsMerged, PersonSplit, TouchpointIdentified
from schemas.leads import LeadUpdated, Stage, Verdict
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from schemas.topics import LEADS_ALERTS, LEADS_CHANGES
from schemas.touchpoints import EventType
from services.leads.adapters.repository import LeadRepository, Stored, same_lead
from services.leads.adapters.signals import BadPhones, Velocity
from services.leads.adapters.sources import SourceStats, alert_event
from services.leads.adapters.timeline import Timeline, assessment_of
from services.leads.domain.intake import clean_touchpoint, counted, devices_of, quality_input
from services.leads.domain.lead import (
    Applied,
    Lead,
    apply,
    apply_outcome,
    assign,
    now_of,
    credit,
    due_at,
    tick,
    trigger_of,
)
from services.leads.domain.merging import Credit, fold, rebuild
from services.leads.domain.policy import LeadPolicy, LeadPolicyBook
from services.leads.domain.quality import Assessment, assess
from services.leads.domain.source_quality import AlertPolicy, SourceReport, bucket_of, report, sources_of
from services.leads.domain.stages import CauseType, Transition

log = logging.getLogger(__name__)
LEASES = "lead_leases"  # the persons' leases while several workers run (`PersonGuard`)
_CHANGE_NS = uuid.UUID("0b8f1f9e-7a43-4c52-9d0e-5f2b8e0c6a11")


class LeadService:
    def __init__(self, repo: LeadRepository, timeline: Timeline, velocity: Velocity, bad_phones: BadPhones,
                 sources: SourceStats, policies: LeadPolicyBook, *, timer_batch: int = 500,
                 timer_interval_s: float = 30.0) -> None:
        self.repo = repo
        self.owns: Owns = everything  # the timer's persons; one worker of several: its partitions' (bootstrap)
        self.owned: Owned = unpartitioned  # ... and those partitions (bootstrap)
        self.timeline = timeline
        self.velocity = velocity
        self.bad_phones = bad_phones
        self.sources = sources
        self.policies = policies
        self.timer_batch = timer_batch
        self.timer_interval_s = timer_interval_s
        # A worker's agents (touchpoints, identity changes, outcomes, tasks) and its timer write the same
        # documents: one change at a time, and the persons' leases when leads runs as several workers
        # (`leadflow/runtime/leases.py`; the entrypoint sets `guard.sole`).
        self.guard = PersonGuard(PersonLeases(repo.leads.database, collection=LEASES), repo.resolve)

    async def ensure_indexes(self) -> None:
        for store in (self.repo, self.timeline, self.velocity, self.bad_phones, self.sources, self.guard):
            await store.ensure_indexes()

    # ---- touchpoints -----------------------------------------------------------------------------
    async def on_identified(self, event: TouchpointIdentified) -> Handled:
        async with self.guard.person(event.tenant_id, event.one_id), AsyncExitStack() as more:
            return await self._identified(event, more)

    async def _identified(self, event: TouchpointIdentified, more: AsyncExitStack) -> Handled:
        tenant = event.tenant_id
        policy = self.policies.for_tenant(tenant)
        # A merged person's touchpoint goes to whom they live on as.
        target, stored = await self.repo.resolve(tenant, event.one_id)
        # An erasure runs under the same guard, so none comes between this look and the writes below.
        if stored is None and await self.repo.is_erased(tenant, target):
            return Handled()  # identified before the person was erased: nothing may bring them back
        cleaned = clean_touchpoint(event, policy)
        # Assessed before it is filed, so that its entry is written once with its verdict.
        fresh = await self._assess(event, cleaned, policy)
        # The timeline decides for a touchpoint it knows: a split may have given it to somebody else.
        filed_under, entry = await self.timeline.add_touchpoint(event, target, fresh)
        if filed_under != target:
            await more.enter_async_context(self.guard.also(tenant, filed_under))
            target, stored = await self.repo.resolve(tenant, filed_under)
            if target != filed_under:
                await self.timeline.move_touchpoint(tenant, event.event_id, target)
        # A replay keeps the verdict of the first attempt: the counters it read have moved on since.
        assessment = assessment_of(entry)
        if assessment is None:  # filed by a version that assessed after filing, and died in between
            assessment = fresh
            await self.timeline.set_assessment(tenant, event.event_id, assessment)
        before = stored.lead if stored else None
        applied = apply(before or Lead(tenant_id=tenant, one_id=target), event, cleaned, assessment, policy)
        lead = applied.lead
        if applied.new:
            await self._save(applied, policy, now_of(event))
            _count(tenant, event, assessment, lead, applied)
        outgoing = [self._change(lead, cause="touchpoint", cause_id=event.event_id, trigger=trigger_of(event),
                                 previous=applied.transitions[0].from_stage if applied.transitions else None,
                                 repeat_inquiry=applied.repeat_inquiry)]
        outgoing += await self._credit_referrer(lead, event, policy, more)
        alerts = await self._count_sources(event, assessment, policy.alerts, counted_already=bool(entry.get("counted")))
        outgoing += [Outgoing(LEADS_ALERTS, tenant, alert_event(tenant, a, datetime.now(UTC))) for a in alerts]

        async def after_emit() -> None:
            for alert in alerts:
                await self.sources.emitted(tenant, alert)

        return Handled(outgoing, after_emit if alerts else None)

    async def _assess(self, event: TouchpointIdentified, cleaned, policy: LeadPolicy) -> Assessment:
        """The touchpoint's verdict with the windowed counts of its device and IP (each submission is
        recorded once, so a replay counts nothing twice)."""
        tenant, tp = event.tenant_id, event.touchpoint
        window = policy.quality.velocity_window
        device_forms = ip_forms = 0
        if counted(event):
            for device in devices_of(event):
                async with self.guard.exclusive(tenant, self.velocity.key(tenant, "device", device)):
                    n = await self.velocity.record(tenant, "device", device, event.event_id, tp.occurred_at, window)
                device_forms = max(device_forms, n)
            if tp.source.ip:
                ip = str(tp.source.ip)
                async with self.guard.exclusive(tenant, self.velocity.key(tenant, "ip", ip)):
                    ip_forms = await self.velocity.record(tenant, "ip", ip, event.event_id, tp.occurred_at, window)
        phones = [i.link_id for i in event.identifiers if i.type == "phone"]
        bad = await self.bad_phones.among(tenant, phones) if phones else set()
        return assess(quality_input(event, cleaned, device_forms=device_forms, ip_forms=ip_forms, bad_phones=bad),
                      policy.quality)

    async def _count_sources(self, event: TouchpointIdentified, assessment: Assessment, policy: AlertPolicy, *,
                             counted_already: bool) -> list:
        """Count the verdict per source once (the entry's flag); the alerts that raises."""
        tenant, tp = event.tenant_id, event.touchpoint
        alerts = []
        if not counted_already:
            for dimension, value in sources_of(tp.source.channel, tp.source.campaign_id, tp.source.store_id):
                async with self.guard.exclusive(tenant, f"source\x1f{dimension}\x1f{value}"):
                    alert = await self.sources.count(tenant, dimension, value, tp.occurred_at, assessment.verdict,
                                                     policy)
                if alert is not None:
                    alerts.append(alert)
                    metrics.SOURCE_ALERTS.labels(tenant, dimension).inc()
            await self.timeline.mark_counted(tenant, event.event_id)
        return alerts

    async def _credit_referrer(self, lead: Lead, event: TouchpointIdentified, policy: LeadPolicy,
                               more: AsyncExitStack) -> list[Outgoing]:
        """A referred person's referral_made touchpoint credits the person who referred them."""
        referrer_id = lead.life.referrer_one_id
        if event.touchpoint.event_type is not EventType.REFERRAL_MADE or referrer_id is None:
            return []
        tenant = lead.tenant_id
        await more.enter_async_context(self.guard.also(tenant, referrer_id))  # another person's document
        target, stored = await self.repo.resolve(tenant, referrer_id)
        if target == lead.one_id or (stored is None and await self.repo.is_erased(tenant, target)):
            return []
        entry = Credit(lead.one_id, event.event_id, event.touchpoint.occurred_at)
        await self.timeline.add_credit(tenant, target, entry)
        referrer = stored.lead if stored and stored.lead else Lead(tenant_id=tenant, one_id=target)
        applied = credit(referrer, referred_one_id=entry.referred_one_id, event_id=entry.event_id, at=entry.at, policy=policy)
        if not applied.new:
            return []
        await self._save(applied, policy, entry.at)
        metrics.REFERRALS_CREDITED.labels(tenant).inc()
        return self._changed(applied, cause="referral", cause_id=f"{event.event_id}\x1fcredit")

    # ---- outcomes and assignments ----------------------------------------------------------------
    async def on_outcome(self, outcome: TaskOutcomeRecorded) -> Handled:
        async with self.guard.person(outcome.tenant_id, outcome.one_id):
            tenant = outcome.tenant_id
            policy = self.policies.for_tenant(tenant)
            target, stored = await self.repo.resolve(tenant, outcome.one_id)
            if stored is None and await self.repo.is_erased(tenant, target):
                return Handled()
            await self.timeline.add_outcome(outcome, target)
            lead = stored.lead if stored and stored.lead else Lead(tenant_id=tenant, one_id=target)
            applied = apply_outcome(lead, outcome, policy)
            if not applied.new:
                return Handled(self._changed(applied, cause="outcome", cause_id=outcome.outcome_id))
            for mark in applied.marked_bad:
                await self.bad_phones.mark(tenant, mark.link_id, one_id=target, outcome_id=outcome.outcome_id,
                                           at=outcome.recorded_at)
                metrics.PHONES_MARKED_BAD.labels(tenant).inc()
            await self._save(applied, policy, outcome.recorded_at)
            for transition in applied.transitions:
                metrics.STAGE_TRANSITIONS.labels(tenant, str(transition.from_stage or "none"), str(transition.to_stage)).inc()
            return Handled(self._changed(applied, cause="outcome", cause_id=outcome.outcome_id))

    async def on_task(self, task: TaskCreated) -> Handled:
        async with self.guard.person(task.tenant_id, task.one_id):
            tenant = task.tenant_id
            target, stored = await self.repo.resolve(tenant, task.one_id)
            if stored is None or stored.lead is None:
                return Handled()  # tasks follow leads: a person leads never saw was erased
            await self.timeline.add_assignment(task, target)
            applied = assign(stored.lead, task)
            if applied.lead is stored.lead:
                # A replay: emit again if this task made the owner (the first attempt may have died before
                # its send); the change id is the same, so consumers recognise it.
                owner = stored.lead.owner
                made_owner = owner is not None and (owner.consultant_id, owner.store_id) == (task.consultant_id, task.store_id)
                return Handled(self._changed(applied, cause="assignment", cause_id=task.task_id) if made_owner else [])
            await self._save(applied, self.policies.for_tenant(tenant), task.created_at)
            return Handled(self._changed(applied, cause="assignment", cause_id=task.task_id) if applied.new else [])

    # ---- the timer -------------------------------------------------------------------------------
    async def on_timer(self, now: datetime | None = None) -> Handled:
        """Persons whose dormancy or replacement time came (one batch; the next run takes the rest): their
        changes. They come from the agenda (`leadflow/runtime/agenda.py`), swept from the leads twice a day."""
        now = now or datetime.now(UTC)
        outgoing: list[Outgoing] = []
        agenda = self.repo.agenda
        async with self.guard.locked():
            if await agenda.sweep_needed(now, self.owned()):
                entered = await agenda.swept(await self.repo.due_until(now + agenda.horizon), now)
                log.info("leads: the agenda's sweep entered %d persons", entered)
            due = [e for e in await agenda.due(now, self.timer_batch * OVERFETCH) if self.owns(e.owner)]
            for entry in due[:self.timer_batch]:
                async with self.guard.also(entry.tenant_id, entry.key):
                    stored = await self.repo.load(entry.tenant_id, entry.key)
                    if stored is None or stored.lead is None or stored.merged_into:
                        await agenda.drop(entry.tenant_id, entry.key)  # merged away or erased since
                        continue
                    if stored.due_at is None or stored.due_at > now:
                        await agenda.settle(entry, stored.due_at, now)  # moved since it was entered
                        continue
                    lead = stored.lead
                    policy = self.policies.for_tenant(lead.tenant_id)
                    applied = tick(lead, policy, now)
                    await agenda.settle(entry, await self._save(applied if applied.new else Applied(lead), policy, now), now)
                if applied.new:
                    for transition in applied.transitions:
                        metrics.STAGE_TRANSITIONS.labels(lead.tenant_id, str(transition.from_stage),
                                                         str(transition.to_stage)).inc()
                    outgoing += self._changed(applied, cause="timer", cause_id=f"timer\x1f{applied.lead.version}")
        return Handled(outgoing)

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
                    await self.timeline.erase(change.tenant_id, change.one_ids)
                    await self.bad_phones.erase(change.tenant_id, change.one_ids)
                    return Handled()

    async def _merged(self, merge: PersonsMerged) -> Handled:
        """Fold the loser's lead into the winner's; the loser's document redirects its late touchpoints."""
        tenant = merge.tenant_id
        policy = self.policies.for_tenant(tenant)
        if await self._any_erased(tenant, merge.winner, merge.loser):
            return Handled()  # a replay after an erasure must not bring anybody back
        # The tombstone first, keeping the loser's lead: a replay after a crash still has it to fold.
        buried = await self.repo.load(tenant, merge.loser)
        loser = buried.lead if buried else None
        if buried is None or buried.merged_into is None:
            await self.repo.store(tenant, merge.loser, Stored(loser, merged_into=merge.winner))
        target, stored = await self.repo.resolve(tenant, merge.winner)  # the winner may be merged by now
        if target == merge.loser:
            raise RuntimeError(f"merge {merge.merge_id} would merge {merge.loser} into itself")
        winner = stored.lead if stored else None
        if loser is None:
            return Handled()  # nothing of the loser reached leads: its touchpoints will, redirected
        folded, transition = fold(winner or Lead(tenant_id=tenant, one_id=target), loser, merge_id=merge.merge_id,
                                  at=merge.merged_at, policy=policy)
        applied = Applied(folded, (transition,) if transition else (), new=folded is not winner)
        if applied.new:
            await self._save(applied, policy, merge.merged_at)
        return Handled(self._changed(applied, cause="merge", cause_id=f"{merge.merge_id}\x1f{target}",
                                     before=winner))

    async def _split(self, split: PersonSplit) -> Handled:
        """The moved touchpoints go to the new person, and both persons are rebuilt from their timelines."""
        tenant = split.tenant_id
        if await self._any_erased(tenant, split.source, split.new_one_id):
            return Handled()
        source, _ = await self.repo.resolve(tenant, split.source)
        new, _ = await self.repo.resolve(tenant, split.new_one_id)
        for event_id in split.moved_event_ids:
            await self.timeline.move_touchpoint(tenant, event_id, new)  # placed ahead if it has not arrived yet
        outgoing = []
        for one_id, moved_away in [(source, set(split.moved_event_ids))] + ([(new, set())] if new != source else []):
            before, after = await self._rebuild(tenant, one_id, moved_away=moved_away)
            if after is not None:
                outgoing += self._changed(Applied(after), cause="split", cause_id=f"{split.split_id}\x1f{one_id}",
                                          before=before)
        return Handled(outgoing)

    async def _rebuild(self, tenant: str, one_id: str, *, moved_away: set[str]) -> tuple[Lead | None, Lead | None]:
        """Rebuild a person's lead and stage history from their timeline (and of the persons it absorbed).
        Returns the lead before and after."""
        policy = self.policies.for_tenant(tenant)
        stored = await self.repo.load(tenant, one_id)
        current = stored.lead if stored else None
        if current is not None and not current.on_timeline:
            return current, current  # older than the timeline: nobody can tell which touchpoints were whose
        absorbed = current.absorbed if current else ()
        entries = await self.timeline.of(tenant, [one_id, *absorbed])
        lead, transitions = rebuild(tenant, one_id, entries, policy)
        if current is None and lead.touchpoints == 0:
            return None, None  # nothing of this person has reached leads yet
        lead = replace(lead, absorbed=absorbed, version=(current.version if current else 0) + 1)
        if current is not None and same_lead(lead, current):
            lead = current  # rebuilt already (a replay)
        else:
            await self.repo.save(lead, due=due_at(lead, policy, datetime.now(UTC)))
        # Always, so that a replay after a crash between the two writes completes the history.
        causes = {f.key for f in entries} | moved_away
        await self.repo.replace_transitions(tenant, one_id, transitions, causes=causes, stale_types={CauseType.MERGE.value})
        return current, lead

    async def _any_erased(self, tenant: str, *one_ids: str) -> bool:
        return any([await self.repo.is_erased(tenant, one_id) for one_id in one_ids])

    # ---- writing and emitting --------------------------------------------------------------------
    async def _save(self, applied: Applied, policy: LeadPolicy, now: datetime) -> datetime | None:
        """Write the transitions, then the lead with when the timer must look at it next; that time."""
        # Transitions before the lead: an erasure that finds the lead finds its history too.
        for transition in applied.transitions:
            await self.repo.record_transition(applied.lead, transition)
        due = due_at(applied.lead, policy, now)
        await self.repo.save(applied.lead, due=due)
        return due

    def _change(self, lead: Lead, *, cause: str, cause_id: str, trigger, previous=None,
                repeat_inquiry: bool = False) -> Outgoing:
        # The same id for a replay: the first attempt may have died between the write and the send.
        change = LeadUpdated(
            change_id=str(uuid.uuid5(_CHANGE_NS, f"{lead.tenant_id}\x1f{cause_id}" if cause == "touchpoint"
                                     else f"{lead.tenant_id}\x1f{cause}\x1f{cause_id}")),
            tenant_id=lead.tenant_id,
            one_id=lead.one_id,
            version=lead.version,
            trigger=trigger,
            lead=lead.snapshot(),
            previous_stage=previous,
            cause=cause,
            cause_id=cause_id.split("\x1f")[0],
            repeat_inquiry=repeat_inquiry,
        )
        return Outgoing(LEADS_CHANGES, lead.one_id, change)

    def _changed(self, applied: Applied, *, cause: str, cause_id: str, before: Lead | None = None) -> list[Outgoing]:
        """The LeadUpdated of a change that no touchpoint made; its trigger is the newest touchpoint."""
        lead = applied.lead
        if lead.last_trigger is None:
            return []  # no touchpoint of this person has reached leads yet: nothing to score
        previous = applied.transitions[0].from_stage if applied.transitions else None
        if before is not None:
            previous = before.stage if before.touchpoints and before.stage != lead.stage else None
        return [self._change(lead, cause=cause, cause_id=cause_id, trigger=lead.last_trigger, previous=previous)]

    # ---- queries ---------------------------------------------------------------------------------
    async def get(self, tenant_id: str, one_id: str) -> Lead | None:
        """The lead of the person `one_id` lives on as (a merged one_id leads to the survivor's)."""
        _, stored = await self.repo.resolve(tenant_id, one_id)
        return stored.lead if stored else None

    async def list(self, tenant_id: str, *, verdict: Verdict | None = None, stage: Stage | None = None,
                   tag: str | None = None, reason: str | None = None, one_ids: list[str] | None = None,
                   limit: int = 50) -> list[Lead]:
        return await self.repo.list(tenant_id, verdict=verdict, stage=stage, tag=tag, reason=reason, one_ids=one_ids,
                                    limit=limit)

    async def funnel(self, tenant_id: str, *, store_ids: list[str] | None = None, channel: str | None = None,
                     product: str | None = None) -> dict[Stage, int]:
        return await self.repo.stage_counts(tenant_id, store_ids=store_ids, channel=channel, product=product)

    async def stage_entries(self, tenant_id: str, *, store_ids: list[str] | None = None, channel: str | None = None,
                            product: str | None = None) -> list[tuple[Stage, datetime]]:
        return await self.repo.stage_entries(tenant_id, store_ids=store_ids, channel=channel, product=product)

    async def timeline_of(self, tenant_id: str, one_id: str, limit: int = 100) -> list[dict]:
        return await self.timeline.entries_of(tenant_id, one_id, limit)

    async def history(self, tenant_id: str, one_id: str) -> list[dict]:
        return await self.repo.transitions_of(tenant_id, one_id)

    async def source_quality(self, tenant_id: str, *, hours: int, now: datetime | None = None) -> list[SourceReport]:
        now = now or datetime.now(UTC)
        # The hour `hours` ago is partly inside the window: keep its whole bucket rather than drop it.
        since = bucket_of(now - timedelta(hours=hours))
        rows = await self.sources.rows(tenant_id, since)
        baselines = await self.sources.baselines_of(tenant_id)
        return report(rows, baselines, since=since, until=bucket_of(now) + timedelta(hours=1),
                      policy=self.policies.for_tenant(tenant_id).alerts)

    async def alerts(self, tenant_id: str, *, hours: int, now: datetime | None = None) -> list[dict]:
        now = now or datetime.now(UTC)
        return await self.sources.recent_alerts(tenant_id, now - timedelta(hours=hours))


def _count(tenant: str, event: TouchpointIdentified, assessment: Assessment, lead: Lead, applied: Applied) -> None:
    channel = event.touchpoint.source.channel
    metrics.LEAD_VERDICTS.labels(tenant, assessment.verdict.value, channel).inc()
    for reason in assessment.reasons:
        metrics.LEAD_REASONS.labels(tenant, reason, channel).inc()
    for transition in applied.transitions:
        metrics.STAGE_TRANSITIONS.labels(tenant, str(transition.from_stage or "none"), str(transition.to_stage)).inc()
    if applied.repeat_inquiry:
        metrics.REPEAT_INQUIRIES.labels(tenant, channel).inc()
    if lead.collision is not None and lead.collision.event_id == event.event_id:
        metrics.COLLISIONS.labels(tenant, lead.collision.resolution.value).inc()


__all__ = ["LeadService", "Transition"]
