"""Multi-process training: process-group set-up from torchrun's environment, reductions, a local launcher.

``torchrun --nproc_per_node=N -m lucid train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
``MASTER_ADDR``/``MASTER_PORT`` for every process; :func:`setup` reads them and joins the group
(gloo on CPU, NCCL on CUDA). ``lucid train --nproc N`` uses :func:`launch_local`, which starts N
processes on this machine with the same environment variables, so the two paths run the same code.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..core.errors import OptionError

__all__ = ["DistInfo", "all_min", "all_reduce_sum", "barrier", "broadcast_object", "cleanup", "gather_objects", "launch_local", "setup", "sync_buffers"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size and its rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    owns_group: bool = False  # whether :func:`setup` created the process group (and :func:`cleanup` may end it)

    @property
    def enabled(self) -> bool:
        """Whether this is a multi-process (DDP) run."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process is rank 0, the one that writes files and prints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise OptionError(f"environment variable {name} must be an int, got {value!r}") from None


def setup(device_kind: str) -> DistInfo:
    """Join the process group described by torchrun's environment variables (a no-op without them).

    ``device_kind`` is ``"cuda"`` (NCCL, one GPU per local rank) or anything else (gloo). Unless
    ``OMP_NUM_THREADS`` says otherwise, the cores are shared out between the processes of this node.
    A process group that already exists (set up by the caller) is used as it is.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
        dist.init_process_group(backend=backend)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return DistInfo(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0), local_world, owns_group)


def barrier(info: DistInfo) -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` created it (a caller's own group is left alone)."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``values`` over all processes (returned unchanged for a single process)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_min(value: int, info: DistInfo, device: torch.device) -> int:
    """The smallest ``value`` over all processes."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics).

    DDP broadcasts them at the start of each training forward pass, but every rank then updates its
    own copy from its own batch; evaluating with rank 0's copy everywhere evaluates the model that
    rank 0 saves.
    """
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(local_rank: int, nproc: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update({
        "RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
    })
    fn(*args)  # setup() shares the cores out between the processes


def launch_local(nproc: int, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` in ``nproc`` processes on this machine, as torchrun would (single node, loopback)."""
    if nproc < 1:
        raise OptionError(f"--nproc must be a positive int, got {nproc}")
    try:
        mp.start_processes(_entry, args=(nproc, _free_port(), fn, args), nprocs=nproc, join=True, start_method="spawn")
    except mp.ProcessRaisedException as e:
        # The child's traceback ends with the exception line; keep that, not the whole dump.
        last = [line for line in str(e).strip().splitlines() if line.strip()][-1]
        raise RuntimeError(f"a training process failed: {last}") from None
    except mp.ProcessExitedException as e:
        raise RuntimeError(f"a training process exited with code {e.exit_code}") from None
