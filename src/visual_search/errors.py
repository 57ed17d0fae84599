"""Errors a user can fix (bad input, bad config): the CLI prints them as one line, never a traceback."""


class UserError(Exception):
    """A problem with the user's input or configuration, explained in one line."""
