"""The ONNX export chain that ships a model: ``export_onnx`` (TorchScript exporter, eager attention) ->
``optimize_onnx`` (ONNX Runtime's fused CPU kernels) -> ``quantize_onnx`` (dynamic int8).

``lit-compressor export``, the IDE search's latency timings and ``benchmark``'s teacher all go through it,
so a student and a teacher are timed through the same chain.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
from pathlib import Path

import torch

MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")  # position_ids: data-flow models only


class LogitsModule(torch.nn.Module):
    """The exported graph: ``input_ids``/``attention_mask`` ``[B, n, L]`` (a data-flow model: also
    ``position_ids`` ``[B, n, L]``, and the graph-guided mask ``[B, n, L, L]``) -> ``logits`` ``[B, labels]``."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(*inputs)


def export_onnx(model: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path) -> Path:
    """Export with dynamic batch and length axes (TorchScript exporter, eager attention).

    The eager attention graph (MatMul, Softmax, MatMul) is the one ONNX Runtime's transformer
    optimizer fuses into its Attention kernel; SDPA's or the dynamo exporter's graphs are not.
    """
    model = copy.deepcopy(model).eval()
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    names = [name for name in MODEL_INPUTS if name in sample]
    axes = {name: {0: "batch", 2: "length", **({3: "length"} if sample[name].dim() == 4 else {})} for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LogitsModule(model).eval(), tuple(sample[name] for name in names), str(path),
                          input_names=names, output_names=["logits"],
                          dynamic_axes={**axes, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def optimize_onnx(source: Path, path: Path, config) -> Path:
    """ONNX Runtime's transformer optimizer: fused Attention, SkipLayerNorm and Gelu CPU kernels."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=0)
    optimized.save_model_to_file(str(path))
    return path


def quantize_onnx(source: Path, path: Path) -> Path:
    """Dynamic int8: int8 weights, activations quantised per batch at run time."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # the quantiser logs a pre-processing hint meant for CNNs at WARNING
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        # The fused com.microsoft ops have no ONNX shape inference: tell the quantiser their type.
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return path




ONNX_FILES = {"onnx": "model.optimized.onnx", "onnx-int8": "model.int8.onnx"}


def export_chain(model: torch.nn.Module, sample: dict[str, torch.Tensor], folder: Path,
                 int8: bool = True) -> dict[str, Path]:
    """The whole chain into ``folder``: ``model.onnx`` -> ``model.optimized.onnx`` (backend ``onnx``) ->
    ``model.int8.onnx`` (backend ``onnx-int8``); the files of each backend, as ``export`` ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    optimized = optimize_onnx(export_onnx(model, sample, folder / "model.onnx"), folder / ONNX_FILES["onnx"],
                              model.config)
    files = {"onnx": optimized}
    if int8:
        files["onnx-int8"] = quantize_onnx(optimized, folder / ONNX_FILES["onnx-int8"])
    return files


def share_weights(graphs: list[Path], data_file: str, minimum_bytes: int = 1024) -> dict[str, int]:
    """Store the initializers that every one of ``graphs`` holds byte for byte once, in ``data_file`` beside them
    (ONNX external data), so that a pair student's int8 classifier and its int8 encoder do not ship the encoder's
    weights twice. The graphs compute exactly what they did; each now needs ``data_file`` beside it.
    Returns the bytes stored once and the bytes the graphs no longer hold."""
    import onnx

    graphs = [Path(path) for path in graphs]
    models = [onnx.load(str(path)) for path in graphs]

    def key(tensor) -> str | None:
        if not tensor.raw_data or len(tensor.raw_data) < minimum_bytes:
            return None
        return hashlib.sha256(bytes(tensor.raw_data) + f"{tensor.data_type}{list(tensor.dims)}".encode()).hexdigest()

    held = [{key(t) for t in model.graph.initializer} - {None} for model in models]
    common = set.intersection(*held)
    data, offsets, saved = bytearray(), {}, 0
    for model in models:
        for tensor in model.graph.initializer:
            name = key(tensor)
            if name not in common:
                continue
            if name not in offsets:
                data += b"\0" * (-len(data) % 64)  # aligned, as ONNX Runtime prefers
                offsets[name] = (len(data), len(tensor.raw_data))
                data += tensor.raw_data
            saved += len(tensor.raw_data)
            offset, length = offsets[name]
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for field, value in (("location", data_file), ("offset", str(offset)), ("length", str(length))):
                entry = tensor.external_data.add()
                entry.key, entry.value = field, value
    (graphs[0].parent / data_file).write_bytes(bytes(data))
    for model, path in zip(models, graphs, strict=True):
        onnx.save(model, str(path))
    return {"stored_once": len(data), "removed_from_graphs": saved}
