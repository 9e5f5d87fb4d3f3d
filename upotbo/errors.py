"""Two kinds of failure, kept apart as ASE does.

``InputError`` is the user's fault (unknown element, impossible settings): the CLI prints its one-line
message and exits with status 2. ``CandidateFailed`` is one candidate's fault (cannot be built, atoms
too close, NaN energy): the search records it as a failed trial with the reason and goes on.
"""


class InputError(ValueError):
    """Bad user input; the message names the bad value and the fix."""


class CandidateFailed(RuntimeError):
    """A single candidate could not be built or scored; the message is the recorded reason."""
