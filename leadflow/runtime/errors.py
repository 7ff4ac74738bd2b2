"""Errors a handler may raise to ask the consumer policy for a retry instead of a dead letter."""


class RetryLater(Exception):
    """A condition that passes by itself (contention with another worker): retry the record, keep the offset."""
