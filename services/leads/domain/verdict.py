"""Quality verdict of one touchpoint: valid, suspect or junk, with machine-readable reasons."""

from __future__ import annotations

import re

from schemas.identity import TouchpointIdentified
from schemas.leads import Verdict
from schemas.touchpoints import EventType, IdentifierType

# Whole words or "<name>bot/<version>": a phone model such as "CUBOT KingKong" is not a bot.
BOT_USER_AGENT = re.compile(
    r"\b(?:bot|spider|crawler)\b|\w+bot/|\w+spider|curl/|wget/|python-requests|httpclient|headless|scrapy", re.I
)
MIN_HUMAN_FILL_SECONDS = 3.0
JUNK_PHONE_REASONS = {
    "blocked_test_number": "test_number",
    "phone_invalid_for_region": "invalid_phone",
    "phone_not_a_number": "invalid_phone",
}


def assess(event: TouchpointIdentified) -> tuple[Verdict, list[str]]:
    touchpoint = event.touchpoint
    has_phone = any(i.type is IdentifierType.PHONE for i in touchpoint.identifiers)
    junk = sorted(
        {JUNK_PHONE_REASONS[r.reason] for r in event.rejected_identifiers
         if r.type is IdentifierType.PHONE and r.reason in JUNK_PHONE_REASONS}
    )
    if junk and not has_phone:
        return Verdict.JUNK, junk

    suspect: list[str] = []
    if touchpoint.event_type is EventType.FORM_SUBMITTED:
        ua = touchpoint.source.user_agent
        if not ua:
            suspect.append("missing_user_agent")
        elif BOT_USER_AGENT.search(ua):
            suspect.append("bot_user_agent")
        fill = touchpoint.typed_attributes().fill_seconds  # the validated value: "1.0" counts too
        if fill is not None and fill < MIN_HUMAN_FILL_SECONDS:
            suspect.append("form_too_fast")
    return (Verdict.SUSPECT, suspect) if suspect else (Verdict.VALID, [])
