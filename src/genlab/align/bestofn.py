"""Best-of-n, or rejection-sampling fine-tuning (as in Llama 2's RLHF and "RAFT", Dong et al. 2023): sample n
outputs per prompt, keep the one the reward model scores highest, and fine-tune on the kept ones.

The kept outputs are written as files the run's modality reads back (Sampler.write_for_training) into the
new run's folder, `best-of-n/`, so the fine-tune is an ordinary one and the run holds what it learned from.
"""

from __future__ import annotations

import random
from pathlib import Path

BEST_DIR = "best-of-n"


def keep_best(sampler, scorer, prompts: list[str], n: int, seed: int = 0, **controls) -> dict:
    """For each prompt, n samples and the reward of each; the best sample per prompt is kept. Returns the kept
    outputs with their prompts, and the mean reward of all samples and of the kept ones."""
    sampler.check_controls(controls)
    rng = random.Random(seed)
    kept, kept_prompts, every, best = [], [], [], []
    for prompt in prompts:
        outputs = sampler.generate(prompt=prompt, num_samples=n, seed=rng.randrange(2**31), **controls)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        rewards = scorer.score(prompt, outputs)
        i = max(range(len(outputs)), key=rewards.__getitem__)
        kept.append(outputs[i])
        kept_prompts.append(prompt)
        every += rewards
        best.append(rewards[i])
    return {"outputs": kept, "prompts": kept_prompts, "mean_reward": sum(every) / len(every),
            "kept_reward": sum(best) / len(best)}


def write_best(sampler, chosen: dict, out_dir: Path) -> Path:
    folder = Path(out_dir) / BEST_DIR
    sampler.write_for_training(chosen["outputs"], chosen["prompts"], folder)
    return folder
