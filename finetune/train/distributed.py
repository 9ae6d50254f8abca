"""Training in more than one process: accelerate (DDP) underneath, one code path for all.

``setup(device)`` makes an ``accelerate.Accelerator`` and returns a ``Dist``: the process's
rank, the world size and the few collectives the loop needs. One process is the plain case
(no process group, no DDP wrapper: accelerate wraps a model in DDP only when there is more
than one process). N processes are N copies of the same command that find one another
through the torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), whoever started them: ``ladder finetune train --processes N`` (``launch``
below), ``torchrun --nproc-per-node N -m ui.cli.app finetune train ...`` or, on GPUs,
``accelerate launch --multi_gpu --num_processes N -m ui.cli.app finetune train ...``.
The backend is gloo on CPU and nccl on CUDA (accelerate's choice).

How a step is shared (``shard_group``): the examples of one optimizer step (its global
batch, ``batch_size * grad_accum`` examples) are dealt out to the processes, balanced by
token count, and each process cuts its share into micro-batches of at most ``batch_size``.
Every process knows the whole step (the order of an epoch is a function of the seed), so
each divides its summed loss by the step's GLOBAL target count; DDP averages gradients over
the processes, so the loss is multiplied by the world size first: the averaged gradient is
then the gradient of (sum of every target's loss) / (global targets), the same as one
process computes. The step's loss and token count are summed over the processes for
logging, so every process sees the same loss and takes the same decisions (monitor, early
stopping). Only the main process writes the run store, checkpoints and the adapter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Environment variables that say "this process is one of several" (torchrun and accelerate set
# the first; mpirun the others, which accelerate also understands).
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def _int_env(names: Sequence[str], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return default


def world_size_from_env() -> int:
    """How many processes this run has, as the launcher (if any) says."""
    return max(1, _int_env(WORLD_SIZE_VARS, 1))


def rank_from_env() -> int:
    return max(0, _int_env(RANK_VARS, 0))


def launched() -> bool:
    """True inside a process that a launcher started as one of several."""
    return world_size_from_env() > 1


def threads_per_process(threads: int, local_processes: int) -> int:
    """The ``threads`` setting shared out among the processes on this machine."""
    return max(1, threads // max(1, local_processes))


@dataclass
class Dist:
    """This process's place in the run, and the collectives the loop uses (no-ops alone)."""

    world_size: int = 1
    rank: int = 0
    local_world_size: int = 1
    accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def prepare(self, model: Any, optimizer: Any) -> tuple[Any, Any]:
        """The model to train through (DDP-wrapped with several processes) and its optimizer.

        Alone, accelerate wraps neither in anything that costs (no DDP, no autocast). The
        learning-rate scheduler is never handed to accelerate, which would step it once per
        process."""
        if self.accelerator is None:
            return model, optimizer
        wrapped, prepared = self.accelerator.prepare(model, optimizer)
        return wrapped, prepared

    def no_sync(self, model: Any) -> contextlib.AbstractContextManager[Any]:
        """Accumulate this micro-batch's gradient locally (no all-reduce until the last one)."""
        if not self.active:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(model)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (in float64, the same result everywhere)."""
        if not self.active:
            return [float(v) for v in values]
        import torch
        import torch.distributed as torch_dist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._device())
        torch_dist.all_reduce(tensor)
        return [float(v) for v in tensor.cpu()]

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (on every process)."""
        if not self.active:
            return [value]
        import torch.distributed as torch_dist

        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.active:
            self.accelerator.wait_for_everyone()

    def close(self) -> None:
        if self.active:
            import torch.distributed as torch_dist

            if torch_dist.is_initialized():
                torch_dist.destroy_process_group()

    def _device(self) -> Any:
        return self.accelerator.device if self.accelerator is not None else "cpu"


# One process trains through accelerate too (one code path); accelerate wraps nothing then.
# ``False`` skips accelerate entirely when alone: benchmarks/finetune.py measures both.
ACCELERATE_ALONE = True


def setup(device: str) -> tuple[Dist, str]:
    """The run's ``Dist`` and the device this process trains on (``cuda:<local rank>`` on GPUs)."""
    if not launched() and not ACCELERATE_ALONE:
        return Dist(), device
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=device == "cpu")
    dist = Dist(
        world_size=accelerator.num_processes,
        rank=accelerator.process_index,
        local_world_size=_int_env(("LOCAL_WORLD_SIZE",), accelerator.num_processes),
        accelerator=accelerator,
    )
    # accelerate names the CPU of a multi-process run "cpu:0", which torch.load cannot map to
    return dist, str(accelerator.device) if dist.active and device != "cpu" else device


def shard_group(
    group: Sequence[Sequence[int]], lengths: Sequence[int], batch_size: int, rank: int, world_size: int
) -> tuple[list[list[int]], bool]:
    """This process's micro-batches of one optimizer step, and whether it has any real work.

    Alone, the step's micro-batches as they are. Otherwise the step's examples are dealt out
    longest first, each to the process with the fewest tokens so far (ties: the lower rank),
    and each process keeps its examples in the step's order and cuts them into micro-batches of
    at most ``batch_size``. A process left with nothing (a step with fewer examples than
    processes) gets the step's first example to run with weight 0: under DDP every process must
    take part in the gradient all-reduce."""
    if world_size == 1:
        return [list(micro) for micro in group], True
    flat = [i for micro in group for i in micro]
    load = [0] * world_size
    owner: dict[int, int] = {}
    for position in sorted(range(len(flat)), key=lambda p: (-lengths[flat[p]], p)):
        target = min(range(world_size), key=lambda r: (load[r], r))
        owner[position] = target
        load[target] += lengths[flat[position]]
    mine = [flat[p] for p in range(len(flat)) if owner[p] == rank]
    if not mine:
        return [[flat[0]]], False
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)], True


# ---- launching ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(rank: int, world_size: int, port: int, threads: int | None = None) -> dict[str, str]:
    """The torchrun variables for one local process (one machine, loopback rendezvous)."""
    env = dict(os.environ)
    env.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    if sys.platform == "linux":  # gloo picks its address from the host name: keep it on loopback
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def launch(command: Sequence[str], processes: int, threads: int | None = None) -> int:
    """Run ``command`` as ``processes`` local processes of one run; wait for all of them.

    The exit status is the main process's, or the first failure's: when one process fails the
    others are stopped (they would wait for it in the next all-reduce). Ctrl-C reaches every
    process (one process group) and is waited out."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    port = free_port()
    children = [
        subprocess.Popen(list(command), env=worker_env(rank, processes, port, threads))
        for rank in range(processes)
    ]
    codes: dict[int, int] = {}
    first_failure: int | None = None
    try:
        while len(codes) < len(children):
            for rank, child in enumerate(children):
                if rank in codes:
                    continue
                try:
                    codes[rank] = child.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                if codes[rank] != 0 and first_failure is None:
                    first_failure = codes[rank]
                    _stop(children, codes)
    except KeyboardInterrupt:
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=30)
        _stop(children, codes)
        raise
    return first_failure if first_failure is not None else 0


def _stop(children: Sequence[subprocess.Popen[Any]], codes: dict[int, int]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for rank, child in enumerate(children):
        try:
            code = child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        codes.setdefault(rank, code)


def cli_command(argv: Sequence[str]) -> list[str]:
    """The command line that runs the CLI with ``argv`` in a fresh interpreter."""
    return [sys.executable, "-m", "ui.cli.app", *argv]
