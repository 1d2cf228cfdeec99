"""User-facing errors.

A :class:`CompError` is a mistake in what the user asked for (an unknown task, an
inverted length range, a foreign checkpoint). Its message is one line that names
the problem and the fix; the CLI prints it and exits with status 2, no traceback.
"""


class CompError(Exception):
    """A bad request from the user: one line saying what is wrong and how to fix it."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`CompError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CompError(message)
