"""scoring: an explainable, time-decayed intent score and an H/A/B/C grade per person.

Consumes leads.changes; produces scores.changes (key one_id).
"""
