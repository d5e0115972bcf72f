"""Errors that say what is missing, so callers can show them to a person verbatim."""


class DevstackError(RuntimeError):
    """Base for everything the devstack raises on purpose."""


class MissingToolError(DevstackError):
    """A binary, jar or runtime the stack needs is not there; the message says which."""


class ProcessDiedError(DevstackError):
    """A child exited while we were still waiting for it to become useful."""
