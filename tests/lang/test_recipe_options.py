"""The commented options of the shipped recipes stay valid: uncommented as their comment says, they check."""

from __future__ import annotations

from pathlib import Path

from r1dsl.frontend import check_file

ROOT = Path(__file__).resolve().parents[2]


def test_deepseek_r1s_cold_start_collection_from_r1_zero_checks_when_uncommented(tmp_path):
    text = (ROOT / "recipes" / "deepseek_r1.r1").read_text()
    start = text.index("# model r1_zero")
    end = text.index("# }\n", start) + len("# }\n")
    block = "".join(line[2:] + "\n" for line in text[start:end].splitlines())
    edited = text[:start] + block + text[end:]
    assert edited.count("  data = cold_start\n") == 1
    edited = edited.replace("  data = cold_start\n", "  data = cold_samples\n")  # as the comment says
    path = tmp_path / "deepseek_r1.r1"
    path.write_text(edited)
    result = check_file(str(path))
    assert result.ok, result.diagnostics
    stage = result.recipe.stage("cold_samples")
    assert stage.filters.repetition == 0.3 and stage.filters.language == 0.95 and stage.sampling.temperature == 1.0
    assert result.recipe.stage("cold_sft").data == ("cold_samples",)
