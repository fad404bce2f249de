"""A bad data row stops its stage with the file and line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_torn_jsonl_row_is_named_by_file_and_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"prompt": "1+1", "response": "2"}\n{"prompt": "oops"\n')
    (tmp_path / "r.r1").write_text(
        'model tiny { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64 } }\n'
        'dataset d { jsonl = "d.jsonl"  fields { response = "response" } }\n'
        "stage s: sft { from = tiny  data = d  train { steps = 1  batch_size = 2 } }\n"
    )
    proc = subprocess.run([sys.executable, "-m", "r1dsl", "compile", str(tmp_path / "r.r1"), "-o", str(tmp_path / "run"), "--run"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1
    assert f"{tmp_path / 'd.jsonl'}:2: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "s" / "DONE").exists()
