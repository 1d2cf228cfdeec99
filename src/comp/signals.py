"""Stop training cleanly on a signal, e.g. a batch scheduler's preemption warning.

``comp train`` runs inside :func:`stop_on_signals`: on ``SIGUSR1`` (Slurm's warning,
``--signal=B:USR1@120``) or ``SIGTERM`` (cancel, requeue, time limit) the loop saves a
checkpoint at the current step and returns; the command then exits with
:data:`EXIT_INTERRUPTED` so that a caller (the grid task runner) knows that running
``comp train --resume RUN`` continues the run where it stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 75  # sysexits' EX_TEMPFAIL: checkpoint saved, run again (--resume) to continue
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[Callable[[], bool]]:
    """Yield a ``should_stop()`` that turns true once one of ``signals`` arrives.

    The previous handlers come back on exit. Outside the main thread (where Python
    cannot install handlers) ``should_stop()`` is always false.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in signals}
    try:
        yield lambda: bool(received)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
