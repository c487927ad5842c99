"""One exception type for every mistake a user can make.

The CLI prints its message as a single line and exits non-zero; the HTTP server turns it into a 4xx.
Messages say what went wrong and how to fix it.
"""


class GenlabError(Exception):
    """A user-facing error: bad input, missing file, nonsensical option."""
