"""A test hook: stop the writing process at a named moment so a test can kill it there.

With `HUB_FAULT_POINT=<name>` in its environment, a process that first reaches `point(<name>)`
stops itself (SIGSTOP); the test sees the stop (`waitpid(..., WUNTRACED)`), sends SIGKILL and
checks what the store looks like after a crash at exactly that moment, on a fast machine or a
slow one — or holds it there (e.g. while a second writer tries) and lets it go on with SIGCONT:
it stops only once, so it then runs to its end. Without the variable `point` is one comparison.
The names, in the order a run meets them:

    first-batch-staged   the first batch of rows is in the staged data file
    version-renamed      the staging folder is renamed to its version folder, not yet recorded
    committed            the version is recorded and current; retention has not run
    export-written       an export is written under its temporary name, not yet renamed
"""

from __future__ import annotations

import os
import signal
import time

_WANTED = os.environ.get("HUB_FAULT_POINT") or None


def point(name: str) -> None:
    """Stop this process here the first time it gets here, if the test asked for this point
    (see the module docstring)."""
    global _WANTED
    if name == _WANTED:
        _WANTED = None
        os.kill(os.getpid(), signal.SIGSTOP)


def wait_stopped(pid: int, timeout: float = 120.0) -> None:
    """For the test: wait until the child process `pid` has stopped at its fault point."""
    deadline = time.monotonic() + timeout  # a hang guard: the point is never reached
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
        if done and os.WIFSTOPPED(status):
            return
        if done:
            raise ChildProcessError(f"process {pid} ended before its fault point")
        time.sleep(0.005)
    raise TimeoutError(f"process {pid} did not reach its fault point in {timeout:.0f} s")
