"""Frozen lower layers computed once per function: a teacher fine-tuning only its top layers pays for the rest once.

With ``trainable_layers: k`` the embeddings and all but the top ``k`` encoder layers never change, so their output
for a function is the same every time it is encoded: in every epoch, and in every batch of functions that holds it
(a function of BigCloneBench's labelled half is encoded about five times an epoch). :class:`FrozenLayerCache` keeps
that output per function (keyed by its token ids) and runs only the top ``k`` layers on it, in the encoder's own
layer modules with the mask the encoder itself would build. Frozen layers run in eval mode (no dropout), so the
cached states are exactly the saved model's. Held in memory (fp32: a 128-token function of a 384-wide encoder is
192 KB), never saved: a resumed fit fills it again, to the same values.
"""

from __future__ import annotations

import torch
from transformers.masking_utils import create_bidirectional_mask

from lit_compressor.core.errors import UserError


class FrozenLayerCache:
    """The output of an encoder's frozen bottom (embeddings and the layers below the top ``trainable``) per
    function, and the top layers run on it."""

    def __init__(self, encoder: torch.nn.Module, trainable: int):
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        if layers is None or not 0 < trainable < len(layers):
            raise UserError("cache_frozen needs a BERT-like encoder (`encoder.layer`) and trainable_layers between 1 "
                            f"and {len(layers) - 1 if layers is not None else 'its layer count - 1'}.",
                            "model.init_args.cache_frozen", "Set trainable_layers, or remove cache_frozen.")
        self.encoder, self.frozen = encoder, len(layers) - trainable
        self.top = list(layers)[self.frozen:]
        self.states: dict[bytes, torch.Tensor] = {}
        self.computed = 0
        """Functions whose frozen states were computed (each once)."""

    def __len__(self) -> int:
        return len(self.states)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[N, L]`` token ids and mask -> ``[N, L, H]``: the encoder's last hidden states, the frozen part read
        from the cache (computed for the functions not in it yet)."""
        lengths = attention_mask.sum(-1).tolist()
        keys = [input_ids[i, :length].numpy().tobytes() for i, length in enumerate(lengths)]
        missing = list({key: i for i, key in enumerate(keys) if key not in self.states}.values())
        if missing:
            self._compute(input_ids[missing], attention_mask[missing], [keys[i] for i in missing])
        hidden = torch.zeros(*input_ids.shape, self.encoder.config.hidden_size)
        for i, key in enumerate(keys):
            state = self.states[key]
            hidden[i, : len(state)] = state
        mask = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)
        for layer in self.top:
            output = layer(hidden, mask)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden

    def _compute(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keys: list[bytes]) -> None:
        """The frozen bottom's output for these functions, one at a time at its own length (so a value never
        depends on the batch it was first seen in), in eval mode."""
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                for row, key in enumerate(keys):
                    length = int(attention_mask[row].sum())
                    output = self.encoder(input_ids=input_ids[row: row + 1, :length],
                                          attention_mask=attention_mask[row: row + 1, :length],
                                          output_hidden_states=True)
                    self.states[key] = output.hidden_states[self.frozen][0].clone()
                    self.computed += 1
        finally:
            self.encoder.train(was_training)
