"""Values no setting can hold (infinite, over 64 bits, thousands of digits, seeds past 2^32, a section written as a
setting) are diagnostics in every slot of a recipe, never an exception, and checking them stays fast (bounded scans)."""

import re

import pytest

from r1dsl.frontend import check_file
from tests.lang.conftest import TINY

SLOTS = list(dict.fromkeys(re.findall(r"(\b\w+\s*=\s*)(-?[0-9][0-9_.eE-]*)", TINY)))
HOSTILE = ["1e9998", "-1e9998", "1" + "0" * 5000, '"1e9999"', '"nan"', '"-inf"', '"' + "9" * 5000 + '"', "1e-400"]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: v[:12])
def test_every_numeric_slot_reports_a_hostile_number(write, value):
    assert len(SLOTS) >= 10
    for key, old in SLOTS:
        path = write("r.r1", TINY.replace(key + old, key + value, 1))
        result = check_file(str(path))
        if value == "1e-400":  # underflows to 0.0: an ordinary (if odd) number, judged by each setting's limits
            continue
        errors = [d for d in result.diagnostics if d.is_error]
        assert errors, f"{key.strip()} {value[:20]} was accepted"
        assert all(d.code in ("E001", "E004", "E005") for d in errors), [(d.code, d.message) for d in errors]


@pytest.mark.parametrize("value", ["9223372036854775808", "1" + "0" * 30, "-9223372036854775809", "1e19"])
def test_whole_numbers_fit_64_bits(write, value):
    for key in ("hidden_size = ", "num_layers = ", "size = ", "steps = ", "batch_size = "):
        old = next(o for k, o in SLOTS if k == key)
        result = check_file(str(write("r.r1", TINY.replace(key + old, key + value, 1))))
        assert any(d.code == "E005" and "out of range" in d.message for d in result.diagnostics), key


@pytest.mark.parametrize("seed, ok", [(0, True), (4294967295, True), (4294967296, False), (-1, False)])
def test_seeds_are_32_bit(write, seed, ok):
    for text in (TINY.replace("size = 20  seed = 9", f"size = 20  seed = {seed}"),
                 TINY.replace("steps = 5  seed = seed }", f"steps = 5  seed = {seed} }}")):
        assert text != TINY
        result = check_file(str(write("r.r1", text)))
        assert result.ok == ok, [d.message for d in result.diagnostics]
        if not ok:
            assert any(d.code == "E005" and "seed" in d.message for d in result.diagnostics)


def test_a_huge_batch_is_out_of_range_and_a_large_one_that_does_not_split_gets_its_divisors(write):
    text = TINY.replace("train { steps = 10  batch_size = 8 }",
                        "train { steps = 10  batch_size = 1000000000000000001  micro_batch_size = 2 }")
    assert text != TINY
    result = check_file(str(write("r.r1", text)))
    assert [d.code for d in result.diagnostics if d.is_error] == ["E005"]  # batch_size declares its maximum
    text = TINY.replace("train { steps = 10  batch_size = 8 }", "train { steps = 10  batch_size = 1048575  micro_batch_size = 2 }")
    result = check_file(str(write("r.r1", text)))
    e009 = [d for d in result.diagnostics if d.code == "E009"]
    assert e009 and "micro_batch_size" in e009[0].help  # suggests divisors found by a bounded scan


def test_a_tiny_model_written_as_a_setting_is_one_error(write):
    text = TINY.replace("model tiny { tiny { hidden_size = 64  num_layers = 2 } }", 'model tiny { tiny = "qwen2" }')
    assert text != TINY
    result = check_file(str(write("r.r1", text)))
    assert [d.code for d in result.diagnostics if d.is_error][:1] == ["E004"]
