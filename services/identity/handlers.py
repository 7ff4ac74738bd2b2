"""identity use cases: identify a touchpoint (stitch, merge, emit) and answer look-ups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadflow.runtime.messages import Handled, Outgoing
from schemas.identity import PersonsMerged, RejectedIdentifier, TouchpointIdentified
from schemas.topics import IDENTITY_MERGES, TOUCHPOINTS_IDENTIFIED
from schemas.touchpoints import Identifier, TouchpointReceived
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.domain import keys
from services.identity.domain.masking import mask
from services.identity.domain.normalize import NormalizedIdentifier, normalize
from services.identity.domain.stitching import prepare, split_winner


class IdentityService:
    def __init__(
        self,
        repo: IdentityRepository,
        *,
        master_secret: bytes,
        vault: Vault,
        clock: Callable[[], datetime],
    ) -> None:
        self.repo = repo
        self._master = master_secret
        self._vault = vault
        self._clock = clock

    def key_hash(self, tenant_id: str, identifier: NormalizedIdentifier) -> str:
        return keys.identifier_hash(keys.tenant_key(self._master, tenant_id), identifier)

    async def identify(self, event: TouchpointReceived) -> Handled:
        tenant, event_id = event.tenant_id, event.event_id
        if await self.repo.was_emitted(tenant, event_id):
            return Handled()  # a duplicate of an event already identified and emitted
        receipt = await self.repo.receipt(tenant, event_id)
        prepared = prepare(event)
        now = self._clock()
        if receipt:  # stitched before, but the output may never have reached the broker
            one_id = await self.repo.live_root(tenant, receipt["one_id"])
            merges = [PersonsMerged.model_validate(m) for m in receipt.get("merges", ())]
        else:
            one_id, merges = await self._stitch(event, prepared.valid, now)
            await self.repo.save_receipt(tenant, event_id, one_id, [m.model_dump(mode="json") for m in merges], now)

        identified = TouchpointIdentified(
            tenant_id=tenant,
            event_id=event_id,
            one_id=one_id,
            touchpoint=event.model_copy(
                update={
                    "identifiers": [
                        Identifier(type=i.type, value=i.value, namespace=i.namespace or None)
                        for i in prepared.valid
                    ]
                }
            ),
            rejected_identifiers=[RejectedIdentifier(type=t, reason=r) for t, r in prepared.rejected],
            identified_at=now,
        )

        async def mark_emitted() -> None:
            await self.repo.mark_emitted(tenant, event_id)

        outgoing = [Outgoing(IDENTITY_MERGES, m.winner, m) for m in merges]
        return Handled([*outgoing, Outgoing(TOUCHPOINTS_IDENTIFIED, one_id, identified)], mark_emitted)

    async def _stitch(
        self, event: TouchpointReceived, identifiers: tuple[NormalizedIdentifier, ...], now: datetime
    ) -> tuple[str, list[PersonsMerged]]:
        tenant, event_id = event.tenant_id, event.event_id
        candidate = keys.new_one_id(tenant, event_id)
        hashes = {self.key_hash(tenant, i): i for i in identifiers}
        known = await self.repo.owners(tenant, list(hashes))
        living = await self.repo.live_persons(tenant, set(known.values()))
        if living:
            target = split_winner(list(living.values()))[0].one_id
        else:
            target = candidate
            await self.repo.ensure_person(tenant, candidate, now, event_id)

        # Identifiers somebody owns already need no claim; the others are claimed for the target.
        claimed: dict[str, str] = dict(known)
        for key_hash, identifier in hashes.items():
            if key_hash in known:
                continue
            claimed[key_hash] = await self.repo.claim(
                    tenant,
                    key_hash,
                    target,
                    {
                        "type": identifier.type.value,
                        "namespace": identifier.namespace,
                        "masked": mask(identifier.type, identifier.value),
                        "enc": self._vault.seal(identifier.value),
                        "linked_at": now,
                        "event_id": event_id,
                    },
                )
        owners = set(claimed.values())
        if target == candidate and candidate not in owners and identifiers:
            await self.repo.drop_person(candidate)  # lost every claim race: no link names it
        if not owners:
            return target, []  # nothing to link: an anonymous touchpoint is its own person

        unseen = owners - living.keys()  # owners that only a racing worker's claim revealed
        living |= await self.repo.live_persons(tenant, unseen) if unseen else {}
        winner, losers = split_winner(list(living.values()))
        merges = []
        for loser in losers:
            # The cause is an identifier that carried the loser's link into this event.
            cause = next((hashes[k] for k, o in claimed.items() if living.get(o) == loser), identifiers[0])
            merges.append(await self._merge(event, winner.one_id, loser.one_id, cause, now))
        return winner.one_id, merges

    async def _merge(
        self, event: TouchpointReceived, winner: str, loser: str, cause: NormalizedIdentifier, now: datetime
    ) -> PersonsMerged:
        tenant = event.tenant_id
        merge = PersonsMerged(
            merge_id=keys.merge_id(tenant, winner, loser),
            tenant_id=tenant,
            winner=winner,
            loser=loser,
            cause_identifier_type=cause.type,
            event_id=event.event_id,
            merged_at=now,
        )
        # Audit first: a crash after this line is repaired by the replay, which merges again.
        await self.repo.record_merge(
            {
                "_id": merge.merge_id,
                "tenant_id": tenant,
                "event_id": event.event_id,
                "winner": winner,
                "loser": loser,
                "event": merge.model_dump(mode="json"),
            }
        )
        await self.repo.mark_merged(tenant, loser, winner)
        await self.repo.repoint(tenant, loser, winner)
        return merge

    # ---- queries ---------------------------------------------------------------------------------
    async def resolve(self, tenant_id: str, identifier: Identifier) -> str | None:
        """The one_id of an identifier, normalised exactly as on ingest (raises InvalidIdentifier)."""
        return await self.repo.resolve(tenant_id, self.key_hash(tenant_id, normalize(identifier)))

    async def live_one_id(self, tenant_id: str, one_id: str) -> str:
        """The surviving one_id of a person who may have been merged into another."""
        return await self.repo.live_root(tenant_id, one_id)

    async def identifiers_of(self, tenant_id: str, one_id: str) -> list[dict]:
        return [
            {"type": d["type"], "namespace": d.get("namespace") or None, "masked": d["masked"],
             "linked_at": d["linked_at"], "event_id": d["event_id"]}
            for d in await self.repo.links_of(tenant_id, one_id)
        ]
