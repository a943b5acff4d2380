"""GraphCodeBERT teachers: data-flow extraction, inputs and the classifier.

Imports are lazy so that extraction worker processes load tree-sitter only, not torch.
"""

from __future__ import annotations

__all__ = [
    "DataFlowGraph", "FlowNode", "GraphCodeBERTClassifier", "GraphCodeEncoder",
    "build_graphcodebert_classifier", "extract_dataflow", "precompute_dataflow",
]

_MODULES = {
    "DataFlowGraph": "dataflow", "FlowNode": "dataflow", "extract_dataflow": "dataflow",
    "precompute_dataflow": "dataflow", "GraphCodeEncoder": "inputs",
    "GraphCodeBERTClassifier": "model", "build_graphcodebert_classifier": "model",
}


def __getattr__(name: str):
    if name in _MODULES:
        from importlib import import_module

        return getattr(import_module(f"lit_compressor.graphcodebert.{_MODULES[name]}"), name)
    raise AttributeError(name)
