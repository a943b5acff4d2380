"""Checkpoints: loading them safely, and resuming a killed ``fit`` exactly where it stopped.

:func:`load_checkpoint_state` is the one place a ``.ckpt``/``.pt``/``.bin`` file is read: always with
``torch.load(weights_only=True)``, so a file whose unpickling would run code is refused with a
:class:`UserError` instead of being executed.

:class:`ExactResume` (a callback; add it to ``trainer.callbacks``) makes ``fit --ckpt_path last``
after a crash or a SIGKILL end with the same weights and metrics as an uninterrupted run:

- the data module's training loader (torchdata's ``StatefulDataLoader``) draws each epoch's order from a
  generator of its own, seeded with the run's seed, not from the global one (whose state a restart loses);
- a checkpoint records the loader's state (the epoch's generator state and the batches served), and a
  resumed run continues from there (Lightning restores the step counters but, for a plain ``DataLoader``,
  restarts the epoch's data from its first batch);
- the random generators (Python, NumPy, torch) are saved in the checkpoint and restored before the
  first resumed step, so dropout draws the same masks.

Single process only (CPU or one GPU), with a :class:`~lit_compressor.training.datamodule.CodeDataModule`;
under DDP Lightning's ``DistributedSampler`` is already seeded by epoch, and the callback leaves the loaders
alone.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torchdata.stateful_dataloader import StatefulDataLoader

from lit_compressor.core.errors import UserError
from lit_compressor.training.datamodule import CodeDataModule


def load_checkpoint_state(path: str | Path, key: str | None = "state_dict") -> Any:
    """``torch.load(path, weights_only=True)[key]`` (the whole object when ``key`` is None).

    Raises ``UserError`` for a missing file, a file that is not a torch checkpoint, and a checkpoint
    that holds Python objects other than tensors and plain containers (their unpickling could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("checkpoint file not found.", path, "Check the checkpoint path.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"refused to load the checkpoint: it holds Python objects other than tensors, whose "
                        f"unpickling could run code ({first}).", path,
                        "Only load checkpoints you trust; convert trusted ones to safetensors.") from None
    except Exception as error:  # truncated, not a torch file: torch raises many kinds
        raise UserError(f"not a readable torch checkpoint ({type(error).__name__}: {error}).", path,
                        "The file may be truncated; use an earlier checkpoint.") from None
    if key is None:
        return checkpoint
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UserError(f"the checkpoint has no {key!r} entry (found: {found}).", path)
    return checkpoint[key]


def random_state() -> dict[str, Any]:
    """The Python, NumPy and torch random generators' states, as tensors and plain values only."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(), "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ExactResume(Callback):
    """Makes a resumed ``fit`` bit-identical to an uninterrupted one (see the module docstring).

    ``seed`` seeds the training order; by default the seed given to ``seed_everything``.
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._pending: dict[str, Any] | None = None
        self._trainer = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer
        datamodule = trainer.datamodule
        if stage != "fit" or trainer.world_size > 1 or datamodule is None:
            return
        if not isinstance(datamodule, CodeDataModule):
            raise UserError(f"ExactResume needs a lit-compressor data module, got {type(datamodule).__name__}.",
                            "trainer.callbacks", "Use CodeDataModule (or a subclass), or remove ExactResume.")
        datamodule.order_seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

    def state_dict(self) -> dict[str, Any]:
        return {"random": random_state(), "loader": self._loader_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning restores a stateful loader only when it builds the loader after the restore; a model whose
        # optimiser needs ``estimated_stepping_batches`` builds it, and its iterator, before
        # (Lightning-AI/pytorch-lightning#20550): restore it here and make the epoch's iterator again.
        if self._pending is None:
            return
        loader = trainer.train_dataloader
        if isinstance(loader, StatefulDataLoader) and self._pending.get("loader"):
            loader.load_state_dict(self._pending["loader"])
            iter(trainer.fit_loop._data_fetcher)
        if self._pending.get("random") is not None:
            set_random_state(self._pending["random"])
        self._pending = None

    def _loader_state(self) -> dict[str, Any]:
        loader = self._trainer.train_dataloader if self._trainer is not None else None
        return loader.state_dict() if isinstance(loader, StatefulDataLoader) else {}
