"""User-facing errors: anything a user can cause ends as one clear line and exit code 2."""


class DBlinkError(Exception):
    """An error caused by the user's input (bad table, bad option, missing file).

    The command line prints ``dblink: error: <message>`` and exits with code 2.
    """
