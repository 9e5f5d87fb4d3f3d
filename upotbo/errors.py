"""Three kinds of failure, kept apart as ASE does the first two.

``InputError`` is the user's fault (unknown element, impossible settings): the CLI prints its one-line
message and exits with status 2. ``CandidateFailed`` is one candidate's fault (cannot be built, atoms
too close, NaN energy): the search records it as a failed trial with the reason and goes on.
``WorkerDied``: a helper process of the run died (killed, out of memory, or it could not start): the
run stops with what it stored, the CLI prints one line and exits with status 1.
"""


class InputError(ValueError):
    """Bad user input; the message names the bad value and the fix."""


class CandidateFailed(RuntimeError):
    """A single candidate could not be built or scored; the message is the recorded reason."""


class WorkerDied(RuntimeError):
    """A process the run depends on died; the message says which and that ``--resume`` goes on."""
