"""Two persons turned out to be one, or one turned out to be two: what scoring keeps of each, purely.

Signals form a set keyed by event id, so a merge is a union and a split a partition, and doing
either twice changes nothing. The lead snapshot stays the winner's: leads sends the folded one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from schemas.leads import LeadSnapshot, Trigger
from services.scoring.domain.score import SIGNALS_KEPT, Signal

RECENT_TRIGGERS_KEPT = 256
MOVED_KEPT = 1_000


@dataclass(frozen=True)
class History:
    """What scoring keeps on one person, besides the score it derives from it."""

    signals: tuple[Signal, ...] = ()
    triggers: tuple[str, ...] = ()  # trigger ids of the lead changes applied lately: replays are spotted by them
    lead: LeadSnapshot | None = None
    lead_version: int = 0  # counts on this person's own sequence of lead changes
    trigger: Trigger | None = None  # of the latest change applied: the trigger of a change a merge or split makes
    moved_out: tuple[tuple[str, str], ...] = ()  # (event id, one_id): signals a split gave to another person

    def moved_to(self, event_id: str) -> str | None:
        return next((one_id for moved, one_id in reversed(self.moved_out) if moved == event_id), None)


def union_signals(a: tuple[Signal, ...], b: tuple[Signal, ...]) -> tuple[Signal, ...]:
    """Both sets of signals, once per event id, in time order; the newest SIGNALS_KEPT."""
    by_id = {s.event_id: s for s in (*b, *a)}
    return tuple(sorted(by_id.values(), key=lambda s: (s.occurred_at, s.event_id)))[-SIGNALS_KEPT:]


def join(winner: History, loser: History) -> History:
    """The winner's history with the loser's folded in (a merge)."""
    returning = {s.event_id for s in loser.signals}  # e.g. a split undone: those events are back
    return replace(
        winner,
        signals=union_signals(winner.signals, loser.signals),
        triggers=tuple(dict.fromkeys(winner.triggers + loser.triggers))[-RECENT_TRIGGERS_KEPT:],
        lead=winner.lead or loser.lead,
        # The loser's snapshot counts on another person's sequence: the winner's next change replaces it.
        lead_version=winner.lead_version if winner.lead else 0,
        trigger=later(winner.trigger, loser.trigger),
        moved_out=tuple(m for m in winner.moved_out if m[0] not in returning),
    )


def covers(history: History, other: History) -> bool:
    """Whether `history` holds all of `other` already, so that joining it changes nothing."""
    return (
        {s.event_id for s in other.signals} <= {s.event_id for s in history.signals}
        and set(other.triggers) <= set(history.triggers)
        and (history.lead is not None or other.lead is None)
        and later(history.trigger, other.trigger) == history.trigger
    )


def split(source: History, moved: Collection[str], *, to: str) -> tuple[History, History]:
    """What stays with the source and what goes to the new person `to` when `moved` events leave."""
    trigger_moves = source.trigger is not None and source.trigger.event_id in moved
    staying = replace(
        source,
        signals=tuple(s for s in source.signals if s.event_id not in moved),
        triggers=tuple(t for t in source.triggers if t not in moved),
        trigger=None if trigger_moves else source.trigger,
        moved_out=tuple(dict.fromkeys((*source.moved_out, *((e, to) for e in sorted(moved)))))[-MOVED_KEPT:],
    )
    moving = History(
        signals=tuple(s for s in source.signals if s.event_id in moved),
        triggers=tuple(t for t in source.triggers if t in moved),
        trigger=source.trigger if trigger_moves else None,
    )
    return staying, moving


def later(a: Trigger | None, b: Trigger | None) -> Trigger | None:
    """The trigger that happened last (`a` on a tie)."""
    if a is None or b is None:
        return a or b
    return b if b.occurred_at > a.occurred_at else a
