"""GraphCodeBERT's model inputs: code sub-words, data-flow nodes, position ids and graph-guided mask.

One function becomes ``<s> code </s> node node ... <pad> ...``: code sub-words get position ids from
2 (RoBERTa's ``padding_idx + 1``) on, data-flow nodes 0 and padding 1, so the model can tell them
apart. Nodes enter as ``<unk>``; the model replaces their embeddings with the mean of their tokens'.

:class:`LayoutRules` holds the details in which input builders differ: GraphCodeBERT's (the default,
used by our teachers) and the Compressor research code's, whose released students were trained on it
(see ``docs/compressor-import.md``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from lit_compressor.data.readers import Example, normalize_whitespace
from lit_compressor.graphcodebert.dataflow import (
    DataFlowGraph,
    code_hash,
    extract_dataflow,
    precompute_dataflow,
)

NODE_POSITION = 0
PAD_POSITION = 1
FIRST_TOKEN_POSITION = 2


@dataclass(frozen=True)
class LayoutRules:
    """Where input builders differ, with GraphCodeBERT's choices as defaults.

    - ``extra_reserved``: positions kept free beyond ``<s>``, ``</s>`` and the nodes when the code is
      truncated (Compressor's clone-detection code keeps one more).
    - ``keep_cut_nodes``: keep the nodes whose token was truncated (as ``<unk>`` aligned to no code
      sub-word, their embedding zero) instead of dropping them; a node aligns to its token only when
      all of the token's sub-words were kept (Compressor's code).
    - ``node_self_attention``: a node attends to itself (ours) or only to its sub-words and sources.
    - ``collapse_whitespace``: parse the whitespace-collapsed text (Compressor's vulnerability code),
      so a ``//`` comment runs to the end of the function.
    - ``tokens_alone``: BPE-encode each code token on its own (Compressor's code, whose tokenizer adds
      the leading space itself) instead of GraphCodeBERT's ``"@ " + token`` trick, which splits
      differently when ``"Ġ@"`` is not in the vocabulary.
    """

    extra_reserved: int = 0
    keep_cut_nodes: bool = False
    node_self_attention: bool = True
    collapse_whitespace: bool = False
    tokens_alone: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> LayoutRules:
        return cls(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})


GRAPHCODEBERT = LayoutRules()
COMPRESSOR_CLONE = LayoutRules(extra_reserved=1, keep_cut_nodes=True, node_self_attention=False, tokens_alone=True)
COMPRESSOR_VULNERABILITY = LayoutRules(keep_cut_nodes=True, node_self_attention=False, collapse_whitespace=True,
                                       tokens_alone=True)


@dataclass(frozen=True)
class GraphInput:
    """One function's sequence before padding: ``num_code`` code positions, then one per node."""

    input_ids: list[int]
    position_ids: list[int]
    num_code: int
    node_spans: list[tuple[int, int]]  # node -> its code sub-words [start, end) in the sequence
    node_edges: list[list[int]]  # node -> the nodes it comes from / is computed from

    def __len__(self) -> int:
        return len(self.input_ids)


_UNPADDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def unpadded_backend(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """The fast tokenizer's Rust backend without the padding and truncation its ``tokenizer.json`` may set
    (the MiniLM's pads every encoding to 128 ids), which the Python wrapper overrides but the backend
    applies."""
    backend = tokenizer.backend_tokenizer
    if backend.padding is None and backend.truncation is None:
        return backend
    plain = _UNPADDED.get(tokenizer)
    if plain is None:
        plain = _UNPADDED[tokenizer] = Tokenizer.from_str(backend.to_str())
        plain.no_padding()
        plain.no_truncation()
    return plain


def encode_pieces(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """Sub-word ids of each text, no special tokens, no padding."""
    if tokenizer.is_fast:  # the Rust tokenizer directly: the Python wrapper costs more than the BPE
        return [e.ids for e in unpadded_backend(tokenizer).encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def subword_ids(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str], alone: bool = False) -> list[list[int]]:
    """Sub-word ids of each code token, every token but the first read as if after a space (GraphCodeBERT),
    or each token encoded on its own (``alone``)."""
    if not tokens:
        return []
    if alone:
        return encode_pieces(tokenizer, list(tokens))
    # "@ tok" -> ["@", "Ġtok", ...]: the "@" is split off by the pre-tokenizer and dropped.
    ids = encode_pieces(tokenizer, [tokens[0]] + ["@ " + token for token in tokens[1:]])
    return [ids[0]] + [row[1:] for row in ids[1:]]


def build_graph_input(graph: DataFlowGraph, tokenizer: PreTrainedTokenizerBase, code_length: int,
                      flow_length: int, max_code_positions: int = 512,
                      rules: LayoutRules = GRAPHCODEBERT) -> GraphInput:
    """Lay out one function in at most ``code_length + flow_length`` positions.

    Code gets what the nodes (at most ``flow_length``) leave free, and at most ``max_code_positions``
    (specials included) so its position ids fit RoBERTa's 514-row table. Nodes whose token was cut off
    are dropped (or kept unaligned, see :class:`LayoutRules`); edges to dropped nodes too.
    """
    pieces = subword_ids(tokenizer, graph.tokens, rules.tokens_alone)
    block = code_length + flow_length
    reserved = 2 + rules.extra_reserved
    code_room = min(block - reserved - min(len(graph.nodes), flow_length), max_code_positions - reserved)
    spans: list[tuple[int, int]] = []  # per code token, in the sequence (after <s>)
    ids: list[int] = []
    for piece in pieces:
        take = piece[: max(code_room - len(ids), 0)]
        whole = len(take) == len(piece) or not rules.keep_cut_nodes
        start = 1 + len(ids)
        spans.append((start, start + len(take)) if whole else (start, start))
        ids += take
    input_ids = [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
    num_code = len(input_ids)

    kept = list(graph.nodes) if rules.keep_cut_nodes else [
        node for node in graph.nodes if spans[node.token][1] > spans[node.token][0]]
    kept = kept[: block - num_code]
    node_of_token: dict[int, list[int]] = {}
    for i, node in enumerate(kept):
        node_of_token.setdefault(node.token, []).append(i)
    edges = [sorted({j for source in node.sources for j in node_of_token.get(source, ())}) for node in kept]
    return GraphInput(
        input_ids=input_ids + [tokenizer.unk_token_id] * len(kept),
        position_ids=[FIRST_TOKEN_POSITION + i for i in range(num_code)] + [NODE_POSITION] * len(kept),
        num_code=num_code,
        node_spans=[spans[node.token] for node in kept],
        node_edges=edges,
    )


def graph_attention_mask(item: GraphInput, length: int, node_self_attention: bool = True) -> torch.Tensor:
    """``[length, length]`` bool mask, True where row may attend to column.

    Code positions attend to each other; ``<s>`` and ``</s>`` also to every node (as in GraphCodeBERT);
    a node and its code sub-words attend to each other; a node attends to the nodes it comes from (and
    to itself with ``node_self_attention``). Padding attends to nothing and nothing attends to it.
    """
    mask = torch.zeros(length, length, dtype=torch.bool)
    code, total = item.num_code, len(item.input_ids)
    mask[:code, :code] = True
    mask[0, :total] = True
    mask[code - 1, :total] = True
    if total > code:
        nodes = torch.arange(code, total)
        spans = torch.tensor(item.node_spans).reshape(-1, 2)
        columns = torch.arange(length)
        aligned = (columns >= spans[:, :1]) & (columns < spans[:, 1:])  # [nodes, length]
        mask[code:total] |= aligned
        mask[:, code:total] |= aligned.T
        if node_self_attention:
            mask[nodes, nodes] = True
        rows = [code + i for i, sources in enumerate(item.node_edges) for _ in sources]
        sources = [code + j for node_sources in item.node_edges for j in node_sources]
        mask[rows, sources] = True
    return mask


class GraphCodeEncoder:
    """Examples -> GraphCodeBERT batches, a drop-in for :class:`~lit_compressor.nn.tokenization.CodeEncoder`.

    Returns ``input_ids`` and ``position_ids`` ``[B, n, L]``, ``attention_mask`` ``[B, n, L, L]`` (bool),
    ``labels`` (-1 for unlabelled) and ``ids``; ``L`` is the longest function of the batch. Graphs are
    extracted on first use; :meth:`prepare` extracts a whole split ahead, in parallel and cached on disk.
    ``rules`` picks GraphCodeBERT's layout details (default) or the Compressor research code's.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, code_length: int = 384, flow_length: int = 128,
                 language: str = "java", cache_dir: str | Path | None = None, workers: int = 1,
                 max_code_positions: int = 512, cache_size: int = 200_000, rules: LayoutRules = GRAPHCODEBERT):
        self.tokenizer = tokenizer
        self.rules = rules
        self.code_length, self.flow_length = code_length, flow_length
        self.language = language
        self.cache_dir, self.workers = cache_dir, workers
        self.max_code_positions = max_code_positions
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1
        self.cache_size = cache_size
        self._graphs: dict[str, DataFlowGraph] = {}
        self._inputs: dict[str, GraphInput] = {}

    @property
    def block_size(self) -> int:
        """Positions per function: code and data-flow nodes."""
        return self.code_length + self.flow_length

    def prepare(self, examples: Iterable[Example]) -> None:
        """Extract the graphs of every function of ``examples`` now (``workers`` processes, ``cache_dir``)."""
        codes = [self.source(code) for example in examples for code in example.codes]
        self._graphs.update(precompute_dataflow(codes, self.language, self.cache_dir, self.workers))

    def add_graphs(self, graphs: Mapping[str, DataFlowGraph]) -> None:
        """Graphs extracted elsewhere, keyed like :func:`precompute_dataflow` keys them (of :meth:`source` texts)."""
        self._graphs.update(graphs)

    def source(self, code: str) -> str:
        """The text that is parsed: the code itself, or its whitespace-collapsed form (see ``rules``)."""
        return normalize_whitespace(code) if self.rules.collapse_whitespace else code

    def graph(self, code: str) -> DataFlowGraph:
        code = self.source(code)
        key = code_hash(code, self.language)
        graph = self._graphs.get(key)
        if graph is None:
            graph = extract_dataflow(code, self.language)
            if len(self._graphs) < self.cache_size:
                self._graphs[key] = graph
        return graph

    def encode(self, code: str) -> GraphInput:
        item = self._inputs.get(code)
        if item is None:
            item = build_graph_input(self.graph(code), self.tokenizer, self.code_length, self.flow_length,
                                     self.max_code_positions, self.rules)
            if len(self._inputs) < self.cache_size:
                self._inputs[code] = item
        return item

    def encode_codes(self, rows: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Rows of one or two functions each -> padded tensors."""
        encoded = [[self.encode(code) for code in row] for row in rows]
        length = max(len(item.input_ids) for row in encoded for item in row)
        shape = (len(rows), len(rows[0]), length)
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        position_ids = torch.full(shape, PAD_POSITION, dtype=torch.long)
        attention_mask = torch.zeros(*shape, length, dtype=torch.bool)
        for i, row in enumerate(encoded):
            for j, item in enumerate(row):
                input_ids[i, j, : len(item.input_ids)] = torch.tensor(item.input_ids)
                position_ids[i, j, : len(item.position_ids)] = torch.tensor(item.position_ids)
                attention_mask[i, j] = graph_attention_mask(item, length, self.rules.node_self_attention)
        return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": attention_mask}

    def __call__(self, examples: Sequence[Example]) -> dict:
        batch = self.encode_codes([example.codes for example in examples])
        labels = [-1 if example.label is None else example.label for example in examples]
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        batch["ids"] = [example.id for example in examples]
        return batch
