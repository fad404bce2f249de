"""The code sandbox: untrusted solutions run under bubblewrap; the judging happens outside them.

- `isolation.py`: one sandboxed process (bwrap, per-sandbox uid, cgroups, bounded pipes, whole-tree kill);
- `worker.py`: the trusted first process inside every sandbox (program / solution / judge modes);
- `judge.py`: a row's tests against a solution (stdin/stdout compared in the parent, snippets in a judge
  sandbox that holds no solution code).
"""

from backends.rewards.sandbox.isolation import (  # noqa: F401
    INSTALL_HINT, Exchange, Limits, Sandbox, SandboxUnavailable, describe, require_sandbox, sandbox_available,
)
from backends.rewards.sandbox.judge import run_tests  # noqa: F401
