"""notify: turns hot leads into follow-up tasks routed to the right consultant, with SLAs.

Consumes scores.changes; produces tasks.events and (for consultants' outcomes) tasks.outcomes.
"""
