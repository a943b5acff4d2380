"""Running a model folder without Lightning: runners (PyTorch, ONNX Runtime), opening a folder for a backend,
the ONNX export chain, the clone-search graphs, and :class:`~lit_compressor.runtime.classifier.TinyClassifier`."""
