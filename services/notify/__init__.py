"""notify: turns hot leads into follow-up tasks routed to the right consultant, with SLAs.

Consumes scores.changes and identity.merges (moves a merged person's open tasks to the survivor, one
open task per consultant; deletes an erased person's tasks); produces tasks.events and (for
consultants' outcomes) tasks.outcomes.
"""
