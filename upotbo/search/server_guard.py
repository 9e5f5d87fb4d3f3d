"""Imported first by the fork server (``processes.start_helpers``), and by nothing else: the server
then dies with the search (Linux ``PR_SET_PDEATHSIG``), even while it is still importing, instead of
living on until it next looks at its pipe (a search gone before this import is seen by the server's
changed parent: ``start_helpers`` names the search in ``UPOTBO_SEARCH_PID``); and a Ctrl-C meant for
the search does not make it print a traceback from the middle of its imports."""

import ctypes
import os
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    # a search killed before this line (the interpreter's own start-up) has re-parented the server
    if str(os.getppid()) != os.environ.get("UPOTBO_SEARCH_PID"):
        os._exit(0)
