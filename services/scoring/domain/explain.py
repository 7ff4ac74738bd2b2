"""The words of a score's explanation, in Simplified Chinese or English: "试驾预约 2 天前 +25",
"价格咨询 ×3 +18", "15 天无互动 −10". Pure; `now` is passed in (the time the score was computed, so the
age in the words matches the points)."""

from __future__ import annotations

from datetime import datetime

MINUS = "\u2212"  # a real minus sign: "−10" reads better than "-10" next to "+25"


def points_text(points: float) -> str:
    whole = round(points) if abs(points - round(points)) < 0.05 else None
    magnitude = f"{abs(whole)}" if whole is not None else f"{abs(points):.1f}"
    return ("+" if points >= 0 else MINUS) + magnitude


def ago(at: datetime, now: datetime, lang: str) -> str:
    seconds = max((now - at).total_seconds(), 0.0)
    hours, days = int(seconds // 3600), int(seconds // 86_400)
    if lang == "en":
        if hours < 1:
            return "just now"
        if days < 1:
            return f"{hours} hour{'s' * (hours != 1)} ago"
        return f"{days} day{'s' * (days != 1)} ago"
    if hours < 1:
        return "刚刚"
    return f"{hours} 小时前" if days < 1 else f"{days} 天前"


def describe(label: str, points: float, count: int, *, last_at: datetime | None, days: int | None, now: datetime,
             lang: str = "zh") -> str:
    """One line: a repeated signal shows its count, a single one its age, going quiet its days."""
    amount = points_text(points)
    if days is not None:  # going quiet
        return f"no interaction for {days} days {amount}" if lang == "en" else f"{days} 天{label} {amount}"
    if count > 1:
        return f"{label} ×{count} {amount}"
    if last_at is not None:
        return f"{label} {ago(last_at, now, lang)} {amount}"
    return f"{label} {amount}"
