"""User-facing errors: anything a user can cause ends as one clear line and exit code 2."""


class DBlinkError(Exception):
    """An error caused by the user's input (bad table, bad option, missing file).

    The command line prints ``dblink: error: <message>`` and exits with code 2.
    """


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name
    when it has no message (a bare ``assert`` inside a library)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
