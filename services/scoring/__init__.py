"""scoring: an explainable, time-decayed intent score and an H/A/B/C grade per person.

Consumes leads.changes and identity.merges (folds merged persons' signals, moves a split's, deletes
an erased person's score); produces scores.changes (key one_id).
"""
