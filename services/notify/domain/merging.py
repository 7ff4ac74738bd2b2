"""After a merge: which open tasks of the person survive. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

DUPLICATE_AFTER_MERGE = "duplicate_after_merge"  # why a task was closed without an outcome


@dataclass(frozen=True)
class OpenTask:
    task_id: str
    consultant_id: str | None  # None: the tenant's unassigned queue
    created_at: datetime


def one_per_consultant(tasks: Iterable[OpenTask]) -> tuple[list[OpenTask], list[tuple[OpenTask, OpenTask]]]:
    """At most one open task per consultant (the unassigned queue counts as one): the oldest stays.

    Returns the tasks that stay open, oldest first, and each younger duplicate with the task it
    gives way to.
    """
    kept: dict[str | None, OpenTask] = {}
    closing: list[tuple[OpenTask, OpenTask]] = []
    for task in sorted(tasks, key=lambda t: (t.created_at, t.task_id)):
        if task.consultant_id in kept:
            closing.append((task, kept[task.consultant_id]))
        else:
            kept[task.consultant_id] = task
    return list(kept.values()), closing


def primary(kept: list[OpenTask], current: str | None) -> str | None:
    """The task a person's slot names: the one it named if that stays open, else the oldest."""
    if current is not None and any(t.task_id == current for t in kept):
        return current
    return kept[0].task_id if kept else None
