"""leads: cleans and judges each touchpoint and tracks the person's lifecycle stage.

Consumes touchpoints.identified; produces leads.changes (key one_id).
"""
