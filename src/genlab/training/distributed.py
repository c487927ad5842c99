"""Training past one process: PyTorch's own torchrun and DistributedDataParallel, nothing home-made.

`genlab train ... --nproc-per-node N` re-runs the same command under `torch.distributed.run`
(torchrun); a user may also run `torchrun ... -m genlab train ...` directly. Each process reads
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), joins the process group
(gloo on CPU, nccl on CUDA) and trains on its own shard of every global batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from genlab.errors import GenlabError
from genlab.runtime import env_int


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: tuple, per_rank: int) -> tuple:
        """This rank's rows of a global batch: rows [rank * per_rank, (rank + 1) * per_rank)."""
        if not self.enabled:
            return batch
        lo = self.rank * per_rank
        return tuple(t[lo : lo + per_rank] for t in batch)

    def sum(self, values: list[float]) -> list[float]:
        """Sum numbers over all ranks (evaluation is reduced across ranks)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device_for_collectives())
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any: keeps decisions such as stopping in lockstep."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device_for_collectives())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj):
        """Every rank's obj, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def device_for_collectives(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def close(self, finished: bool = True) -> None:
        """Leave the process group. After a finished run every rank waits for the others first: a rank
        that tore down its connections while a peer was still in its last collective made that peer's
        gloo abort (SIGABRT). After an error there is no waiting, which could hang."""
        if self.enabled and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ)


def restart_count() -> int:
    """How many times torchrun restarted this worker group (--max-restarts): a restart resumes the run."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def init_distributed(device_name: str) -> Distributed:
    """Join torchrun's process group if there is one; one process trains alone otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # a peer that dies makes collectives fail after this long instead of hanging forever
        minutes = env_int("GENLAB_DIST_TIMEOUT_MIN", 10, "minutes to wait for a peer process", 10)
        timeout = timedelta(minutes=minutes)
        dist.init_process_group(backend, store=_store(rank, world, timeout), rank=rank, world_size=world,
                                timeout=timeout)
    return Distributed(rank=rank, world_size=world, local_rank=local_rank, backend=backend)


def _store(rank: int, world: int, timeout: timedelta) -> dist.Store:
    """torchrun's key-value store, under a prefix of its own for each restart.

    After `--max-restarts` restarted the workers, the agent's store still held the previous attempt's
    addresses, and the new ranks tried to connect to dead peers; a fresh prefix per attempt avoids that.
    """
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_hosts_it and rank == 0, timeout=timeout,
                          multi_tenant=not agent_hosts_it)
    return dist.PrefixStore(f"genlab/attempt{restart_count()}", store)


def rank_seed(seed: int, rank: int) -> int:
    """Each rank's own RNG seed (dropout, noise), derived from the run's seed."""
    return (seed * 1_000_003 + 7_919 * (rank + 1)) % (2**63)


def launch(argv: list[str], nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
           master_addr: str | None = None, master_port: int | None = None, max_restarts: int = 0) -> int:
    """Run `genlab <argv>` under torchrun with nproc_per_node processes per node; return its exit code."""
    if nproc_per_node < 1 or nnodes < 1:
        raise GenlabError("--nproc-per-node and --nnodes must be 1 or more")
    if not 0 <= node_rank < nnodes:
        raise GenlabError(f"--node-rank must be in [0, {nnodes}), got {node_rank}")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}",
           f"--nnodes={nnodes}", f"--max-restarts={max_restarts}"]
    if nnodes == 1 and master_addr is None and master_port is None:
        cmd.append("--standalone")  # a free local port, no rendezvous set-up
    else:
        if master_addr is None:
            raise GenlabError("--nnodes > 1 needs --master-addr (the address of the node with --node-rank 0)")
        cmd += [f"--node-rank={node_rank}", f"--master-addr={master_addr}", f"--master-port={master_port or 29500}"]
    cmd += ["-m", "genlab", *argv]
    return subprocess.call(cmd)
