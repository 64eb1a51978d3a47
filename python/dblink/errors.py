"""User-facing errors: anything a user can cause ends as one clear line and exit code 2."""


class DBlinkError(Exception):
    """An error caused by the user's input (bad table, bad option, missing file).

    The command line prints ``dblink: error: <message>`` and exits with code 2.
    """


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first non-blank line of an exception's message (at most ``limit`` characters), or its
    type's name when it has none (a bare ``assert`` inside a library)."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line[:limit]


def out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: Python's MemoryError (numpy's too) or PyTorch's CPU allocator
    (a RuntimeError "DefaultCPUAllocator: can't allocate memory")."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or "DefaultCPUAllocator" in str(exc)))


#: every character Python's str.splitlines (and some terminals) break a line at, and how a
#: one-line message shows it
_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\x0b": "\\x0b", "\x0c": "\\x0c",
                              "\x1c": "\\x1c", "\x1d": "\\x1d", "\x1e": "\\x1e", "\x85": "\\x85",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def one_line(msg: object) -> str:
    """A message on one line: line breaks in it (a newline in a file or column name) escaped."""
    return str(msg).translate(_LINE_BREAKS)
