"""Probabilistic matching in the stream: after a touchpoint is stitched, compare its person's profile
with the profiles that share a blocking key; merge above the tenant's auto-merge threshold, queue
the grey band for review. Also carries out review decisions.

Profiles hold personal data: they are stored Fernet-encrypted, and blocking keys only as keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from leadflow.runtime import metrics
from schemas.identity import PersonsMerged, ReviewDecided
from schemas.touchpoints import IdentifierType, TouchpointReceived
from services.identity.adapters.profiles import ProfileRepository, review_id
from services.identity.domain import keys
from services.identity.domain.matching import (
    MatchPolicy,
    Profile,
    blocking_keys,
    decide,
    prior_log2_odds,
    profile_of,
    score,
)
from services.identity.domain.normalize import NormalizedIdentifier
from services.identity.domain.stitching import merge_violation
from leadflow.runtime.leases import LeaseTimeout
from services.identity.handlers import IdentityService, Raced

MAX_CANDIDATES = 50


def _profile_json(profile: Profile) -> str:
    return json.dumps({k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(profile).items()},
                      ensure_ascii=False, sort_keys=True)


def _profile_from_json(text: str) -> Profile:
    data = json.loads(text)
    if data.get("birth_date"):
        data["birth_date"] = date.fromisoformat(data["birth_date"])
    return Profile(**data)


def _combined(old: Profile | None, new: Profile) -> Profile:
    """What we know now: earlier values stay, new ones fill the gaps."""
    if old is None:
        return new
    return Profile(**{k: getattr(old, k) if getattr(old, k) is not None else getattr(new, k)
                      for k in asdict(new)})


def _masked(profile: Profile) -> dict[str, Any]:
    name = profile.name or ""
    return {
        "name": (name[:1] + "*" * max(1, len(name) - 1)) if name else None,
        "birth_year": profile.birth_date.year if profile.birth_date else None,
        "city": profile.city,
        "has_address": profile.address is not None,
        "has_email": profile.email_local is not None,
    }


class Matcher:
    def __init__(self, identity: IdentityService, profiles: ProfileRepository, *, master_secret: bytes,
                 clock: Callable[[], datetime]) -> None:
        self.identity = identity
        self.profiles = profiles
        self._master = master_secret
        self._clock = clock

    def _block_hash(self, tenant_id: str, block: str) -> str:
        return hmac.new(keys.tenant_key(self._master, tenant_id), f"block|{block}".encode(), hashlib.sha256).hexdigest()

    async def after_stitch(self, event: TouchpointReceived, one_id: str,
                           identifiers: Iterable[NormalizedIdentifier], now: datetime) -> tuple[str, list[PersonsMerged]]:
        """Match the person behind this touchpoint; returns the surviving one_id and any merges."""
        tenant = event.tenant_id
        policy = self.identity.policies.for_tenant(tenant)
        if not policy.matching:
            return one_id, []
        emails = [i.value for i in identifiers if i.type is IdentifierType.EMAIL]
        found = profile_of(event.typed_attributes().model_dump(exclude_none=True), emails)
        if found is None:
            return one_id, []
        vault = self.identity.vault
        profile, text, digest = self._learned(await self.profiles.profile(tenant, one_id), found)
        if text is None:
            return one_id, []  # nothing new about this person: nothing new to match
        # Identity's input is keyed by event, so another worker may be adding to this profile right now:
        # read, combine and write it under the person's lease, or one side's news is lost (and FerretDB v1
        # refuses the second of two upserts creating it).
        async with self.identity.leases.held(tenant, [one_id]):
            profile, text, digest = self._learned(await self.profiles.profile(tenant, one_id), found)
            if text is None:
                return one_id, []  # the other worker learned the same, and matched
            blocks = sorted(self._block_hash(tenant, b) for b in blocking_keys(profile))
            await self.profiles.save_profile(tenant, one_id, {"enc": vault.seal(text), "digest": digest,
                                                               "blocks": blocks, "updated_at": now})
        shared: Counter[str] = Counter()
        for block in blocks:
            shared.update(await self.profiles.join_block(tenant, block, one_id) or ())
        shared.pop(one_id, None)
        if not shared:
            return one_id, []
        # The persons sharing the most blocking keys with this one are the likeliest matches.
        members = {m for m, _ in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]}

        repo = self.identity.repo
        root = await repo.root(tenant, one_id)
        roots = await repo.living(tenant, members)
        best: dict[str, tuple[float, Any]] = {}
        others = await self.profiles.profiles_of(tenant, sorted(m for m, r in roots.items() if r != root))
        # The more persons a tenant has, the more namesakes: the prior odds of a match shrink with it.
        prior = prior_log2_odds(max(1_000, await repo.persons_in_tenant(tenant)))
        for member, doc in others.items():
            match = score(profile, _profile_from_json(vault.open(doc["enc"])), prior=prior)
            if match.score > best.get(roots[member], (-1.0, None))[0]:
                best[roots[member]] = (match.score, match)

        thresholds = MatchPolicy(auto_merge=policy.auto_merge, review=policy.review)
        merges: list[PersonsMerged] = []
        for candidate, (_, match) in sorted(best.items(), key=lambda kv: -kv[1][0]):
            verdict = decide(match, thresholds)
            if verdict == "none":
                continue
            current = await repo.root(tenant, root)
            other = await repo.root(tenant, candidate)
            if current == other:
                continue
            reason = None
            if verdict == "merge":
                merge, reason = await self._merge(tenant, current, other, "probabilistic", match.score,
                                                  event.event_id, now)
                if merge:
                    merges.append(merge)
                    root = merge.winner
                if reason is None:
                    continue
            if await self.profiles.queue_review(tenant, current, other, {
                "score": round(match.score, 4), "prior_log2_odds": round(prior, 2), "levels": match.levels,
                "weights": {k: round(v, 2) for k, v in match.weights.items()},
                "reason": reason or "grey_band", "event_id": event.event_id, "at": now,
            }):
                metrics.IDENTITY_REVIEWS.labels(tenant, "queued").inc()
        return await repo.root(tenant, root), merges

    def _learned(self, stored: dict[str, Any] | None, found: Profile) -> tuple[Profile, str | None, str]:
        """The profile with what this touchpoint tells; its text is None when that is nothing new."""
        profile = _combined(_profile_from_json(self.identity.vault.open(stored["enc"])) if stored else None, found)
        text = _profile_json(profile)
        digest = hashlib.sha256(text.encode()).hexdigest()
        return profile, None if stored and stored.get("digest") == digest else text, digest

    async def _merge(self, tenant: str, a: str, b: str, cause: str, match_score: float, event_id: str,
                     now: datetime) -> tuple[PersonsMerged | None, str | None]:
        """Merge the two persons unless a guardrail forbids it; (the merge, or the guardrail's reason).

        Under both persons' leases, as every change to who holds which identifiers.
        """
        repo = self.identity.repo
        try:
            async with self.identity.leases.held(tenant, {a, b}):
                a, b = await repo.root(tenant, a), await repo.root(tenant, b)
                views = await repo.views(tenant, {a, b})
                if a == b or len(views) < 2:
                    return None, None
                reason = merge_violation(views[a], views[b], self.identity.policies.for_tenant(tenant))
                if reason:
                    return None, reason
                winner, loser = sorted(views.values(), key=lambda p: (p.created_at, p.one_id))
                merge = PersonsMerged(
                    merge_id=keys.merge_id(tenant, winner.one_id, loser.one_id),
                    tenant_id=tenant, winner=winner.one_id, loser=loser.one_id, cause=cause,
                    match_score=round(match_score, 4), event_id=event_id, merged_at=now,
                )
                await self.identity.merge(tenant, merge, via_key=None)
                return merge, None
        except (Raced, LeaseTimeout):
            return None, "busy"  # the persons changed under us: a human can look at it

    # ---- the review queue ------------------------------------------------------------------------
    async def open_reviews(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return [{**doc, "review_id": review_id(doc["a"], doc["b"])} for doc in await self.profiles.open_reviews(tenant_id, limit)]

    async def review_queue(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Open reviews with what a reviewer may see of each side: masked name, birth year, city."""
        queue = []
        for doc in await self.open_reviews(tenant_id, limit):
            found = await self.profiles.profiles_of(tenant_id, [doc["a"], doc["b"]])
            sides = {k: _masked(_profile_from_json(self.identity.vault.open(found[k]["enc"]))) if k in found else {}
                     for k in (doc["a"], doc["b"])}
            queue.append({**doc, "review_id": review_id(doc["a"], doc["b"]), "a_profile": sides[doc["a"]], "b_profile": sides[doc["b"]]})
        return queue

    async def decide(self, command: ReviewDecided) -> tuple[str, list[PersonsMerged]]:
        tenant, now = command.tenant_id, self._clock()
        review = await self.profiles.review(tenant, command.review_id)
        if review is None:
            return "rejected: no such review", []
        if review["status"] != "open":
            return f"rejected: already {review['status']}", []
        if not command.approve:
            await self.profiles.close_review(review["_id"], "rejected", command.decided_by, now)
            metrics.IDENTITY_REVIEWS.labels(tenant, "rejected").inc()
            return "done", []
        repo = self.identity.repo
        a, b = await repo.root(tenant, review["a"]), await repo.root(tenant, review["b"])
        merges = []
        if a == b:  # merged already: by somebody else, or by this very command before a crash
            merges = [PersonsMerged.model_validate(d["event"])
                      for d in await repo.merges_caused_by(tenant, a, command.command_id)]
        else:
            merge, reason = await self._merge(tenant, a, b, "review_approved", review["score"], command.command_id, now)
            if reason:
                return f"rejected: {reason}", []
            merges = [merge] if merge else []
        await self.profiles.close_review(review["_id"], "approved", command.decided_by, now)
        metrics.IDENTITY_REVIEWS.labels(tenant, "approved").inc()
        return "done", merges

    async def forget(self, tenant_id: str, one_ids: list[str]) -> None:
        await self.profiles.forget(tenant_id, one_ids)
