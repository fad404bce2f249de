"""The table of stage kinds: everything the project knows about a kind, in one row.

The checker, compiler, planner, launchers, stage registry (backends/stages), the editor-grammar test
and the docs test read this table; a new kind is one row here plus one runner module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageKind:
    name: str
    sections: tuple[str, ...]  # the sections it reads (another one is W104)
    needs: tuple[str, ...]  # canonical fields each row of its training data must carry
    produces: str  # "policy" (a model `from` may start at), "scorer" (a reward model), "data" (data.jsonl), "report"
    runner: str | None  # the module that runs it (`run(cfg)`); None: the checker lowers it to other kinds
    steps_section: str | None = None  # the section with its steps, seed, checkpoint_every and batch size
    scores_data: bool = False  # its rewards score its training data (so it needs rewards)
    samples: bool = False  # generating samples is its job: its sampling section is always compiled
    generates: bool = False  # it generates text (rollouts or samples), so it needs generation memory
    data_is_eval: bool = False  # its `data` is what it evaluates (and `data` is optional)
    pairs: bool = False  # a training example is two sequences (chosen, rejected)
    lowered_to: str | None = None  # the kind each of its jobs becomes (distill -> one sft job per student)
    nemo_rl: str | None = None  # the NeMo-RL algorithm that runs it, if any
    article: str = "a"  # "an sft stage"

    @property
    def trains(self) -> bool:
        """It updates weights (has an optimizer)."""
        return "optim" in self.sections

    @property
    def saves_model(self) -> bool:
        return self.produces in ("policy", "scorer")


_TRAIN = ("optim", "train", "sampling", "resources")

KINDS: dict[str, StageKind] = {k.name: k for k in (
    StageKind("pretrain", _TRAIN, ("text",), "policy", "backends.stages.pretrain", steps_section="train"),
    StageKind("sft", _TRAIN, ("prompt", "response"), "policy", "backends.stages.sft", steps_section="train",
              nemo_rl="sft", article="an"),
    StageKind("grpo", ("optim", "grpo", "sampling", "rollout", "resources"), ("prompt",), "policy", "backends.stages.grpo",
              steps_section="grpo", scores_data=True, generates=True, nemo_rl="grpo"),
    StageKind("rejection_sample", ("sampling", "filters", "rollout", "resources"), ("prompt",), "data",
              "backends.stages.rejection_sample", scores_data=True, samples=True, generates=True),
    StageKind("distill", _TRAIN, ("prompt", "response"), "policy", None, lowered_to="sft", nemo_rl="sft"),
    StageKind("eval", ("sampling", "rollout", "resources"), ("prompt",), "report", "backends.stages.eval",
              samples=True, generates=True, data_is_eval=True, article="an"),
    # a Bradley-Terry preference model (backends/stages/reward_model.py): a scorer, not a policy to start from
    StageKind("reward_model", ("optim", "train", "resources"), ("prompt", "chosen", "rejected"), "scorer",
              "backends.stages.reward_model", steps_section="train", pairs=True),
)}

# the kinds a compiled job can have (distill is lowered before compiling)
RUNNABLE = tuple(name for name, k in KINDS.items() if k.runner)


def kind(name: str) -> StageKind:
    """The row of a kind; KeyError for a name the checker would have refused."""
    return KINDS[name]


def with_property(attr: str) -> tuple[str, ...]:
    """The names of the kinds whose `attr` is true (for messages: "a pretrain, sft or grpo stage")."""
    return tuple(name for name, k in KINDS.items() if getattr(k, attr))


def listed(names: tuple[str, ...] | list[str], last: str = "or") -> str:
    """`a, b or c`."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {last} " + names[-1]
