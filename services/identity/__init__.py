"""identity: stitches identifiers (phone, WeChat, Douyin, device, CRM, VIN…) into one person, the One ID.

Consumes touchpoints.raw; produces touchpoints.identified (key one_id) and identity.merges.
"""
