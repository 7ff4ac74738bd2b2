"""leads: cleans and judges each touchpoint and tracks the person's lifecycle stage.

Consumes touchpoints.identified and identity.merges (folds merged persons, rebuilds split ones,
deletes erased ones); produces leads.changes (key one_id).
"""
