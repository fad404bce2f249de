"""`language_consistency` (DeepSeek-R1): the proportion of the chain of thought's words in the target language."""

from __future__ import annotations

import re

from backends.rewards.registry import Param, register

# A "word" is a run of Latin letters, a run of letters of another alphabet, or one Han character
# (Chinese has no spaces; DeepSeek-R1 counts target-language words, and a character is the natural unit).
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+|[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]|[^\W\d_A-Za-z\u00c0-\u024f\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]+")
_IS = {
    "en": lambda w: w[0] < "\u0250" and w[0].isalpha(),
    "zh": lambda w: "\u3400" <= w[0] <= "\u9fff" or "\uf900" <= w[0] <= "\ufaff",
}


def chain_of_thought(completion: str, think_tag: str = "think", prompt_opens_think: bool = False) -> str:
    """The text inside the think tags (all of them); without tags, the text before the answer tag."""
    text = (f"<{think_tag}>" + completion) if prompt_opens_think else completion
    parts = re.findall(rf"<{re.escape(think_tag)}>(.*?)(?:</{re.escape(think_tag)}>|$)", text, flags=re.DOTALL)
    return " ".join(parts) if parts else text.split("<answer>")[0]


def language_ratio(text: str, language: str) -> float:
    """Target-language words / all words; 1.0 for reasoning written in numbers and symbols alone (nothing in it
    is in another language), 0.0 for an empty chain of thought."""
    words = _WORD.findall(text)
    if not words:
        return 1.0 if text.strip() else 0.0
    is_target = _IS[language]
    return sum(1 for w in words if is_target(w)) / len(words)


@register(
    "language_consistency",
    params={
        "language": Param("en", str, "target language of the chain of thought", choices=tuple(_IS)),
        "think_tag": Param("think", str, "name of the reasoning tag"),
        "prompt_opens_think": Param(False, bool, "the prompt already ends with the opening think tag"),
    },
    doc="DeepSeek-R1's language-consistency reward: the fraction of the chain of thought's words (Han characters "
    "count one each) that are in the target language; 1.0 when it has no words, only numbers and symbols; "
    "0.0 for an empty chain of thought.",
)
def language_consistency(completions, rows, *, language, think_tag, prompt_opens_think):
    return [language_ratio(chain_of_thought(c, think_tag, prompt_opens_think), language) for c in completions]
