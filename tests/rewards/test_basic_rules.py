from backends.rewards import REWARDS, score


def test_math_accuracy_and_format_registered_and_score():
    assert REWARDS["math_accuracy"].needs == ("answer",)
    completions = [" <think> 6*7 </think> <answer> 42 </answer>", " <think> x </think> <answer> 41 </answer>", "42"]
    rows = [{"answer": "42"}] * 3
    total, per = score(
        [{"name": "acc", "rule": "math_accuracy", "weight": 1.0, "params": {}},
         {"name": "fmt", "rule": "format", "weight": 0.5, "params": {}}],
        completions, rows,
    )
    assert per["acc"] == [1.0, 0.0, 0.0]
    assert per["fmt"] == [1.0, 1.0, 0.0]
    assert total == [1.5, 0.5, 0.0]
