"""Which prompts a GRPO step may draw: a dataset joins the pool at its `from_step` [NAT: R1's last RL phase
adds general data and preference rewards only in its last 400 of 1,700 steps]."""

from __future__ import annotations

import bisect
from typing import Sequence


class PromptSchedule:
    """The row indices open at each step, given each row's first step; one pool per distinct start."""

    def __init__(self, starts: Sequence[int]):
        self.starts = sorted(set(starts))
        if self.starts and self.starts[0] > 0:
            raise ValueError(f"no prompts before step {self.starts[0]}: at least one dataset must start at step 0")
        self.pools = {s: [i for i, first in enumerate(starts) if first <= s] for s in self.starts}

    def pool(self, step: int) -> list[int]:
        """Indices of the rows a step may draw from (every row whose dataset started at or before `step`)."""
        return self.pools[self.starts[bisect.bisect_right(self.starts, step) - 1]]
