"""Clone search over a whole project: each function encoded once, the student's pair head on cached vectors.

``CloneModel`` embeds functions, ``CloneIndex`` holds and searches their vectors, ``scan_project``
extracts Java and C functions with tree-sitter, and ``lit-compressor clones`` ties them together.
"""

from lit_compressor.clones.extract import ProjectScan, SkippedFile, SourceFunction, scan_project
from lit_compressor.clones.index import CloneIndex, ClonePair, IndexedFunction, Match
from lit_compressor.clones.model import CloneModel, code_hash
from lit_compressor.runtime.pair_head import PairHead

__all__ = ["CloneIndex", "CloneModel", "ClonePair", "IndexedFunction", "Match", "PairHead", "ProjectScan",
           "SkippedFile", "SourceFunction", "code_hash", "scan_project"]
