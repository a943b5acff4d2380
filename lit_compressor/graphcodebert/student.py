"""Data-flow students: a distilled student that reads GraphCodeBERT's inputs, built on its own BPE tokenizer.

A student copies its teacher's inputs: the soft labels of a GraphCodeBERT teacher record ``inputs:
dataflow`` with its ``language`` and ``flow_length``; ``inputs: dataflow`` asks for them with any
teacher, ``inputs: plain`` for code sub-words only. A data-flow student reads what a GraphCodeBERT
teacher reads (:mod:`~lit_compressor.graphcodebert.inputs`, GraphCodeBERT's layout) through its own
BPE: ``<s>``, code sub-words, ``</s>``, then at most ``flow_length`` data-flow nodes, in ``block_size``
positions, with node positions and the graph-guided attention mask. Its BPE is trained on the text it
reads: each function's tree-sitter code tokens joined by spaces (each token is encoded as if after a
space). Its folder records ``kind: graphcodebert`` and the rest of :func:`graph_metadata`, so
``TinyClassifier``, ``export`` and ``benchmark`` build its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase

from lit_compressor.core.errors import UserError
from lit_compressor.data.readers import normalize_whitespace
from lit_compressor.graphcodebert.dataflow import DataFlowGraph, code_hash, precompute_dataflow
from lit_compressor.graphcodebert.folder import DEFAULT_FLOW_LENGTH, graph_metadata
from lit_compressor.graphcodebert.inputs import GRAPHCODEBERT, GraphCodeEncoder, LayoutRules
from lit_compressor.graphcodebert.model import GraphCodeBERTClassifier, as_graph_classifier
from lit_compressor.nn.student import build_student
from lit_compressor.search.architecture import INPUTS, StudentArchitecture

MIN_CODE_POSITIONS = 3  # <s>, one code sub-word, </s>


@dataclass
class DataFlow:
    """Settings of a data-flow student's inputs; ``None`` takes the teacher's."""

    language: Literal["java", "c"] | None = None
    """The parser: ``java`` (BigCloneBench) or ``c`` (Devign)."""
    flow_length: int | None = None
    """Positions of the block that data-flow nodes may take (the rest is code)."""
    cache_dir: str | None = None
    """Folder of the graph cache (one JSON file per set of functions); None: extract in memory."""
    workers: int = 1
    """Processes that extract the unlabelled split's graphs before training."""


@dataclass
class DataFlowInputs:
    """A data-flow student's inputs, resolved: the model it builds, its BPE corpus, its input builder, its folder."""

    language: str
    flow_length: int
    block_size: int
    cache_dir: str | None = None
    workers: int = 1
    rules: LayoutRules = GRAPHCODEBERT
    _graphs: dict[str, DataFlowGraph] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.flow_length <= self.block_size - MIN_CODE_POSITIONS:
            raise UserError(f"flow_length {self.flow_length} leaves no room for code in a block of {self.block_size} "
                            "positions.", "model.init_args.dataflow.flow_length",
                            f"Use a flow_length between 1 and {self.block_size - MIN_CODE_POSITIONS}, or a larger "
                            "block_size (code + flow positions).")

    @property
    def code_length(self) -> int:
        return self.block_size - self.flow_length

    def settings(self) -> dict[str, Any]:
        """What a checkpoint's hyper-parameters keep (``DataFlow``'s fields, resolved)."""
        return {"language": self.language, "flow_length": self.flow_length, "cache_dir": self.cache_dir,
                "workers": self.workers}

    def build(self, architecture: StudentArchitecture, num_inputs: int, family: str, max_positions: int,
              num_labels: int, dropout: float, pooling: str, pair_head: str) -> GraphCodeBERTClassifier:
        """The student of ``build_student`` (same parameters, so the search's price holds) fed data flow."""
        return as_graph_classifier(build_student(architecture, num_inputs, family, max_positions, num_labels,
                                                 dropout, pooling, pair_head))

    def graphs(self, codes: Sequence[str]) -> dict[str, DataFlowGraph]:
        """The graphs of ``codes`` (keyed by :func:`code_hash`), extracted once and kept for the input builder."""
        missing = [code for code in codes if code_hash(self._source(code), self.language) not in self._graphs]
        if missing:
            self._graphs.update(precompute_dataflow([self._source(code) for code in missing], self.language,
                                                    self.cache_dir, self.workers))
        return self._graphs

    def corpus(self, codes: Sequence[str]) -> list[str]:
        """The BPE training text of each function: its code tokens joined by spaces, as the student reads them."""
        graphs = self.graphs(codes)
        return [" ".join(graphs[code_hash(self._source(code), self.language)].tokens) for code in codes]

    def encoder(self, tokenizer: PreTrainedTokenizerBase) -> GraphCodeEncoder:
        """The batch builder (collate function), holding the graphs extracted so far."""
        encoder = GraphCodeEncoder(tokenizer, self.code_length, self.flow_length, self.language, self.cache_dir,
                                   self.workers, rules=self.rules)
        encoder.add_graphs(self._graphs)
        return encoder

    def metadata(self) -> dict[str, Any]:
        """The ``lit_compressor`` keys of the student's folder that make it a data-flow folder."""
        return {"inputs": "dataflow", **graph_metadata(self.language, self.code_length, self.flow_length, self.rules)}

    def _source(self, code: str) -> str:
        return normalize_whitespace(code) if self.rules.collapse_whitespace else code


def dataflow_inputs(inputs: str | None, settings: DataFlow | dict | None, teacher: dict[str, Any],
                    block_size: int) -> DataFlowInputs | None:
    """The student's data-flow inputs, or None for a plain student.

    ``inputs`` (None: the teacher's, recorded in its soft labels or folder; plain without one) says which;
    ``settings`` fields that are None take the teacher's ``language`` and ``flow_length``.
    """
    settings = DataFlow(**settings) if isinstance(settings, dict) else settings or DataFlow()
    kind = inputs or teacher.get("inputs") or "plain"
    if kind not in INPUTS:
        raise UserError(f"unknown inputs {kind!r}.", "model.init_args.inputs", f"Use one of {', '.join(INPUTS)}.")
    if kind == "plain":
        return None
    language = settings.language or teacher.get("language")
    if language is None:
        raise UserError("a data-flow student needs the language of the code it parses, and the teacher does not "
                        "say (it reads plain inputs).", "model.init_args.dataflow.language",
                        "Set dataflow: {language: java} (BigCloneBench) or {language: c} (Devign).")
    flow_length = int(settings.flow_length or teacher.get("flow_length") or DEFAULT_FLOW_LENGTH)
    return DataFlowInputs(str(language), flow_length, block_size, settings.cache_dir, settings.workers)
