"""The one training loop, for every family.

It knows nothing about any one model: it asks the family for a model, its optimizers and one
training step, and the data for batches. It owns what every run needs: the learning-rate
schedule (linear warmup, cosine decay to a floor), evaluation, logging, atomic checkpoints and
exact resume (same weights, optimizer, schedule, RNG streams and data position).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from genlab.align.finetune import FineTune
from genlab.errors import GenlabError
from genlab.families import get_family
from genlab.io import atomic_write_json, atomic_write_text, read_json, run_lock
from genlab.modalities import modality_for_training
from genlab.preflight import TRAIN_COPIES, check_memory, meta_model
from genlab.runtime import pick_device, setup_threads
from genlab.training.checkpoint import (
    FULL_WEIGHTS,
    load_checkpoint,
    read_trainer_state,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from genlab.training.config import UNTIL_TIME_RUNS_OUT, TrainConfig, check_types, saved_train_config
from genlab.training.distributed import Distributed, init_distributed, rank_seed, restart_count
from genlab.training.precision import StepContext, autocast_context, measure_precision, pick_precision

EVAL_SEED = 20240601  # evaluation always reads the same validation windows, so numbers compare
PLAN_SHARE = 0.05  # with --max-minutes: the share of the budget timed before the schedule is planned
PLAN_MARGIN = 0.95  # the share of the remaining time a plan fills: the machine's speed varies
FORWARD_SHARE = 0.4  # an evaluation batch (forward only) costs about this share of a training step
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after writing a checkpoint; `signum` says which signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to lr, then cosine decay to min_lr at lr_decay_steps, then flat (nanoGPT)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    decay_steps = cfg.lr_decay_steps or cfg.max_steps
    if step >= decay_steps:
        return cfg.min_lr
    ratio = (step - cfg.warmup_steps) / max(1, decay_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The data RNG of one step, derived from the run's seed: resuming at any step reads the same batches."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63))


def default_run_dir(cfg: TrainConfig) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", Path(cfg.data).name if ":" not in cfg.data else cfg.data).strip("-")
    return Path("runs") / f"{cfg.family}-{slug or 'data'}"


@torch.no_grad()
def evaluate_loss(family, model, data, batch_size: int, n_batches: int, device, precision: str,
                  dist: Distributed | None = None) -> float:
    """Mean loss over a fixed set of validation batches (the same ones at every evaluation).

    Under DDP each rank scores its shard of every global batch and the sums are reduced across ranks,
    so the figure equals one process scoring the whole batches.
    """
    dist = dist or Distributed()
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(EVAL_SEED)
    total = 0.0
    for _ in range(n_batches):
        batch = dist.shard(data.batch("val", batch_size * dist.world_size, gen), batch_size)
        batch = tuple(t.to(device) for t in batch)
        with autocast_context(device, precision):
            total += family.loss(model, batch).float().item()
    model.train(was_training)
    (total,) = dist.sum([total])
    return total / (n_batches * dist.world_size)


def train(cfg: TrainConfig | None = None, *, resume: str | os.PathLike | None = None, overrides: dict | None = None,
          quiet: bool = False, on_checkpoint: Callable[[Path], None] | None = None) -> Path:
    """Train a model (or continue one) and return its run directory. Under torchrun, every rank calls this.
    `on_checkpoint(run_dir)` runs in the main process after every checkpoint (the API writes the model card)."""
    setup_threads()
    if resume is None:
        assert cfg is not None
        cfg.validate()  # before the folder is made: a bad setting leaves nothing behind
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
        hint = "wait for it to finish, or choose another --out"
    else:
        run_dir = Path(resume)
        hint = "wait for it to finish: one run trains in one process (or one torchrun job) at a time"
    # The process that writes the folder holds RUN/.lock from before it looks at the folder until the run ends;
    # under torchrun that is rank 0 alone (the process group does not exist yet: torchrun's environment says).
    # The card writer that on_checkpoint calls runs in this thread and passes through the same lock.
    writer = int(os.environ.get("WORLD_SIZE", "1")) <= 1 or os.environ.get("RANK", "0") == "0"
    with run_lock(run_dir, purpose="train", hint=hint, create=resume is None) if writer else nullcontext():
        if resume is None and restart_count() > 0 and (run_dir / "trainer_state.json").exists():
            resume = run_dir  # torchrun --max-restarts started this worker again: carry on from the last checkpoint
        if resume is not None:
            cfg, model_config_dict, saved_world = _resume_config(run_dir, overrides or {})
            cfg.validate()
        else:
            if (run_dir / "trainer_state.json").exists():
                raise GenlabError(
                    f"{run_dir} already holds a run; continue it with --resume {run_dir}, or choose another --out"
                )
            model_config_dict, saved_world = None, None
        family = get_family(cfg.family)
        dist = init_distributed(cfg.device)
        try:
            session = _set_up(cfg, family, dist, run_dir, resume is not None, model_config_dict, saved_world, quiet)
            session.on_checkpoint = on_checkpoint
            if session.start < cfg.max_steps:
                _loop(session)
            else:
                session.say(f"genlab: {run_dir} already reached step {session.start} of --max-steps "
                            f"{cfg.max_steps}; nothing to do")
        except BaseException:
            dist.close(finished=False)
            raise
        dist.close()
    return run_dir


@dataclass
class Session:
    """Everything the loop needs, as set-up leaves it: the run, its model, optimizers and where it starts."""

    cfg: TrainConfig
    family: Any
    dist: Distributed
    run_dir: Path
    device: torch.device
    data: Any  # the modality's training data: batch(), items_in(), unit
    model: torch.nn.Module
    train_model: torch.nn.Module  # the model, or its DDP wrapper
    optimizers: dict
    precision: str
    start: int  # the step the loop begins at
    state: dict  # best_val_loss, best_checkpoint, elapsed_s
    quiet: bool
    decay_given: bool  # the user set lr_decay_steps: a time plan leaves the cosine horizon alone
    weights: Any = FULL_WEIGHTS  # how checkpoints hold the model: all weights, or a LoRA adapter alone
    on_checkpoint: Callable[[Path], None] | None = None

    def say(self, *args) -> None:
        if not self.quiet:
            print(*args, file=sys.stderr, flush=True)


def _set_up(cfg: TrainConfig, family, dist: Distributed, run_dir: Path, resuming: bool, model_config_dict,
            saved_world: int | None, quiet: bool) -> Session:
    """Open the data, build (or restore) the model and optimizers, choose the precision, write config.json."""
    if saved_world is not None and saved_world != dist.world_size:
        cfg.batch_size = _share_global_batch(cfg.batch_size * saved_world, saved_world, dist.world_size, run_dir)
    device = pick_device(cfg.device)
    if dist.backend == "nccl":
        device = torch.device("cuda", dist.local_rank)
    quiet = quiet or not dist.is_main
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank

    default_block = getattr(family.config_class(), "block_size", None)  # image families have none
    block_size = (model_config_dict or cfg.model).get("block_size", default_block)
    if cfg.window is not None:  # shorter training windows than the model's context (a few short examples)
        if block_size is None or cfg.window > block_size:
            raise GenlabError(f"--window {cfg.window} is for token models, at most their --block-size "
                              f"({block_size}); leave it out or lower it")
        block_size = cfg.window
    # a fine-tune (genlab finetune) reads its data the parent's way and starts from the parent's weights
    tune = FineTune(cfg, run_dir, resuming) if cfg.parent is not None else None
    if tune:
        data, family = tune.open_data(block_size), tune.family(family)  # alignment: DPO's pairs and loss
    else:
        data = modality_for_training(cfg.data, family, cfg.extensions).open_data(cfg.data, cfg, block_size)
    if model_config_dict is None:
        model_config = family.make_config({**cfg.model, **data.model_settings()})
    else:
        model_config = family.saved_config(model_config_dict)
        if any(getattr(model_config, k) != v for k, v in data.model_settings().items()):
            raise GenlabError(f"the data of {run_dir} changed since training began; resume needs the same data")
    check_memory(meta_model(family, model_config), device, TRAIN_COPIES, "training")  # before allocating it
    model = (tune.model(family, model_config) if tune else family.build(model_config)).to(device)
    weights = tune.weights if tune else FULL_WEIGHTS
    if dist.enabled:
        torch.manual_seed(rank_seed(cfg.seed, dist.rank))  # each rank its own dropout and noise
    precision, how = _choose_precision(cfg, family, model, model_config, data, device, dist, resuming)
    cfg.precision = precision  # config.json records what was used, so --resume trains on in the same precision
    optimizers = family.make_optimizers(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2),
                                        fused=device.type == "cpu")
    n_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    state = {"best_val_loss": None, "best_checkpoint": None, "elapsed_s": 0.0}
    if resuming:
        loaded = load_checkpoint(run_dir, model, optimizers, weights)
        start = loaded["step"]
        state.update({k: loaded[k] for k in state if k in loaded})
        _restore_rng(loaded["rng"], dist, cfg.seed, start)
        if dist.is_main:
            _truncate_metrics(run_dir / "metrics.jsonl", start)
    decay_given = resuming or cfg.lr_decay_steps is not None
    if not resuming:
        start = 0
        if cfg.lr_decay_steps is None:
            cfg.lr_decay_steps = cfg.max_steps
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # left by an attempt that never reached a checkpoint
            data.save(run_dir)
    run_config = {"genlab_version": _version(), "family": family.name, "model": asdict(model_config),
                  **data.preprocessing(), "data": data.describe(), "train": asdict(cfg), "n_params": n_params,
                  **({"parent": tune.record(), "trainable_params": trainable} if tune else {}),
                  "distributed": {"world_size": dist.world_size,
                                  "global_batch_size": cfg.batch_size * cfg.grad_accum * dist.world_size},
                  "hardware": _hardware(device)}  # what the model card reports as its compute
    if dist.is_main:
        atomic_write_json(run_dir / "config.json", run_config)
    if cfg.compile:  # compiles model.forward in place: state_dict keys and checkpoints stay as they are
        model.compile()
    train_model = family.wrap_for_ddp(model, _ddp_wrapper(device)) if dist.enabled else model
    session = Session(cfg, family, dist, run_dir, device, data, model, train_model, optimizers, precision, start,
                      state, quiet, decay_given, weights)
    size = f" ({cfg.preset})" if cfg.preset else ""
    training = f", {trainable / 1e6:.3f}M of them trained" if trainable < n_params else ""
    session.say(f"genlab: {family.name}{size} with {n_params / 1e6:.2f}M parameters{training} on {device.type} "
                f"({precision}, {how}), {data.train_items} training {data.items}, run directory {run_dir}")
    if cfg.grad_accum > 1:
        session.say(f"genlab: {cfg.grad_accum} micro-batches of {cfg.batch_size} per optimizer step")
    if dist.enabled:
        per_process = cfg.batch_size * cfg.grad_accum
        session.say(f"genlab: {dist.world_size} processes ({dist.backend}); global batch "
                    f"{per_process * dist.world_size} = {per_process} per process x {dist.world_size}")
    return session


def _hardware(device: torch.device) -> dict:
    """The device training ran on, in words: a GPU's name, or the CPU's and its threads."""
    import platform

    if device.type == "cuda":
        return {"device": "cuda", "name": torch.cuda.get_device_name(device)}
    name = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() is often empty there
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"device": device.type, "name": name, "threads": torch.get_num_threads()}


def _share_global_batch(global_batch: int, saved_world: int, world: int, run_dir: Path) -> int:
    """The per-process batch when a run resumes on another number of processes: the same global batch."""
    if global_batch % world:
        raise GenlabError(
            f"{run_dir} was trained with a global batch of {global_batch} ({saved_world} processes x "
            f"{global_batch // saved_world}); {world} processes cannot share it evenly: resume with a number of "
            f"processes that divides {global_batch}"
        )
    return global_batch // world


def _choose_precision(cfg: TrainConfig, family, model, model_config, data, device, dist: Distributed,
                      resuming: bool) -> tuple[str, str]:
    """The training precision and how it was chosen (a resumed run keeps the one it began with)."""
    how = "as the run began" if resuming else "auto" if cfg.precision == "auto" else "as asked"

    def measure() -> str:
        nonlocal how
        chosen = "fp32"
        if dist.is_main:  # on the global batch, so that N processes choose as one process does
            batch = data.batch("train", cfg.batch_size * dist.world_size, step_generator(cfg.seed, 0))
            chosen, how = measure_precision(family, model, model_config, tuple(t.to(device) for t in batch), cfg,
                                            device)
        return "bf16" if dist.any(chosen == "bf16") else "fp32"  # every rank takes rank 0's choice

    return pick_precision(cfg.precision, device, model, None if resuming else measure), how


def _loop(s: Session) -> None:
    """Train from s.start to max_steps (or max_minutes, or a stop signal): log, evaluate and checkpoint on the way."""
    cfg, dist, data, state = s.cfg, s.dist, s.data, s.state
    s.model.train()
    metrics_file = open(s.run_dir / "metrics.jsonl", "a", encoding="utf-8") if dist.is_main else None
    log = _metrics_logger(metrics_file)
    t_loop = time.perf_counter()
    t_start = t_loop - state["elapsed_s"]
    budget = TimeBudget(s, t_loop)
    bar = _progress(s.start, None if budget.planning else cfg.max_steps, s.quiet)
    global_batch = cfg.batch_size * cfg.grad_accum * dist.world_size
    ctx = StepContext(s.device, s.precision, cfg.grad_clip, cfg.grad_accum)
    step_ms: list[float] = []
    step = s.start
    stop_reason = None
    with _stop_signals() as stop_signal:
        try:
            while step < cfg.max_steps:
                t0 = time.perf_counter()
                lr = lr_at(step, cfg)
                for opt in s.optimizers.values():
                    for group in opt.param_groups:
                        group["lr"] = lr
                # every rank draws the same global batch from the step's generator and keeps its own rows
                batch = dist.shard(data.batch("train", global_batch, step_generator(cfg.seed, step)),
                                   cfg.batch_size * cfg.grad_accum)
                batch = tuple(t.to(s.device, non_blocking=True) for t in batch)
                figures = s.family.train_step(s.train_model, batch, s.optimizers, ctx)
                step += 1
                dt = time.perf_counter() - t0
                step_ms.append(dt * 1000)
                if budget.planning and budget.first_plan(step, step_ms):
                    bar.total = cfg.max_steps
                    bar.refresh()
                if step % cfg.log_interval == 0 or step == cfg.max_steps:
                    loss = float(figures["loss"])
                    if not math.isfinite(loss):
                        raise GenlabError(f"training diverged at step {step} (loss {loss}); lower --lr and start again")
                    rate = data.items_in(batch) * dist.world_size / dt
                    log({"step": step, "loss": round(loss, 5), "lr": lr, "ms_per_step": round(dt * 1000, 2),
                         f"{data.unit}_per_s": round(rate)})
                    bar.set_postfix_str(f"loss {loss:.4f} {rate:,.0f} {data.unit}/s", refresh=False)
                bar.update(1)
                # one collective for every reason to stop, so that all processes stop at the same step
                if dist.any(budget.out_of_time(step) or stop_signal.received is not None):
                    stop_reason = "signal" if dist.any(stop_signal.received is not None) else "time"
                if step % cfg.eval_interval == 0 or step == cfg.max_steps or stop_reason:
                    val = _evaluate_and_checkpoint(s, step, t_start, log)
                    if not s.quiet:
                        bar.write(f"step {step}: val_loss {val:.4f} (best {state['best_val_loss']:.4f})",
                                  file=sys.stderr)
                    if budget.planned and step < cfg.max_steps and not stop_reason:
                        budget.plan_again(step)  # the steps after this checkpoint (and a resume from it) follow it
                        bar.total = cfg.max_steps
                if stop_reason:
                    break
        finally:
            bar.close()  # ends the bar's line, so that what follows starts on its own
            if metrics_file is not None:
                metrics_file.close()
    resume = f"continue with: genlab train --resume {s.run_dir}"
    if stop_reason == "signal":
        name = signal.Signals(stop_signal.received).name if stop_signal.received else "a stop signal"
        message = f"genlab: stopped by {name} at step {step}; checkpoint-{step} written; {resume}"
        if dist.is_main:
            print(message, file=sys.stderr, flush=True)
        raise Interrupted(stop_signal.received or signal.SIGTERM, message)
    if stop_reason == "time":
        s.say(f"genlab: --max-minutes {cfg.max_minutes} reached at step {step}; {resume}")
    if step_ms:
        median = statistics.median(step_ms[1:] or step_ms)
        s.say(f"genlab: done at step {step}: median {median:.1f} ms/step, best val_loss "
              f"{state['best_val_loss']:.4f}, sample with: genlab sample {s.run_dir}")


def _evaluate_and_checkpoint(s: Session, step: int, t_start: float, log) -> float:
    """Score the validation batches, keep the best, and write checkpoint-STEP (rank 0; every rank takes part)."""
    cfg, state = s.cfg, s.state
    val = evaluate_loss(s.family, s.model, s.data, cfg.batch_size, cfg.eval_batches, s.device, s.precision, s.dist)
    log({"step": step, "val_loss": round(val, 5)})
    name = f"checkpoint-{step}"
    if state["best_val_loss"] is None or val < state["best_val_loss"]:
        state["best_val_loss"], state["best_checkpoint"] = val, name
    state["elapsed_s"] = time.perf_counter() - t_start
    rng = _gather_rng(s.dist)  # a collective: every rank takes part, rank 0 writes
    if s.dist.is_main:
        save_checkpoint(s.run_dir, step, s.model, s.optimizers, dict(state), {state["best_checkpoint"]}, rng,
                        s.weights)
        if s.on_checkpoint is not None:
            s.on_checkpoint(s.run_dir)
    return val


class TimeBudget:
    """--max-minutes: the deadline, and a plan of the steps that fit before it, with the cosine schedule ending
    at the last of them (min_lr there), so that a run cut by time ends its schedule rather than stopping at the
    peak. The first plan comes once PLAN_SHARE of the budget is timed, adding an estimate of the evaluations;
    after each checkpoint the plan is made again from the measured pace, evaluations included. Each plan goes
    into config.json, so that a resume follows it."""

    def __init__(self, s: Session, t_loop: float):
        cfg = s.cfg
        self.s, self.t_loop = s, t_loop
        self.deadline = None if cfg.max_minutes is None else t_loop + cfg.max_minutes * 60
        # planned when a run begins (a resumed run keeps its plan, and one with a step limit its schedule), or when
        # a run whose only limit is time stopped before it could plan
        self.planning = cfg.max_minutes is not None and cfg.time_plan is None and (
            s.start == 0 or cfg.max_steps >= UNTIL_TIME_RUNS_OUT)
        self.planned = False
        self.last_plan = (t_loop, s.start)  # when, and at which step, the plan was last made

    def out_of_time(self, step: int) -> bool:
        return self.deadline is not None and step < self.s.cfg.max_steps and time.perf_counter() >= self.deadline

    def first_plan(self, step: int, step_ms: list[float]) -> bool:
        """Plan once enough steps are timed (the same answer on every process); whether it planned."""
        elapsed = time.perf_counter() - self.t_loop
        timed = len(step_ms) - 1  # the first step warms up
        if timed < 2 or not self.s.dist.any(elapsed >= PLAN_SHARE * self.s.cfg.max_minutes * 60):
            return False
        self._plan(step, statistics.mean(step_ms[1:]) / 1000, elapsed, evaluations_counted=False)
        self.planning, self.planned = False, True
        return True

    def plan_again(self, step: int) -> None:
        """At a checkpoint: plan from the slower of the whole run's pace and the last stretch's (a machine that
        slows down late would otherwise stop the run by the clock short of the schedule's end)."""
        now = time.perf_counter()
        since_start = (now - self.t_loop) / (step - self.s.start)
        since_last = (now - self.last_plan[0]) / max(1, step - self.last_plan[1])
        self._plan(step, max(since_start, since_last), now - self.t_loop, evaluations_counted=True)

    def _plan(self, step: int, step_s: float, elapsed_s: float, evaluations_counted: bool) -> None:
        s, cfg, dist = self.s, self.s.cfg, self.s.dist
        step_s, elapsed_s = (x / dist.world_size for x in dist.sum([step_s, elapsed_s]))  # one plan for all
        eval_s = cfg.eval_batches * FORWARD_SHARE * step_s  # each evaluation, and the checkpoint after it
        per_step = step_s if evaluations_counted else step_s + eval_s / cfg.eval_interval
        remaining = PLAN_MARGIN * (cfg.max_minutes * 60 - elapsed_s) - eval_s  # the last evaluation included
        first = cfg.time_plan is None
        asked = cfg.max_steps if first else cfg.time_plan["max_steps_asked"] or UNTIL_TIME_RUNS_OUT
        planned = min(asked, step + max(1, int(remaining / per_step)))
        cfg.time_plan = {"minutes": cfg.max_minutes, "ms_per_step": round(per_step * 1000, 2),
                         "planned_at_step": step, "max_steps_asked": None if asked >= UNTIL_TIME_RUNS_OUT else asked}
        cfg.max_steps = planned
        if not s.decay_given:
            cfg.lr_decay_steps = max(planned - 1, 1)
            cfg.warmup_steps = min(cfg.warmup_steps, planned // 10)  # a short run still spends most of it decaying
        if dist.is_main:
            saved = read_json(s.run_dir / "config.json")
            saved["train"] = asdict(cfg)
            atomic_write_json(s.run_dir / "config.json", saved)
        self.last_plan = (time.perf_counter(), step)
        if first:
            s.say(f"genlab: {step_s * 1000:.1f} ms/step measured: {planned} steps fit in --max-minutes "
                  f"{cfg.max_minutes}; the learning-rate schedule ends there")


class _StopSignal:
    received: int | None = None


@contextmanager
def _stop_signals():
    """While training: the first SIGINT (Ctrl-C) or SIGTERM lets the step finish and a checkpoint be written; a
    second one stops at once, as usual. Only the main thread can take signals; elsewhere nothing changes."""
    flag = _StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def note(signum, frame):
        flag.received = signum
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # the next one acts as it always did

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ddp_wrapper(device: torch.device):
    from torch.nn.parallel import DistributedDataParallel

    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    return wrap


def _gather_rng(dist: Distributed) -> dict:
    """RNG streams to save: this process's, or under DDP every rank's (gathered to all, written by rank 0)."""
    if not dist.enabled:
        return rng_states()
    return {f"rank{r}": s for r, s in enumerate(dist.gather(rng_states()))}


def _restore_rng(saved: dict, dist: Distributed, seed: int, step: int) -> None:
    if not dist.enabled and "torch" in saved:
        set_rng_states(saved)
    elif f"rank{dist.rank}" in saved and "rank1" in saved:  # the same DDP layout as when it was saved
        set_rng_states(saved[f"rank{dist.rank}"])
    else:  # a different number of processes: fresh streams, still derived from the seed and the step
        torch.manual_seed(rank_seed(seed + step, dist.rank))


def _metrics_logger(f):
    def log(row: dict) -> None:
        if f is not None:
            f.write(json.dumps(row) + "\n")
            f.flush()

    return log


def _resume_config(run_dir: Path, overrides: dict) -> tuple[TrainConfig, dict, int]:
    """The settings a run was started with; only how long it runs may change on resume.

    config.json is checked as a config file is: a key this genlab does not know, a value of the wrong type or
    a missing table is one line naming the file, never a TypeError."""

    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise GenlabError(f"{run_dir} is not a genlab run directory (no config.json); check the path")
    saved = read_json(config_path)
    if isinstance(saved, dict) and "imported_from" in saved and not (run_dir / "trainer_state.json").exists():
        raise GenlabError(f"{run_dir} was imported from {saved['imported_from']}: it holds weights but no optimizer "
                          "state or data position, so there is no training to resume; sample or evaluate it")
    read_trainer_state(run_dir)
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise GenlabError(f"{config_path} has no table of model settings under \"model\"; restore the file from "
                          "a copy, or start a new run")
    cfg = saved_train_config(saved.get("train"), config_path, saved.get("genlab_version"))
    try:
        family = get_family(cfg.family)
        cfg.model = check_types(family.config_class, cfg.model)
        family.saved_config(saved["model"])  # refuses unknown keys and wrong types before any data is read
    except GenlabError as e:
        raise GenlabError(f"{config_path}: {e}") from None
    allowed = {"max_steps", "max_minutes", "eval_interval", "log_interval", "device"}
    for key, value in overrides.items():
        if key == "precision" and value == "auto":
            continue  # auto was settled when the run began; config.json holds what it chose
        if key == "block_size" and value > saved["model"].get("block_size", value):
            raise GenlabError(
                f"--block-size {value} is over the {saved['model']['block_size']} this run was trained with; "
                "a trained model cannot see further back than its position embedding"
            )
        if key not in allowed and value != getattr(cfg, key, saved["model"].get(key)):
            raise GenlabError(
                f"--{key.replace('_', '-')} cannot change when resuming; resume may change only "
                f"{', '.join('--' + a.replace('_', '-') for a in sorted(allowed))}"
            )
        if key in allowed:
            setattr(cfg, key, value)
    distributed = saved.get("distributed")
    return cfg, saved["model"], distributed.get("world_size", 1) if isinstance(distributed, dict) else 1


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from, so the log reads as one run."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _progress(start: int, total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=quiet, unit="step", dynamic_ncols=True, file=sys.stderr,
                mininterval=0.5)


def _version() -> str:
    from genlab import __version__

    return __version__


