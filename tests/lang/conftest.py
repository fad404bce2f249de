from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.r1"))
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture
def write(tmp_path):
    """write("name.r1", text) -> path of a recipe file in a temp folder."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


TINY = '''recipe tiny_test
const seed = 3
model tiny { tiny { hidden_size = 64  num_layers = 2 } }
dataset corpus { generator = "corpus"  size = 100  seed = seed }
dataset arith { generator = "arithmetic"  size = 100 }
dataset arith_test { generator = "arithmetic"  size = 20  seed = 9 }
dataset chat { generator = "chat"  size = 50 }
template r1 = """
A conversation. User: {prompt}. Assistant:"""
reward accuracy { rule = "math_accuracy" }
reward format { rule = "format"  weight = 0.5 }

stage base: pretrain {
  from = tiny  data = corpus
  train { steps = 10  batch_size = 8 }
}
stage zero: grpo {
  from = base  data = [arith, chat]  template = r1  rewards = [accuracy, format]
  route { chat = [format] }
  group_size = 4
  grpo { num_prompts_per_step = 4  steps = 5  seed = seed }
  eval = arith_test
}
stage rs: rejection_sample {
  from = zero  data = arith  template = r1  rewards = [accuracy, format]
}
stage students: distill {
  data = rs  template = r1
  students { tiny { lr = 1e-3 }  base { steps = 7 } }
  train { steps = 5  batch_size = 4 }
}
stage final: eval { from = zero  data = arith_test  template = r1  rewards = [accuracy] }
'''


@pytest.fixture
def tiny_recipe(write):
    return write("tiny_test.r1", TINY)
