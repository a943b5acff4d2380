"""Turning code into model inputs: whitespace normalisation, truncation to a block, padding.

Also trains byte-level BPE tokenizers: the student's (Compressor's: lower-cased, ``<s> <pad> </s> <unk>``
as ids 0-3) with exactly the vocabulary size the search chose, and, with the same trainer, ``benchmark``'s
CodeBERT-vocabulary proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from lit_compressor.core.errors import UserError
from lit_compressor.core.files import atomic_path
from lit_compressor.core.fingerprint import hash_texts
from lit_compressor.data.readers import Example, normalize_whitespace

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")


class CodeEncoder:
    """Examples -> ``input_ids``/``attention_mask`` of shape ``[B, n_functions, L]``.

    Each function is whitespace-normalised, truncated to ``block_size`` tokens (special tokens
    included) and padded only to the longest function of the batch. Encoded functions are memoised:
    BigCloneBench reuses each function in many pairs.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, block_size: int = 400, cache_size: int = 200_000):
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.cache_size = cache_size
        self._cache: dict[str, list[int]] = {}

    def encode(self, code: str) -> list[int]:
        ids = self._cache.get(code)
        if ids is None:
            ids = self.tokenizer(normalize_whitespace(code), truncation=True, max_length=self.block_size)["input_ids"]
            if len(self._cache) < self.cache_size:
                self._cache[code] = ids
        return ids

    def encode_codes(self, rows: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Rows of one or two functions each -> padded tensors."""
        encoded = [[self.encode(code) for code in row] for row in rows]
        length = max(len(ids) for row in encoded for ids in row)
        input_ids = torch.full((len(rows), len(rows[0]), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for i, row in enumerate(encoded):
            for j, ids in enumerate(row):
                input_ids[i, j, : len(ids)] = torch.tensor(ids)
                attention_mask[i, j, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def __call__(self, examples: Sequence[Example]) -> dict:
        batch = self.encode_codes([example.codes for example in examples])
        batch["labels"] = torch.tensor([-1 if e.label is None else e.label for e in examples], dtype=torch.long)
        batch["ids"] = [example.id for example in examples]
        return batch


def wrap_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """A ``transformers`` tokenizer around a trained student BPE ``Tokenizer``."""
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", cls_token="<s>", sep_token="</s>",
                                   model_max_length=10**6)


def corpus_fingerprint(texts: Iterable[str]) -> str:
    """The hash of a corpus as a tokenizer reads it (whitespace-normalised)."""
    return hash_texts(normalize_whitespace(text) for text in texts)


def train_student_tokenizer(texts: Sequence[str], vocab_size: int, cache_dir: str | Path | None = None,
                            lowercase: bool = True, exact_size: bool = True) -> PreTrainedTokenizerFast:
    """Train (or reuse from ``cache_dir``) a byte-level BPE tokenizer of ``vocab_size`` tokens, ``<s> <pad> </s>
    <unk>`` as ids 0-3, trained on the whitespace-normalised ``texts``: the project's one BPE trainer.

    The student's (the defaults): lower-cased, with exactly ``vocab_size`` tokens (a corpus that yields fewer is
    an error). ``exact_size=False`` keeps what the corpus yields, up to ``vocab_size``: ``benchmark``'s
    CodeBERT-vocabulary proxy (not lower-cased, up to 50,265) and the largest vocabulary a corpus allows. A
    cached tokenizer is reused only for the same corpus, size and casing.
    """
    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise UserError(f"a byte-level BPE vocabulary needs at least {minimum} tokens, got {vocab_size}.",
                        fix="Raise vocab_size in the architecture or the search space.")
    cache_file = None
    if cache_dir is not None:
        key = f"{corpus_fingerprint(texts)}-v{vocab_size}{'-lower' if lowercase else ''}"
        cache_file = Path(cache_dir) / key / "tokenizer.json"
    if cache_file is not None and cache_file.is_file():
        tokenizer = Tokenizer.from_file(str(cache_file))
    else:
        tokenizer = _train_bpe(texts, vocab_size, lowercase)
        if cache_file is not None:
            with atomic_path(cache_file) as tmp:
                tokenizer.save(str(tmp))
    if exact_size and tokenizer.get_vocab_size() != vocab_size:
        raise UserError(
            f"the corpus of {len(texts)} functions yields only {tokenizer.get_vocab_size()} BPE tokens, "
            f"fewer than vocab_size {vocab_size}.", fix="Use more unlabelled code or a smaller vocab_size.")
    return wrap_tokenizer(tokenizer)


def _train_bpe(texts: Sequence[str], vocab_size: int, lowercase: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator((normalize_whitespace(t) for t in texts), trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tokenizer
