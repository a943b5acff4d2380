"""Load check: soft-label and evaluate the full unlabelled BigCloneBench split in bounded memory.

A tiny classifier (1 layer, H=32, a 1,000-token BPE vocabulary: the teacher's cost does not matter
here, the data's size does) labels all 31,862 unlabelled pairs with ``lit-compressor label``'s code
path, then is evaluated on the same split against those soft labels (agreement with the teacher,
counted batch by batch) and on the labelled test split. Peak resident memory (``VmHWM``) is
printed after each phase; it must stay under 2 GB.

    nice -n 10 .venv/bin/python scripts/bench_load.py --data ../shared/data/bigclonebench
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from lit_compressor.measure.bench import load_text, peak_rss_mb, rss_mb, timed

LIMIT_MB = 2048


def tiny_classifier(folder: Path, data: Path, functions: int = 2000) -> Path:
    """A randomly initialised 1-layer H=32 pair classifier with a BPE tokenizer trained on ``functions`` functions."""
    from lit_compressor.nn.folders import save_classifier
    from lit_compressor.nn.student import build_student
    from lit_compressor.nn.tokenization import train_student_tokenizer
    from lit_compressor.search.architecture import StudentArchitecture

    torch.manual_seed(0)
    with (data / "data.jsonl").open() as handle:
        corpus = [json.loads(line)["func"] for line, _ in zip(handle, range(functions), strict=False)]
    model = build_student(StudentArchitecture(1, 32, 2, 64, 1000), num_inputs=2, max_positions=402)
    return save_classifier(model, train_student_tokenizer(corpus, 1000), folder, {"block_size": 400})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bigclonebench"))
    parser.add_argument("--block_size", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import lightning as L
    from lightning.pytorch.callbacks import BasePredictionWriter

    from lit_compressor.commands.label import label
    from lit_compressor.data.task import TaskData
    from lit_compressor.labels.soft_labels import load_soft_labels
    from lit_compressor.training.datamodule import CodeDataModule
    from lit_compressor.training.labelling import TeacherPredictor

    task = TaskData(format="bigclonebench", data_dir=str(args.data))
    figures: dict[str, float] = {"rss_start_mb": rss_mb()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_classifier(Path(tmp) / "tiny", args.data)
        figures["peak_after_setup_mb"] = peak_rss_mb()

        with timed() as labelling:
            output = label(str(folder), Path(tmp) / "soft.safetensors", task, block_size=args.block_size,
                           batch_size=args.batch_size, accelerator="cpu", force=True)
        figures["label_s"] = labelling.seconds
        figures["peak_after_label_mb"] = peak_rss_mb()
        soft = load_soft_labels(output)
        figures["pairs"] = len(soft.ids)

        teacher_class = dict(zip(soft.ids, soft.logits.argmax(-1).tolist(), strict=True))
        del soft

        class AgreementCounter(BasePredictionWriter):
            """Streams predictions: keeps two counters, not the predictions."""

            def __init__(self) -> None:
                super().__init__(write_interval="batch")
                self.agree = self.total = 0

            def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                                   dataloader_idx=0):
                predicted = prediction["logits"].argmax(-1).tolist()
                self.agree += sum(teacher_class[i] == p for i, p in zip(prediction["ids"], predicted, strict=True))
                self.total += len(predicted)

        counter = AgreementCounter()
        model = TeacherPredictor(str(folder), block_size=args.block_size)
        data = CodeDataModule(task, eval_batch_size=args.batch_size, block_size=args.block_size,
                              encoder=model.code_encoder)
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            callbacks=[counter], enable_progress_bar=False, enable_model_summary=False)
        with timed() as evaluating:
            trainer.predict(model, datamodule=data, return_predictions=False)
        figures["evaluate_unlabelled_s"] = evaluating.seconds
        figures["agreement_with_soft_labels"] = counter.agree / max(counter.total, 1)
        figures["evaluated_pairs"] = counter.total
        figures["peak_after_evaluate_unlabelled_mb"] = peak_rss_mb()

        with timed() as testing:
            metrics = trainer.test(model, datamodule=data, verbose=False)[0]
        figures["test_s"] = testing.seconds
        figures["test_accuracy"] = metrics["test/accuracy"]
        figures["peak_after_test_mb"] = peak_rss_mb()
        figures["encoder_cache_functions"] = len(model.code_encoder._cache)
    figures["peak_rss_mb"] = peak_rss_mb()
    for key, value in figures.items():
        print(f"{key:>36}: {value:.3f}" if isinstance(value, float) else f"{key:>36}: {value}")
    print(load_text())
    ok = figures["peak_rss_mb"] < LIMIT_MB
    print(f"peak RSS {figures['peak_rss_mb']:.0f} MB {'<' if ok else '>='} {LIMIT_MB} MB: {'OK' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
