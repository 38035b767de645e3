"""Errors meant for people: one line that says what is wrong and how to fix it."""


class UserError(Exception):
    """Bad input or configuration. The CLI prints ``error: <message>`` and exits 2."""
