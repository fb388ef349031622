"""One exception type for every user-facing problem (bad path, bad file, bad config).

The CLI catches it and prints its message as a single line with a non-zero exit code,
so bad input never ends in a traceback from deep inside torch.
"""


class MotionbitsError(Exception):
    """A problem the user can fix: the message names the file and what is wrong."""
