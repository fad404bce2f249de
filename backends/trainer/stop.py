"""Stop requests: SIGUSR1 asks a stage to checkpoint at the end of its current step and exit.

SLURM's time-limit warning (`--signal=B:USR1@...` in job.sbatch) reaches every stage process this way;
the job script then requeues the job, and the next run resumes from that checkpoint. Every process
of a distributed run must stop at the same step, so they agree on it with one all-reduce per step.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNAL = signal.SIGUSR1
EXIT_CHECKPOINTED = 75  # EX_TEMPFAIL: not done, resumable from the checkpoint just written


class Preempted(Exception):
    """Raised by `StageRun.maybe_checkpoint` after the checkpoint a stop request asked for is written."""

    def __init__(self, step: int, path):
        super().__init__(f"checkpointed at step {step} ({path}) on a stop request (SIGUSR1)")
        self.step = step
        self.path = path


class StopRequest:
    """Set by SIGUSR1 (installed when created in the main thread); `agreed()` is the collective answer."""

    def __init__(self) -> None:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(STOP_SIGNAL, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def agreed(self, fabric) -> bool:
        """True on every process when any process was asked to stop (one all-reduce when distributed)."""
        if fabric.world_size == 1:
            return self.requested
        import torch

        flag = torch.tensor([1.0 if self.requested else 0.0], device=fabric.device)
        return bool(fabric.all_reduce(flag, reduce_op="sum").item() > 0)
