"""Checkpoints that a ``kill -9`` cannot corrupt, and everything needed to resume exactly.

The work folder of an adapter being trained (``LADDER_HOME/adapters/.work/<name>/``) holds
``run.json`` (what is being trained: base, data, config, run id) and ``checkpoints/step-N/``:

- ``trainable.safetensors``: the LoRA weights (the only parameters that change),
- ``best.safetensors``: the weights at the best val loss so far, when there is one,
- ``optimizer.pt`` and ``scheduler.pt``: AdamW moments and the schedule's position,
- ``rng.pt`` (torch CPU/CUDA generators: LoRA dropout; with several processes every process's,
  under ``ranks``) and ``state.json`` (step, epoch, next micro-batch, the loss series, tokens
  seen, elapsed time; Python's ``random`` state too).

A checkpoint is written into a temporary folder and renamed into place, then ``latest`` is
replaced atomically, so a crash at any moment leaves the previous checkpoint intact. Given
the same seed, resuming from step N and training on gives the same weights as never stopping:
the data order of each epoch is a function of (seed, epoch), and every random state is restored.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

KEEP = 2  # checkpoints kept; older ones are deleted once a newer one is in place


@dataclass
class LoopState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    next_group: int = 0  # index of the next accumulation group (of micro-batches) in the epoch
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    best_val: float | None = None
    best_step: int | None = None
    tokens_seen: int = 0
    elapsed_s: float = 0.0  # in optimizer steps (what tokens/s is measured over)
    loop_wall_s: float = 0.0  # in the loop: steps, evaluations, checkpoints, across resumes
    verdict: str | None = None
    message: str | None = None
    python_random: Any = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        state = cls(**data)
        state.val_losses = [(int(s), float(v)) for s, v in state.val_losses]
        return state


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().to("cpu", copy=True).contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [name for name, p in params.items() if p.requires_grad and name not in tensors]
    if missing:
        raise RuntimeError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {missing[0]}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _step_of(folder: Path) -> int:
    return int(folder.name.split("-", 1)[1])


def rng_state() -> dict[str, Any]:
    """This process's torch generators (CPU, and CUDA where there is one)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def save_checkpoint(
    work: Path,
    state: LoopState,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    best: dict[str, torch.Tensor] | None,
    rank_rngs: list[dict[str, Any]] | None = None,
) -> Path:
    """Written by the main process; ``rank_rngs``: every process's ``rng_state()`` (several)."""
    from safetensors.torch import save_file

    root = work / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step}"
    tmp = root / f".tmp-step-{state.step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if best is not None:
        save_file(best, str(tmp / "best.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = rng_state()
    if rank_rngs is not None and len(rank_rngs) > 1:
        rng["ranks"] = rank_rngs
    torch.save(rng, tmp / "rng.pt")
    state.python_random = random.getstate()
    (tmp / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    for path in tmp.iterdir():  # on disk before the rename makes the checkpoint visible
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _replace_text(root / "latest", final.name)
    for old in sorted(complete_checkpoints(work), key=_step_of)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(work: Path) -> list[Path]:
    root = work / "checkpoints"
    if not root.is_dir():
        return []
    return [p for p in root.glob("step-*") if (p / "state.json").is_file()]


def latest_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint (``latest`` if it points at one, else the highest step)."""
    root = work / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        named = root / pointer.read_text(encoding="utf-8").strip()
        if (named / "state.json").is_file():
            return named
    found = complete_checkpoints(work)
    return max(found, key=_step_of) if found else None


@dataclass
class Restored:
    state: LoopState
    best: dict[str, torch.Tensor] | None


def restore_checkpoint(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, device: str, rank: int = 0
) -> Restored:
    """Load weights, optimizer, scheduler and RNG states; return the loop state to continue from.

    Process ``rank`` takes its own generators from a checkpoint of a multi-process run; one that
    the checkpoint has none for (a run resumed with more processes) keeps the state it has."""
    from safetensors.torch import load_file

    load_trainable(model, load_file(str(folder / "trainable.safetensors")))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    rng = torch.load(folder / "rng.pt", weights_only=True)
    ranks = rng.get("ranks") or [rng]
    if rank < len(ranks):
        own = ranks[rank]
        torch.set_rng_state(own["torch"])
        if "cuda" in own and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own["cuda"])
    state = LoopState.from_dict(json.loads((folder / "state.json").read_text(encoding="utf-8")))
    if state.python_random is not None:
        version, internal, gauss = state.python_random
        random.setstate((version, tuple(internal), gauss))
    best_file = folder / "best.safetensors"
    best = load_file(str(best_file)) if best_file.is_file() else None
    return Restored(state, best)
