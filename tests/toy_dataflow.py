"""A hand-written data-flow graph and a word-level tokenizer for it: layout tests with ids one can count."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers

from lit_compressor.graphcodebert.dataflow import COMES_FROM, COMPUTED_FROM, DataFlowGraph, FlowNode
from lit_compressor.nn.tokenization import wrap_tokenizer

# x = a_b ; y = x   (a_b splits into three sub-words: a _ b)
TOY = DataFlowGraph(("x", "=", "a_b", ";", "y", "=", "x"), (
    FlowNode("x", 0, COMPUTED_FROM, (2,)),
    FlowNode("a_b", 2, COMES_FROM),
    FlowNode("y", 4, COMPUTED_FROM, (6,)),
    FlowNode("x", 6, COMES_FROM, (0,)),
))


def word_level_tokenizer(words: list[str]):
    """A tokenizer whose ids are the positions of ``words``; ``_`` is a sub-word of its own."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("_", "isolated")])
    return wrap_tokenizer(tokenizer)
