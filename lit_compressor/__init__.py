"""lit-compressor: compress fine-tuned models of code into tiny models for IDEs.

Importing the package stays light (no Lightning, DEAP or W&B): plug-ins use :class:`TinyClassifier`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["TinyClassifier"]


def __getattr__(name: str):
    if name == "TinyClassifier":
        from lit_compressor.runtime.classifier import TinyClassifier

        return TinyClassifier
    raise AttributeError(name)
