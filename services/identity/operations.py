"""identity ops commands (from `identity.commands`): split a person, decide a possible match, erase a person.

Each command is carried out once: its result, with the events it emitted, is stored under the command
id, so a redelivered command emits the same events again and changes nothing.
Produces: identity.merges (PersonSplit, PersonsMerged with cause review_approved, PersonErased).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow.runtime import metrics
from leadflow.runtime.messages import Handled, Outgoing
from schemas.identity import (
    ErasureRequested,
    IdentityChanged,
    PersonErased,
    PersonSplit,
    ReviewDecided,
    SplitRequested,
)
from schemas.topics import IDENTITY_MERGES
from schemas.touchpoints import IdentifierType
from services.identity.adapters.repository import IdentityRepository
from services.identity.handlers import IdentityService

_OPS_NS = uuid.UUID("9a1d7c3e-52b4-4f8e-a0c6-3e7d1b2f4c58")


def split_one_id(tenant_id: str, command_id: str) -> str:
    """The one_id a split creates: known to the API before the command is carried out."""
    return str(uuid.uuid5(_OPS_NS, f"split\x1f{tenant_id}\x1f{command_id}"))


class IdentityOperations:
    def __init__(self, identity: IdentityService, *, clock: Callable[[], datetime],
                 reviews: Any | None = None) -> None:
        self.identity = identity
        self.repo: IdentityRepository = identity.repo
        self._clock = clock
        self._reviews = reviews  # the review queue, when probabilistic matching is on

    async def on_command(self, command: SplitRequested | ReviewDecided | ErasureRequested) -> Handled:
        tenant = command.tenant_id
        done = await self.repo.command_result(tenant, command.command_id)
        if done is None:
            match command:
                case SplitRequested():
                    async with self.identity.leases.held(tenant, {await self.repo.root(tenant, command.one_id)}):
                        status, events = await self._split(command)
                case ErasureRequested():
                    async with self.identity.leases.held(tenant, {await self.repo.root(tenant, command.one_id)}):
                        status, events = await self._erase(command)
                case ReviewDecided():
                    status, events = await self._decide(command)  # takes the leases it needs
            done = {"kind": command.kind, "status": status, "at": self._clock(),
                    "events": [e.model_dump(mode="json") for e in events]}
            await self.repo.save_command_result(tenant, command.command_id, done)
        changes = [IdentityChanged.model_validate(e).root for e in done["events"]]
        return Handled([Outgoing(IDENTITY_MERGES, _key_of(c), c) for c in changes])

    async def status(self, tenant_id: str, command_id: str) -> dict[str, Any] | None:
        return await self.repo.command_result(tenant_id, command_id)

    # ---- split -----------------------------------------------------------------------------------
    async def _split(self, command: SplitRequested) -> tuple[str, list]:
        tenant, now = command.tenant_id, self._clock()
        source = await self.repo.root(tenant, command.one_id)
        new_one_id = split_one_id(tenant, command.command_id)
        wanted = set(command.link_ids)
        remaining = await self.identity.member_links(tenant, source)
        # A retry after a crash finds some links moved already; moving them again changes nothing.
        moved_before = [d for d in await self.identity.member_links(tenant, new_one_id) if d["_id"] in wanted]
        chosen = [d for d in remaining if d["_id"] in wanted]
        if not chosen and not moved_before:
            return "rejected: none of the link ids belongs to this person", []
        if len(chosen) == len(remaining):
            return "rejected: a split must leave the person at least one identifier", []
        await self.repo.create_person(tenant, new_one_id, now, command.command_id, split_from=source)
        # Members first, links second: a crash in between leaves the new person listing links that
        # still resolve to the source, which the retry moves; never a link neither person lists.
        await self.repo.add_members(tenant, new_one_id, {d["_id"]: d["type"] for d in chosen})
        cause = {"rule": "split", "command_id": command.command_id, "from": source, "by": command.requested_by}
        for link in chosen:
            await self.repo.move_link(tenant, link["_id"], new_one_id, cause)
        chosen += moved_before
        moved = {d["_id"] for d in chosen}
        await self.repo.remove_members(source, sorted(moved))

        # Touchpoints that carried only moved identifiers belong to the new person from now on.
        family = await self._family(tenant, source)
        moved_events = [
            r for r in await self.repo.receipts_of(tenant, [*family, new_one_id])
            if r.get("keys") and set(r["keys"]) <= moved
        ]
        await self.repo.reassign_receipts([r["_id"] for r in moved_events], new_one_id)
        metrics.IDENTITY_SPLITS.labels(tenant).inc()
        return "done", [PersonSplit(
            split_id=str(uuid.uuid5(_OPS_NS, f"{tenant}\x1f{command.command_id}")),
            tenant_id=tenant,
            source=source,
            new_one_id=new_one_id,
            moved_identifier_types=sorted({IdentifierType(d["type"]) for d in chosen}),
            moved_event_ids=sorted(r["_id"].split("\x1f", 1)[1] for r in moved_events),
            reason=command.reason,
            requested_by=command.requested_by,
            event_id=command.command_id,
            split_at=now,
        )]

    # ---- erasure ---------------------------------------------------------------------------------
    async def _erase(self, command: ErasureRequested) -> tuple[str, list]:
        tenant, now = command.tenant_id, self._clock()
        root = await self.repo.root(tenant, command.one_id)
        person = await self.repo.person(tenant, root)
        if person is None:
            return "rejected: no such person", []
        family = await self._family(tenant, root)
        keys = sorted({k for k in (d["_id"] for d in await self.identity.member_links(tenant, root))})
        if self._reviews is not None:
            await self._reviews.forget(tenant, family)
        await self.repo.erase_family(tenant, family, keys)
        metrics.IDENTITY_ERASURES.labels(tenant).inc()
        return "done", [PersonErased(
            erasure_id=str(uuid.uuid5(_OPS_NS, f"erase\x1f{tenant}\x1f{command.command_id}")),
            tenant_id=tenant,
            one_id=root,
            one_ids=family,
            requested_by=command.requested_by,
            event_id=command.command_id,
            erased_at=now,
        )]

    # ---- review decisions ------------------------------------------------------------------------
    async def _decide(self, command: ReviewDecided) -> tuple[str, list]:
        if self._reviews is None:
            return "rejected: probabilistic matching is off", []
        return await self._reviews.decide(command)

    async def _family(self, tenant_id: str, root: str) -> list[str]:
        person = await self.repo.person(tenant_id, root) or {}
        return [root, *sorted(set(person.get("absorbed", ())) - {root})]


def _key_of(change) -> str:
    if isinstance(change, PersonSplit):
        return change.source
    if isinstance(change, PersonErased):
        return change.one_id
    return change.winner
