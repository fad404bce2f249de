"""`r1dsl compile --run` stopped by SIGTERM (a scheduler, `kill`) passes the signal on to the running stage: no
stage is left running, orphaned, after r1dsl has gone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RECIPE = '''
model micro { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64  vocab_size = 128 } }
dataset corpus { generator = "corpus"  size = 400 }
stage base: pretrain {
  from = micro  data = corpus
  train { steps = 100000  batch_size = 4  micro_batch_size = 4  max_seq_len = 64 }
}
'''


def _stage_processes(run: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"backends.run_stage" in cmdline and str(run).encode() in cmdline:
            found.append(int(pid))
    return found


def test_sigterm_reaches_the_running_stage(tmp_path):
    recipe = tmp_path / "long.r1"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), R1DSL_PROGRESS="quiet", CUDA_VISIBLE_DEVICES="")
    parent = subprocess.Popen([sys.executable, "-m", "r1dsl", "compile", str(recipe), "-o", str(run), "--run"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _stage_processes(run) and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
        assert _stage_processes(run), "the stage never started"
        time.sleep(2)
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=120)
        assert parent.returncode == 128 + signal.SIGTERM, err[-2000:]
        assert "stopped by signal" in err
        gone = time.monotonic() + 60
        while _stage_processes(run) and time.monotonic() < gone:
            time.sleep(0.2)
        assert _stage_processes(run) == [], "the stage went on running after r1dsl had gone"
    finally:
        parent.kill()
        for pid in _stage_processes(run):
            os.kill(pid, signal.SIGKILL)
