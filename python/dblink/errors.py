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


#: every character Python's str.splitlines (and some terminals) break a line at, and how a
#: one-line message shows it
_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\x0b": "\\x0b", "\x0c": "\\x0c",
                              "\x1c": "\\x1c", "\x1d": "\\x1d", "\x1e": "\\x1e", "\x85": "\\x85",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def one_line(msg: object) -> str:
    """A message on one line: line breaks in it (a newline in a file or column name) escaped."""
    return str(msg).translate(_LINE_BREAKS)
