"""Stop requests: SIGUSR1 asks a stage to checkpoint at the end of its current step and exit.

SLURM's time-limit warning (`--signal=B:USR1@...` in job.sbatch) reaches every stage process this way;
the job script then requeues the job, and the next run resumes from that checkpoint. `install()` runs
first thing in `backends.run_stage`, before the slow imports, so that a request made during start-up
is kept (it takes effect after the first step). Every process of a distributed run must stop at the
same step, so they agree on it with one all-reduce per step.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNAL = signal.SIGUSR1
EXIT_CHECKPOINTED = 75  # EX_TEMPFAIL: not done, resumable from the checkpoint just written

_requested = False


class Preempted(Exception):
    """Raised by `StageRun.maybe_checkpoint` after the checkpoint a stop request asked for is written."""

    def __init__(self, step: int, path):
        super().__init__(f"checkpointed at step {step} ({path}) on a stop request (SIGUSR1)")
        self.step = step
        self.path = path


def _handle(signum, frame) -> None:
    global _requested
    _requested = True


def install() -> None:
    """Catch SIGUSR1 from now on (only the main thread may install signal handlers)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(STOP_SIGNAL) is not _handle:
        signal.signal(STOP_SIGNAL, _handle)


def requested() -> bool:
    """Whether this process was asked to stop."""
    return _requested


def agreed(fabric) -> bool:
    """True on every process when any process was asked to stop (one all-reduce when distributed)."""
    if fabric.world_size == 1:
        return _requested
    import torch

    flag = torch.tensor([1.0 if _requested else 0.0], device=fabric.device)
    return bool(fabric.all_reduce(flag, reduce_op="sum").item() > 0)
