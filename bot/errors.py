"""User-facing errors: a small family whose text is fit to show to a member or organizer.

Anything else that escapes is a bug: the edges (CLI, Discord) log it in full and show a short apology.
"""
from __future__ import annotations


class UserError(Exception):
    """An error whose message can be shown as-is to the person who caused it."""


class ConfigError(UserError):
    """A setting is missing or invalid."""


class RefusedError(UserError):
    """A document was refused. `reason` is a short machine-readable code, the message is for people.

    Reason codes: encrypted, scanned, corrupt, not_supported, too_large, too_many_pages, empty,
    timeout, resource_limit, fetch_failed, blocked_address.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class IndexMissingError(UserError):
    """No usable index at INDEX_DIR."""


class IndexModelMismatchError(UserError):
    """The index was built with another embedding model."""


class IndexCorruptError(UserError):
    """An index file could not be read."""


class BusyError(UserError):
    """A long job (rebuild) is already running."""


class NotFoundError(UserError):
    """A document id (or other object) does not exist."""
