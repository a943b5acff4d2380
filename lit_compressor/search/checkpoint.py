"""The generation checkpoint: population, history (the logbook's entries) and RNG state, as JSON.

Written atomically (:mod:`lit_compressor.core.files`), so a search killed at any instant leaves either the
previous or the new checkpoint, and resuming from it ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_write_text
from lit_compressor.search.ga import EvolutionState, logbook

CHECKPOINT_NAME = "checkpoint.json"


def save(path: Path, state: EvolutionState, settings: dict) -> None:
    version, internal, gauss = state.rng_state
    payload = {"settings": settings, "restart": state.restart, "generation": state.generation,
               "population": state.population, "rng_state": [version, list(internal), gauss],
               "finished": state.finished, "history": state.history, "tags": state.tags}
    atomic_write_text(path, json.dumps(payload))


def load(path: Path, settings: dict) -> EvolutionState | None:
    """The saved state, or None without a checkpoint; a checkpoint of other settings is an error."""
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"unreadable search checkpoint ({error}).", where=path,
                        fix="Delete it to start the search afresh.") from None
    if payload["settings"] != settings:
        changed = sorted(k for k in settings.keys() | payload["settings"].keys()
                         if settings.get(k) != payload["settings"].get(k))
        raise UserError(f"this search checkpoint was written with other settings ({', '.join(changed)}).",
                        where=path, fix="Use another --output, or delete the checkpoint to start afresh.")
    version, internal, gauss = payload["rng_state"]
    return EvolutionState(payload["restart"], payload["generation"], payload["population"],
                          (version, tuple(internal), gauss), logbook(payload["history"]), payload["finished"],
                          payload.get("tags", []))
