

def test_reasoning_in_numbers_and_symbols_alone_is_consistent_and_empty_reasoning_is_not():
    from backends.rewards import REWARDS

    got = REWARDS["language_consistency"]([" <think> 3 + 4 = 7. 7 * 2 = 14. </think> <answer> 14 </answer>", "<think> </think> <answer> 1 </answer>"], [{}, {}])
    assert got == [1.0, 0.0]
