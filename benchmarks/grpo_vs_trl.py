"""Our GRPO step against TRL's GRPOTrainer at parity: same tiny model, prompts, G, stop, completion length, steps.

    python benchmarks/grpo_vs_trl.py --model runs/tiny_r1_zero/base/model --steps 20 --seeds 7 11 13 17 19

Parity: TRL's gradient checkpointing is off (its default is on since TRL 0.29; ours has none); both sides stop
at EOS only (ours is given stop=(), TRL's HF generate stops at EOS) and report their completion tokens; one
optimizer step per rollout batch on both. Per step and side, the time per phase: generation, rewards,
reference (+ any no-grad policy pass), backward (the policy's forward and backward), optimizer. Over the
seeds: the wall-time ratio ours / TRL and each side's held-out reward with a 95% t confidence interval.

One process, CPU. TRL's `train()` drives; a callback times each TRL step (on_step_begin -> on_step_end:
generation, rewards, loss, backward, optimizer) and then runs our step on the same prompts, so the two
alternate step by step and share whatever load the machine has at that moment. Both start from the same
weights, use the same rewards (the registry's math_accuracy and format, equal weights), lr, beta and
clipping. Afterwards both policies are evaluated greedily on the same held-out prompts.
Prints the wall time per step (ours / TRL) and the rewards.

--ablate adds one side per speed-up of our rollout turned off (`backends.grpo.rollout.Speedups`): ours without
prompt-prefix sharing, ours without the preallocated KV cache. Each trains its own copy from the same weights
with the same seed, right after ours in every step (the order of our sides rotates step by step); the
switches are exact, so only the time differs. Their rows report time and training reward, not a held-out
evaluation.
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

from r1dsl.config import InitConfig, RewardConfig

REWARDS = [RewardConfig(name="accuracy", rule="math_accuracy"), RewardConfig(name="format", rule="format")]
LOSS_AGGREGATION = {"grpo": "sequence", "dapo": "token", "dr_grpo": "constant"}  # TRL loss_type -> ours
ABLATIONS = {  # side name -> the speed-up it turns off (--ablate)
    "no_prefix_sharing": {"share_prompt_prefix": False},
    "no_prealloc_cache": {"preallocate_cache": False},
}


def load_model(path: str):
    """The pretrained tiny base both sides start from (TRL builds its reference model from this folder too)."""
    from backends.models import load_policy

    if not (Path(path) / "config.json").is_file():
        raise SystemExit(f"grpo_vs_trl: no model folder at {path!r} (no config.json). Make the tiny base with\n"
                         "  r1dsl compile recipes/tiny_r1_zero.r1 -o runs/tiny_r1_zero --run --only base\n"
                         "and pass --model runs/tiny_r1_zero/base/model")
    return load_policy(InitConfig(source="local", path=path))


def trl_reward_functions(seen: list):
    """The registry's rules in TRL's reward-function signature (dataset columns arrive as keyword lists).

    `seen` receives the (prompt, answer) pairs of each TRL step, so that our step runs on exactly those.
    """
    from backends.rewards.registry import REWARDS as RULES

    import backends.rewards  # noqa: F401  (registers the rules)

    def accuracy(prompts, completions, answer, **_):
        seen[:] = list(zip(prompts, answer))
        return RULES["math_accuracy"](completions, [{"answer": a} for a in answer])

    def format(prompts, completions, **_):  # noqa: A001  (TRL logs the function's name)
        return RULES["format"](completions, [{} for _ in completions])

    return [accuracy, format]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tiny_r1_zero/base/model", help="HF directory of the tiny base")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-generations-per-prompt", "--group-size", dest="num_generations_per_prompt", type=int, default=8)
    parser.add_argument("--prompts-per-step", type=int, default=16, help="prompts per rollout (generation batch)")
    parser.add_argument("--steps-per-generation", type=int, default=1,
                        help="optimizer steps per rollout (TRL's steps_per_generation; ours: train_global_batch_size = "
                             "prompts x G / this); --steps counts optimizer steps")
    parser.add_argument("--max-completion-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.001)
    parser.add_argument("--loss-type", default="grpo", choices=sorted(LOSS_AGGREGATION))
    parser.add_argument("--eval-prompts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 13, 17, 19])
    parser.add_argument("--ablate", action="store_true", help="also time ours with each rollout speed-up off")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        args.seed = seed
        runs.append(run_seed(args))
    summarize(args, runs)


PHASES = ("generation", "rewards", "reference", "backward", "optimizer")


def confidence_interval(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval."""
    from statistics import mean, stdev

    t975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
    if len(xs) < 2:
        return mean(xs), float("nan")
    return mean(xs), t975.get(len(xs) - 1, 2.0) * stdev(xs) / len(xs) ** 0.5


def summarize(args, runs: list[dict]) -> None:
    print("\n=== over seeds", args.seeds, "===")
    ratios = [r["ratio"] for r in runs]
    m, h = confidence_interval(ratios)
    print(f"wall time per step, ours / TRL: {m:.3f} +- {h:.3f} (95% CI; per seed {[round(x, 3) for x in ratios]})")
    print("per seed: seed, s/step ours / TRL, ratio, held-out reward ours / TRL, completion tokens/seq ours / TRL")
    for seed, r in zip(args.seeds, runs):
        print(f"  {seed:3d}  {r['ours']['s_per_step']:.2f} / {r['trl']['s_per_step']:.2f}  {r['ratio']:.3f}  "
              f"{r['ours']['eval_reward']:.3f} / {r['trl']['eval_reward']:.3f}  "
              f"{r['ours']['completion_tokens']:.1f} / {r['trl']['completion_tokens']:.1f}")
    for side in ("ours", "trl", *runs[0]["ablations"]):
        results = [r[side] if side in ("ours", "trl") else r["ablations"][side] for r in runs]
        phases = {p: statistics.mean(x["phases"][p] for x in results) for p in PHASES}
        tokens = statistics.mean(x["completion_tokens"] for x in results)
        if "eval_reward" in results[0]:
            m, h = confidence_interval([x["eval_reward"] for x in results])
            quality = f"held-out reward {m:.3f} +- {h:.3f}"
        else:
            m, h = confidence_interval([x["train_reward"] for x in results])
            quality = f"train reward {m:.3f} +- {h:.3f}"
        print(f"{side:17s} {quality} | s/step {statistics.mean(x['s_per_step'] for x in results):.2f} "
              f"| completion tokens/seq {tokens:.1f} | " + " ".join(f"{p} {v:.2f}s" for p, v in phases.items()))
    for side in runs[0]["ablations"]:
        m, h = confidence_interval([r["ablations"][side]["s_per_step"] / r["trl"]["s_per_step"] for r in runs])
        m2, h2 = confidence_interval([r["ablations"][side]["s_per_step"] / r["ours"]["s_per_step"] for r in runs])
        print(f"{side}: / TRL {m:.3f} +- {h:.3f}; / ours {m2:.3f} +- {h2:.3f} (95% CI)")


def run_seed(args) -> dict:

    warnings.filterwarnings("ignore")
    import transformers
    from datasets import Dataset
    from lightning.fabric import Fabric
    from trl import GRPOConfig, GRPOTrainer

    from backends.data.synthetic import R1_ZERO_TEMPLATE, arithmetic
    from backends.grpo.rollout import Speedups
    from backends.grpo.step import grpo_step
    from backends.stages.eval import evaluate
    from r1dsl.ir import GRPO, Sampling

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    P, G, T = args.prompts_per_step, args.num_generations_per_prompt, args.max_completion_tokens
    rows = arithmetic(args.steps * P, seed=1)
    test_rows = arithmetic(args.eval_prompts, seed=99)

    base, tokenizer = load_model(args.model)
    trl_model = copy.deepcopy(base).train()
    S = args.steps_per_generation
    if (P * G) % (S * G) or args.steps % S:
        raise SystemExit(f"--steps-per-generation {S} must divide --prompts-per-step {P} (whole groups per optimizer "
                         f"step) and --steps {args.steps}")
    settings = GRPO(num_generations_per_prompt=G, num_prompts_per_step=P, micro_batch_size=P * G // S, steps=args.steps,
                    train_global_batch_size=P * G // S if S > 1 else None,
                    kl_penalty=args.beta, loss_aggregation=LOSS_AGGREGATION[args.loss_type], temperature=1.0,
                    max_completion_tokens=T, max_prompt_tokens=256, seed=args.seed)

    # ours: the same step function the grpo stage runs; with --ablate, one more side per speed-up turned off
    fabric = Fabric(accelerator="cpu", devices=1)
    reference = copy.deepcopy(base).eval().requires_grad_(False) if args.beta > 0 else None
    speedups = {"ours": Speedups(), **({k: Speedups(**v) for k, v in ABLATIONS.items()} if args.ablate else {})}
    ours = {}  # side -> its model, Fabric-wrapped policy and optimizer, sampling generator
    for name in speedups:
        model = copy.deepcopy(base).train()
        policy, optimizer = fabric.setup(model, torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0))
        ours[name] = dict(model=model, policy=policy, optimizer=optimizer, generator=torch.Generator().manual_seed(args.seed))
    ours_model = ours["ours"]["model"]

    # TRL: GRPOTrainer with HF generate, no vLLM, one optimizer step per generation batch of P prompts x G
    out_dir = tempfile.mkdtemp(prefix="grpo_vs_trl_")
    config = GRPOConfig(
        output_dir=out_dir, report_to="none", use_vllm=False, use_cpu=True, bf16=False, seed=args.seed,
        max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant", weight_decay=0.0,
        max_grad_norm=1.0, per_device_train_batch_size=P * G // S, gradient_accumulation_steps=1, num_generations=G,
        steps_per_generation=S,  # one rollout of P x G, S optimizer steps on it (old log-probs from the rollout)
        gradient_checkpointing=False,  # on by default since TRL 0.29; ours has none
        max_completion_length=T, temperature=1.0, beta=args.beta, epsilon=0.2, loss_type=args.loss_type,
        scale_rewards="group", shuffle_dataset=False, logging_steps=1, save_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0,
    )
    dataset = Dataset.from_list([{"prompt": R1_ZERO_TEMPLATE.format(prompt=r["prompt"]), "answer": r["answer"]} for r in rows])
    seen: list[tuple[str, str]] = []  # (rendered prompt, answer) of TRL's current step, G times each
    trainer = GRPOTrainer(model=trl_model, reward_funcs=trl_reward_functions(seen), args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    trl_phases: list[dict[str, float]] = []  # per TRL step: seconds per phase

    def timed(owner, name, phase_of):
        original = getattr(owner, name)

        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                trl_phases[-1][phase_of(a)] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    timed(trainer, "_generate", lambda a: "generation")
    timed(trainer, "_calculate_rewards", lambda a: "rewards")
    timed(trainer, "_get_per_token_logps_and_entropies",
          lambda a: "reference" if (a and a[0] is trainer.ref_model) or not torch.is_grad_enabled() else "backward")
    timed(trainer.accelerator, "backward", lambda a: "backward")

    by_prompt = {R1_ZERO_TEMPLATE.format(prompt=r["prompt"]): r for r in rows}
    timings = {name: [] for name in ("trl", *ours)}  # wall seconds per step
    cpu = {name: [] for name in ("trl", *ours)}  # process CPU seconds per step (robust to other load on a shared machine)
    metrics = {name: [] for name in ours}  # our sides' grpo_step metrics per step

    class Alternate(transformers.TrainerCallback):
        def on_step_begin(self, *_, **__):
            trl_phases.append(dict.fromkeys(PHASES, 0.0))
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_pre_optimizer_step(self, *_, **__):
            self.o0 = time.perf_counter()

        def on_optimizer_step(self, *_, **__):
            trl_phases[-1]["optimizer"] += time.perf_counter() - self.o0

        def on_step_end(self, _args, state, *_, **__):
            # per rollout: TRL's S optimizer steps summed, then ours runs the same rollout's S steps at once
            if state.global_step % S != 1 % S:
                timings["trl"][-1] += time.perf_counter() - self.t0
                cpu["trl"][-1] += time.process_time() - self.c0
            else:
                timings["trl"].append(time.perf_counter() - self.t0)
                cpu["trl"].append(time.process_time() - self.c0)
            if state.global_step % S:
                return
            step = state.global_step // S - 1  # the rollout
            step_rows = [by_prompt[prompt] for prompt, _ in seen[::G]]  # the P prompts TRL just trained on
            names = list(ours)
            for name in names[step % len(names):] + names[: step % len(names)]:  # rotate: no side always goes first
                side = ours[name]
                t0, c0 = time.perf_counter(), time.process_time()
                m = grpo_step(fabric, side["policy"], reference, side["optimizer"], tokenizer, step_rows, settings,
                              REWARDS, R1_ZERO_TEMPLATE, 1.0, side["generator"], stop=(),  # EOS only, as TRL's generate
                              speedups=speedups[name])
                timings[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                metrics[name].append(m)
            print(f"step {step + 1:3d}  " + "  ".join(f"{n} {timings[n][-1]:6.2f}s" for n in timings) +
                  f"  ours reward {metrics['ours'][-1]['reward']:.3f}", flush=True)

    trainer.add_callback(Alternate())
    trainer.remove_callback(transformers.PrinterCallback)  # TRL's per-step log dicts
    trainer.train()
    trl_rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]

    eval_sampling = Sampling(samples_per_prompt=1, temperature=0.0, max_completion_tokens=T)  # greedy
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
    print(f"{'':18s}{'s/step':>9s}{'cpu s/step':>11s}{'train reward (last ' + str(k) + ')':>26s}{'eval reward':>13s}{'accuracy':>10s}{'format':>8s}")
    print(f"{'base':18s}{'':>9s}{'':>11s}{'':>26s}{results['base']['reward']:13.3f}{results['base']['greedy_accuracy']:10.3f}{results['base']['format_rate']:8.3f}")
    train_rewards = {"trl": trl_rewards, **{n: [m["reward"] for m in ms] for n, ms in metrics.items()}}
    for name in ("ours", "trl", *(n for n in ours if n != "ours")):
        r = results.get(name)
        held_out = f"{r['reward']:13.3f}{r['greedy_accuracy']:10.3f}{r['format_rate']:8.3f}" if r else f"{'-':>13s}{'-':>10s}{'-':>8s}"
        print(f"{name:18s}{per_step(timings[name]):9.2f}{per_step(cpu[name]):11.2f}"
              f"{statistics.mean(train_rewards[name][-k:]):26.3f}" + held_out)
    ratio = per_step(timings["ours"]) / per_step(timings["trl"])
    cpu_ratio = per_step(cpu["ours"]) / per_step(cpu["trl"])
    print(f"\nwall time per step, ours / TRL: {ratio:.2f}  (total {sum(timings['ours']):.1f}s vs {sum(timings['trl']):.1f}s); "
          f"CPU time per step: {cpu_ratio:.2f}")
    phases = {n: {p: per_step([m[f"time_{p}_s"] for m in ms]) for p in PHASES} for n, ms in metrics.items()}
    phases["trl"] = {p: per_step([x[p] for x in trl_phases]) for p in PHASES}
    tokens = {n: [m["completion_length"] for m in ms] for n, ms in metrics.items()}
    tokens["trl"] = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    for name in timings:
        print(f"{name:17s} phases s/step: " + "  ".join(f"{p} {v:.3f}" for p, v in phases[name].items()) +
              f"  | completion tokens/seq {statistics.mean(tokens[name]):.1f}")

    def side(name: str) -> dict:
        out = {"s_per_step": per_step(timings[name]), "phases": phases[name], "completion_tokens": statistics.mean(tokens[name]),
               "train_reward": statistics.mean(train_rewards[name][-k:])}
        return {**out, "eval_reward": results[name]["reward"]} if name in results else out

    return {"ratio": ratio, "ours": side("ours"), "trl": side("trl"),
            "ablations": {n: side(n) for n in ours if n != "ours"}}


if __name__ == "__main__":
    main()
