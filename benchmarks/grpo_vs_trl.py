"""Our GRPO step against TRL's GRPOTrainer: same tiny model, prompts, G, completion length and steps.

    python benchmarks/grpo_vs_trl.py --model runs/tiny_r1_zero/base/model --steps 20

One process, CPU. TRL's `train()` drives; a callback times each TRL step (on_step_begin -> on_step_end:
generation, rewards, loss, backward, optimizer) and then runs our step on the same prompts, so the two
alternate step by step and share whatever load the machine has at that moment. Both start from the same
weights, use the same rewards (the registry's math_accuracy and format, equal weights), lr, beta and
clipping. Afterwards both policies are evaluated greedily on the same held-out prompts.
Prints the wall time per step (ours / TRL) and the rewards.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

REWARDS = [
    {"name": "accuracy", "rule": "math_accuracy", "weight": 1.0, "params": {}},
    {"name": "format", "rule": "format", "weight": 1.0, "params": {}},
]
LOSS_AGGREGATION = {"grpo": "sequence", "dapo": "token", "dr_grpo": "constant"}  # TRL loss_type -> ours


def load_model(path: str | None):
    from backends.models import load_policy

    if path and (Path(path) / "config.json").exists():
        return load_policy({"source": "local", "path": path})
    print(f"note: no model at {path!r}; using a freshly initialised tiny model (rewards will stay near 0)")
    tiny = dict(arch="qwen2", hidden_size=128, num_layers=4, num_heads=4, intermediate_size=384, vocab_size=512,
                max_position_embeddings=256)
    return load_policy({"source": "tiny", "tiny": tiny})


def trl_reward_functions(seen: list):
    """The registry's rules in TRL's reward-function signature (dataset columns arrive as keyword lists).

    `seen` receives the (prompt, answer) pairs of each TRL step, so that our step runs on exactly those.
    """
    from backends.rewards.registry import REWARDS as RULES

    import backends.rewards  # noqa: F401  (registers the rules)

    def accuracy(prompts, completions, answer, **_):
        seen[:] = list(zip(prompts, answer))
        return RULES["math_accuracy"].fn(completions, [{"answer": a} for a in answer])

    def format(prompts, completions, **_):  # noqa: A001  (TRL logs the function's name)
        return RULES["format"].fn(completions, [{} for _ in completions])

    return [accuracy, format]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tiny_r1_zero/base/model", help="HF directory of the tiny base")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-generations-per-prompt", "--group-size", dest="num_generations_per_prompt", type=int, default=8)
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--max-completion-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.001)
    parser.add_argument("--loss-type", default="grpo", choices=sorted(LOSS_AGGREGATION))
    parser.add_argument("--eval-prompts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    import transformers
    from datasets import Dataset
    from lightning.fabric import Fabric
    from trl import GRPOConfig, GRPOTrainer

    from backends.data.synthetic import R1_ZERO_TEMPLATE, arithmetic
    from backends.grpo.step import grpo_step
    from backends.stages.eval import evaluate
    from r1dsl.ir import GRPO

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    P, G, T = args.prompts_per_step, args.num_generations_per_prompt, args.max_completion_tokens
    rows = arithmetic(args.steps * P, seed=1)
    test_rows = arithmetic(args.eval_prompts, seed=99)

    base, tokenizer = load_model(args.model)
    ours_model, trl_model = copy.deepcopy(base).train(), copy.deepcopy(base).train()
    settings = GRPO(num_generations_per_prompt=G, num_prompts_per_step=P, micro_batch_size=P * G, steps=args.steps,
                    kl_penalty=args.beta, loss_aggregation=LOSS_AGGREGATION[args.loss_type], temperature=1.0,
                    max_completion_tokens=T, max_prompt_tokens=256, seed=args.seed)

    # ours: the same step function the grpo stage runs
    fabric = Fabric(accelerator="cpu", devices=1)
    reference = copy.deepcopy(base).eval().requires_grad_(False) if args.beta > 0 else None
    optimizer = torch.optim.AdamW(ours_model.parameters(), lr=args.lr, weight_decay=0.0)
    policy, optimizer = fabric.setup(ours_model, optimizer)
    generator = torch.Generator().manual_seed(args.seed)

    # TRL: GRPOTrainer with HF generate, no vLLM, one optimizer step per generation batch of P prompts x G
    out_dir = tempfile.mkdtemp(prefix="grpo_vs_trl_")
    config = GRPOConfig(
        output_dir=out_dir, report_to="none", use_vllm=False, use_cpu=True, bf16=False, seed=args.seed,
        max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant", weight_decay=0.0,
        max_grad_norm=1.0, per_device_train_batch_size=P * G, gradient_accumulation_steps=1, num_generations=G,
        max_completion_length=T, temperature=1.0, beta=args.beta, epsilon=0.2, loss_type=args.loss_type,
        scale_rewards="group", shuffle_dataset=False, logging_steps=1, save_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0,
    )
    dataset = Dataset.from_list([{"prompt": R1_ZERO_TEMPLATE.format(prompt=r["prompt"]), "answer": r["answer"]} for r in rows])
    seen: list[tuple[str, str]] = []  # (rendered prompt, answer) of TRL's current step, G times each
    trainer = GRPOTrainer(model=trl_model, reward_funcs=trl_reward_functions(seen), args=config, train_dataset=dataset,
                          processing_class=tokenizer)

    by_prompt = {R1_ZERO_TEMPLATE.format(prompt=r["prompt"]): r for r in rows}
    timings = {"ours": [], "trl": []}  # wall seconds per step
    cpu = {"ours": [], "trl": []}  # process CPU seconds per step (robust to other load on a shared machine)
    our_rewards: list[float] = []

    class Alternate(transformers.TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, _args, state, *_, **__):
            timings["trl"].append(time.perf_counter() - self.t0)
            cpu["trl"].append(time.process_time() - self.c0)
            step = state.global_step - 1
            step_rows = [by_prompt[prompt] for prompt, _ in seen[::G]]  # the P prompts TRL just trained on
            t0, c0 = time.perf_counter(), time.process_time()
            m = grpo_step(fabric, policy, reference, optimizer, tokenizer, step_rows, settings,
                          REWARDS, R1_ZERO_TEMPLATE, 1.0, generator)
            timings["ours"].append(time.perf_counter() - t0)
            cpu["ours"].append(time.process_time() - c0)
            our_rewards.append(m["reward"])
            print(f"step {step + 1:3d}  TRL {timings['trl'][-1]:6.2f}s  ours {timings['ours'][-1]:6.2f}s  "
                  f"ours reward {m['reward']:.3f}", flush=True)

    trainer.add_callback(Alternate())
    trainer.remove_callback(transformers.PrinterCallback)  # TRL's per-step log dicts
    trainer.train()
    trl_rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]

    eval_sampling = {"samples_per_prompt": 1, "max_completion_tokens": T}
    results = {}
    for name, model in (("base", base), ("ours", ours_model), ("trl", trl_model)):
        results[name] = evaluate(model.eval(), tokenizer, test_rows, R1_ZERO_TEMPLATE, REWARDS, eval_sampling)

    def per_step(xs):  # the first step of each includes one-off warm-up (allocations, lazy imports)
        return statistics.mean(xs[1:] if len(xs) > 1 else xs)

    k = max(1, args.steps // 4)
    print()
    print(f"tiny model {sum(p.numel() for p in base.parameters()) / 1e6:.2f}M params | {P} prompts x G={G} | "
          f"max {T} completion tokens | {args.steps} steps | loss {args.loss_type} | beta {args.beta} | lr {args.lr} | "
          f"{args.threads} threads | torch {torch.__version__} | trl {__import__('trl').__version__}")
    print(f"{'':8s}{'s/step':>9s}{'cpu s/step':>11s}{'train reward (last ' + str(k) + ')':>26s}{'eval reward':>13s}{'accuracy':>10s}{'format':>8s}")
    print(f"{'base':8s}{'':>9s}{'':>11s}{'':>26s}{results['base']['reward']:13.3f}{results['base']['accuracy']:10.3f}{results['base']['format_rate']:8.3f}")
    for name, rewards in (("ours", our_rewards), ("trl", trl_rewards)):
        r = results[name]
        print(f"{name:8s}{per_step(timings[name]):9.2f}{per_step(cpu[name]):11.2f}{statistics.mean(rewards[-k:]):26.3f}{r['reward']:13.3f}"
              f"{r['accuracy']:10.3f}{r['format_rate']:8.3f}")
    ratio = per_step(timings["ours"]) / per_step(timings["trl"])
    cpu_ratio = per_step(cpu["ours"]) / per_step(cpu["trl"])
    print(f"\nwall time per step, ours / TRL: {ratio:.2f}  (total {sum(timings['ours']):.1f}s vs {sum(timings['trl']):.1f}s); "
          f"CPU time per step: {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
