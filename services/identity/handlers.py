"""identity use cases: identify a touchpoint (stitch, merge, emit), carry out ops commands (split,
review decisions, erasure) and answer look-ups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadflow.runtime import metrics
from leadflow.runtime.errors import RetryLater
from leadflow.runtime.messages import Handled, Outgoing
from schemas.identity import LinkedIdentifier, PersonsMerged, RejectedIdentifier, TouchpointIdentified
from schemas.topics import IDENTITY_MERGES, TOUCHPOINTS_IDENTIFIED
from schemas.touchpoints import Identifier, IdentifierType, TouchpointReceived
from leadflow.runtime.leases import LeaseTimeout, PersonLeases
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.domain import keys
from services.identity.domain.masking import mask
from services.identity.domain.normalize import InvalidIdentifier, NormalizedIdentifier, normalize
from services.identity.domain.phone_facts import phone_facts
from services.identity.domain.policy import PolicyBook
from services.identity.domain.stitching import Plan, Seen, plan, prepare

if TYPE_CHECKING:
    from services.identity.matcher import Matcher

MAX_ATTEMPTS = 16  # re-plans after losing a race; each lost race means another worker made progress


class Raced(Exception):
    """Another worker changed the graph between our reads and our writes: plan again."""


@dataclass
class Stitched:
    one_id: str
    merges: list[PersonsMerged] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)  # (type, reason)
    keys: list[str] = field(default_factory=list)


class IdentityService:
    def __init__(
        self,
        repo: IdentityRepository,
        *,
        master_secret: bytes,
        vault: Vault,
        clock: Callable[[], datetime],
        policies: PolicyBook | None = None,
    ) -> None:
        self.repo = repo
        self._master = master_secret
        self.vault = vault
        self._clock = clock
        self.policies = policies or PolicyBook()
        self.matcher: Matcher | None = None  # probabilistic matching, attached by bootstrap
        self.leases = PersonLeases(repo.links.database)

    def key_hash(self, tenant_id: str, identifier: NormalizedIdentifier) -> str:
        return keys.identifier_hash(keys.tenant_key(self._master, tenant_id), identifier)

    # ---- touchpoints -----------------------------------------------------------------------------
    async def identify(self, event: TouchpointReceived) -> Handled:
        tenant, event_id = event.tenant_id, event.event_id
        # The attempt marker first: every receipt and every emitted marker has one, so the first attempt
        # (nine events in ten) needs no look-up at all; a later one looks for what the earlier left.
        first_attempt = await self.repo.begin(tenant, event_id)
        if not first_attempt and await self.repo.was_emitted(tenant, event_id):
            return Handled()  # a duplicate of an event already identified and emitted
        receipt = None if first_attempt else await self.repo.receipt(tenant, event_id)
        prepared = prepare(event, self.policies.for_tenant(tenant))
        now = self._clock()
        if receipt:  # stitched before, but the output may never have reached the broker
            stitched = Stitched(
                await self.repo.root(tenant, receipt["one_id"]),
                [PersonsMerged.model_validate(m) for m in receipt.get("merges", ())],
                [(h["type"], h["reason"]) for h in receipt.get("held", ())],
                list(receipt.get("keys", ())),
            )
        else:
            for kind, reason in prepared.rejected:
                metrics.IDENTIFIERS_REJECTED.labels(tenant, kind, reason).inc()
            stitched = await self._stitch(event, prepared.valid, now)
            if self.matcher is not None:
                counted = set(stitched.keys)
                kept = [i for i in prepared.valid if self.key_hash(tenant, i) in counted]
                stitched.one_id, matched = await self.matcher.after_stitch(event, stitched.one_id, kept, now)
                stitched.merges += matched
            if not first_attempt:
                # An earlier attempt died before its receipt: merges it made are done, but unsent.
                done = {m.merge_id for m in stitched.merges}
                for doc in await self.repo.merges_caused_by(tenant, stitched.one_id, event_id):
                    if doc["event"]["merge_id"] not in done:
                        stitched.merges.append(PersonsMerged.model_validate(doc["event"]))
            await self.repo.save_receipt(tenant, event_id, {
                "one_id": stitched.one_id,
                "merges": [m.model_dump(mode="json") for m in stitched.merges],
                "held": [{"type": t, "reason": r} for t, r in stitched.held],  # FerretDB v1: no nested arrays
                "keys": stitched.keys,
                "at": now,
            })

        counted = set(stitched.keys)
        linked = [(self.key_hash(tenant, i), i) for i in prepared.valid]
        linked = [(k, i) for k, i in linked if k in counted]
        identified = TouchpointIdentified(
            tenant_id=tenant,
            event_id=event_id,
            one_id=stitched.one_id,
            touchpoint=event.model_copy(update={
                "identifiers": [
                    Identifier(type=i.type, value=mask(i.type, i.value), namespace=i.namespace or None)
                    for _, i in linked
                ],
                "attributes": await self._without_raw_identifiers(tenant, event.attributes),
            }),
            identifiers=[
                LinkedIdentifier(type=i.type, namespace=i.namespace or None, link_id=k, masked=mask(i.type, i.value),
                                 facts=phone_facts(i.value) if i.type is IdentifierType.PHONE else [])
                for k, i in linked
            ],
            rejected_identifiers=[
                RejectedIdentifier(type=t, reason=r) for t, r in [*prepared.rejected, *stitched.held]
            ],
            identified_at=now,
        )

        async def mark_emitted() -> None:
            await self.repo.mark_emitted(tenant, event_id)

        outgoing = [Outgoing(IDENTITY_MERGES, m.winner, m) for m in stitched.merges]
        return Handled([*outgoing, Outgoing(TOUCHPOINTS_IDENTIFIED, stitched.one_id, identified)], mark_emitted)

    async def _without_raw_identifiers(self, tenant: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Attributes as they may leave identity: a referrer's phone becomes the referrer's one_id."""
        if "referrer_phone" not in attributes:
            return attributes
        cleaned = {k: v for k, v in attributes.items() if k != "referrer_phone"}
        try:
            referrer = await self.resolve(tenant, Identifier(type=IdentifierType.PHONE, value=str(attributes["referrer_phone"])))
        except InvalidIdentifier:
            referrer = None
        if referrer and not cleaned.get("referrer_one_id"):
            cleaned["referrer_one_id"] = referrer
        return cleaned

    async def _stitch(
        self, event: TouchpointReceived, identifiers: tuple[NormalizedIdentifier, ...], now: datetime
    ) -> Stitched:
        tenant = event.tenant_id
        hashes = {self.key_hash(tenant, i): i for i in identifiers}
        candidate = keys.new_one_id(tenant, event.event_id)
        created = False
        for _ in range(MAX_ATTEMPTS):
            decided = await self._plan(tenant, hashes)
            if decided is None:
                continue  # a person mid-creation by another worker: look again
            if decided.owner is not None and not (decided.absorb or decided.link or decided.held):
                return Stitched(decided.owner, keys=[s.key for s in decided.kept])  # nothing changes
            if decided.owner is None and not (decided.link or decided.held):
                # An anonymous touchpoint is a person of its own.
                await self.repo.create_person(tenant, candidate, event.occurred_at, event.event_id)
                return Stitched(candidate)
            # Change the graph only under the leases of everybody whose identifiers are counted,
            # and only if the plan still holds once they are ours.
            involved = {s.owner for s in decided.kept if s.owner} | ({candidate} if decided.owner is None else set())
            try:
                async with self.leases.held(tenant, involved):
                    again = await self._plan(tenant, hashes)
                    if again is None or {s.owner for s in again.kept if s.owner} - involved:
                        continue
                    if again.owner is None:
                        await self.repo.create_person(tenant, candidate, event.occurred_at, event.event_id)
                        created = True
                    stitched = await self._carry_out(event, again, again.owner or candidate, now)
            except (Raced, LeaseTimeout):
                continue
            if created and stitched.one_id != candidate:
                await self.repo.drop_person_if_empty(tenant, candidate)
            return stitched
        raise RetryLater(f"identity graph kept changing under event {event.event_id}")

    async def _plan(self, tenant: str, hashes: dict[str, NormalizedIdentifier]) -> Plan | None:
        links = await self.repo.links_by_key(tenant, list(hashes))
        roots = await self.repo.living(tenant, {d["one_id"] for d in links.values()})
        seen = [
            Seen(k, i, roots[links[k]["one_id"]] if k in links else None,
                 links.get(k, {}).get("status") == "quarantined")
            for k, i in hashes.items()
        ]
        persons = await self.repo.views(tenant, {s.owner for s in seen if s.owner})
        if any(s.owner and s.owner not in persons for s in seen):
            return None
        return plan(seen, persons, self.policies.for_tenant(tenant))

    async def _carry_out(self, event: TouchpointReceived, decided: Plan, owner: str, now: datetime) -> Stitched:
        tenant, event_id = event.tenant_id, event.event_id
        result = Stitched(owner)
        for loser, via in decided.absorb:
            merge = PersonsMerged(
                merge_id=keys.merge_id(tenant, owner, loser),
                tenant_id=tenant,
                winner=owner,
                loser=loser,
                cause_identifier_type=via.identifier.type,
                event_id=event_id,
                merged_at=now,
            )
            await self.merge(tenant, merge, via_key=via.key)
            result.merges.append(merge)

        # The anchor explains every new link: the strongest identifier the person already had here.
        anchor = next((s for s in decided.kept if s.owner), None)
        # Members before links: the guardrails count members, so they may overcount for a moment
        # (a lost claim is withdrawn below) but never undercount what links say.
        intended = {s.key: s.identifier.type.value for s in decided.link}
        if intended:
            await self.repo.add_members(tenant, owner, intended)
        for s in decided.link:
            cause = ({"rule": "co_occurred", "via": anchor.key, "via_type": anchor.identifier.type.value}
                     if anchor else {"rule": "first_seen"})
            if anchor is None:
                anchor = s  # the person's first identifier; the others came with it
            got = await self.repo.claim(tenant, s.key, owner, {
                "type": s.identifier.type.value,
                "namespace": s.identifier.namespace,
                "masked": mask(s.identifier.type, s.identifier.value),
                "enc": self.vault.seal(s.identifier.value),
                "linked_at": now,
                "event_id": event_id,
                "cause": cause,
            })
            if got != owner and await self.repo.root(tenant, got) != await self.repo.root(tenant, owner):
                links = await self.repo.links_by_key(tenant, list(intended))
                await self.repo.remove_members(owner, [k for k in intended if links.get(k, {}).get("one_id") != owner])
                raise Raced()

        result.keys = [s.key for s in decided.kept]
        if decided.held:
            await self._hold(event, decided, owner, now, result)
        return result

    async def merge(self, tenant: str, merge: PersonsMerged, *, via_key: str | None) -> None:
        """Merge loser into winner (compare-and-set on the loser); raises Raced if it went elsewhere."""
        body = {"event_id": merge.event_id, "via": via_key, "event": merge.model_dump(mode="json")}
        if await self.repo.claim_merge(tenant, merge.loser, merge.winner, body) != merge.winner:
            raise Raced()  # somebody merged the loser elsewhere first; the graph moved on
        await self.repo.fold(tenant, merge.loser, merge.winner)
        metrics.IDENTITY_MERGES.labels(tenant, merge.cause).inc()

    async def _hold(self, event: TouchpointReceived, decided: Plan, owner: str, now: datetime,
                    result: Stitched) -> None:
        tenant = event.tenant_id
        policy = self.policies.for_tenant(tenant)
        for h in decided.held:
            result.held.append((h.seen.identifier.type.value, h.reason))
            if h.reason == "quarantined" or not h.seen.owner or h.seen.owner == owner:
                continue
            # An identifier owned by somebody else came with this person but could not join them.
            distinct = await self.repo.seen_with(tenant, h.seen.key, owner)
            if len(distinct) + 1 >= policy.hub_threshold:  # + its own person
                await self.repo.quarantine(tenant, h.seen.key, now)
                metrics.IDENTITY_QUARANTINED.labels(tenant, h.seen.identifier.type.value).inc()
        if decided.conflict:
            metrics.IDENTITY_CONFLICTS.labels(tenant, decided.conflict.split(":")[0]).inc()
            await self.repo.record_conflict(tenant, event.event_id, {
                "at": now,
                "reason": decided.conflict,
                "person": owner,
                "persons": sorted({owner, *(h.seen.owner for h in decided.held if h.seen.owner)}),
                "held": [
                    {"type": h.seen.identifier.type.value, "value": mask(h.seen.identifier.type, h.seen.identifier.value),
                     "link_id": h.seen.key, "owner": h.seen.owner, "reason": h.reason}
                    for h in decided.held
                ],
                "status": "open",
            })

    # ---- queries ---------------------------------------------------------------------------------
    async def resolve(self, tenant_id: str, identifier: Identifier) -> str | None:
        """The one_id of an identifier, normalised exactly as on ingest (raises InvalidIdentifier)."""
        key = self.key_hash(tenant_id, normalize(identifier))
        links = await self.repo.links_by_key(tenant_id, [key])
        return await self.repo.root(tenant_id, links[key]["one_id"]) if key in links else None

    async def live_one_id(self, tenant_id: str, one_id: str) -> str:
        """The surviving one_id of a person who may have been merged into another."""
        return await self.repo.root(tenant_id, one_id)

    async def identifiers_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        """The person's identifiers, masked, each with why it belongs (its link's cause)."""
        return [
            {"link_id": d["_id"], "type": d["type"], "namespace": d.get("namespace") or None,
             "masked": d["masked"], "linked_at": d["linked_at"], "event_id": d["event_id"],
             "cause": d.get("cause", {"rule": "first_seen"}), "status": d.get("status", "active")}
            for d in await self.member_links(tenant_id, one_id)
        ]

    async def explain(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        """Who this person is made of and why: every identifier with its link, every merge with its cause."""
        root = await self.repo.root(tenant_id, one_id)
        person = await self.repo.person(tenant_id, root)
        if person is None or person.get("erased"):
            return None
        links = await self.member_links(tenant_id, root)
        identifiers = []
        for d in links:
            cause = d.get("cause", {"rule": "first_seen"})
            identifiers.append({
                "link_id": d["_id"], "type": d["type"], "namespace": d.get("namespace") or None,
                "value": d["masked"], "status": d.get("status", "active"), "linked_at": d["linked_at"],
                "event_id": d["event_id"],
                "cause": {"rule": cause["rule"], "via_link_id": cause.get("via"), "via_type": cause.get("via_type"),
                          "command_id": cause.get("command_id"), "split_from": cause.get("from")},
            })
        merges = await self.repo.merges_of(tenant_id, sorted(set(person.get("absorbed", ())) - {root}))
        return {
            "one_id": root,
            "created_at": person["created_at"],
            "split_from": person.get("split_from"),
            "identifiers": identifiers,
            "merges": [m["event"] for m in merges],
        }

    async def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return await self.repo.list_conflicts(tenant_id, limit)

    async def quarantined(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        docs = await self.repo.quarantined(tenant_id, limit)
        roots = await self.repo.living(tenant_id, {d["one_id"] for d in docs})
        return [{"link_id": d["_id"], "type": d["type"], "value": d["masked"], "one_id": roots[d["one_id"]],
                 "quarantined_at": d.get("quarantined_at"), "seen_with": len(d.get("seen_with", ()))} for d in docs]

    async def reveal(self, tenant_id: str, one_id: str, link_id: str) -> tuple[str, str] | None:
        """The raw value of one of the person's identifiers (the caller audits the reveal)."""
        root = await self.repo.root(tenant_id, one_id)
        links = await self.repo.links_by_key(tenant_id, [link_id])
        link = links.get(link_id)
        if link is None or await self.repo.root(tenant_id, link["one_id"]) != root:
            return None
        return link["type"], self.vault.open(link["enc"])

    async def member_links(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        person = await self.repo.person(tenant_id, one_id)
        if person is None:
            return []
        links = await self.repo.links_by_key(tenant_id, list(person.get("members", {})))
        roots = await self.repo.living(tenant_id, {d["one_id"] for d in links.values()})
        # members is a hint; a link moved away by a split no longer counts.
        owned = [d for d in links.values() if roots[d["one_id"]] == one_id]
        return sorted(owned, key=lambda d: (d["linked_at"], d["_id"]))

