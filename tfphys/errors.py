"""The one exception type for user errors.

The command-line tools print its message on one line and exit non-zero; anything else that
escapes is a bug and keeps its traceback.
"""


class TfphysError(Exception):
    """A user-facing error: bad input file, bad configuration, unknown name, ..."""
