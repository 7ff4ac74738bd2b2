"""Errors with a policy attached."""


class Retryable(Exception):
    """A failure that a retry can cure, e.g. a lost optimistic-concurrency race."""
