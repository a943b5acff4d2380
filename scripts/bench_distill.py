"""Distillation throughput: Lightning's ``DistillationModule`` against a plain PyTorch loop doing the same work.

    nice -n 10 .venv/bin/python scripts/bench_distill.py [--pairs 512] [--block-size 128] [--repeats 3]

Both sides train the paper's 3 MB student (roberta, L=12 H=96 A=8 D=64 V=1000, pair head) for one
epoch on the same fixed slice of the shipped sample's unlabelled split, with the same cached soft
labels (random logits: their content does not matter for speed), the same collate function and
warmed ``CodeEncoder`` memo, the same DataLoader (batch size, shuffle, seed), ``mixed_loss``, AdamW
and linear warm-up schedule, and the same ``torch.manual_seed``. Only steady-state steps are timed:
from the end of step ``--warmup`` to the end of the last step (batch fetch, forward, loss, backward,
optimiser and scheduler steps, and on the Lightning side everything the Trainer adds per step).
Runs alternate (Lightning, plain, Lightning, ...) after ``--discard`` untimed rounds; the table gives
the median examples/s of each and their ratio, and checks that both sides produced the same losses.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from lit_compressor.core.console import markdown_table
from lit_compressor.data.task import TaskData
from lit_compressor.labels.soft_labels import SoftLabels, load_soft_labels, save_soft_labels
from lit_compressor.measure.bench import load_text
from lit_compressor.nn.tokenization import CodeEncoder, train_student_tokenizer
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.base import model_inputs
from lit_compressor.training.datamodule import CodeDataModule
from lit_compressor.training.distillation import DistillationModule
from lit_compressor.training.distillation_data import DistillationDataModule
from lit_compressor.training.losses import mixed_loss

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "bigclonebench-sample"
PAPER_3MB = StudentArchitecture(12, 96, 8, 64, 1000)


class StepTimer(L.Callback):
    """Wall time from the end of step ``warmup`` to the end of the last step, and every step's loss."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.losses = warmup, 0.0, 0.0, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.losses.append(outputs["loss"].detach().item())
        now = time.perf_counter()
        if batch_idx + 1 == self.warmup:
            self.start = now
        self.end = now


class Setup:
    """What both sides share: the slice, the soft-label file, the trained tokenizer and a warmed encoder."""

    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args = args
        self.task = TaskData(format="bigclonebench", data_dir=str(args.data), limit={"unlabelled": args.pairs})
        self.examples = CodeDataModule(self.task).split("unlabelled")
        generator = torch.Generator().manual_seed(0)
        self.soft_labels = save_soft_labels(folder / "soft_labels.safetensors", SoftLabels(
            [e.id for e in self.examples], torch.randn(len(self.examples), 2, generator=generator)))
        corpus = list(dict.fromkeys(code for e in self.examples for code in e.codes))
        self.tokenizer_cache = folder / "tokenizers"
        self.tokenizer = train_student_tokenizer(corpus, PAPER_3MB.vocab_size, self.tokenizer_cache)
        self.encoder = CodeEncoder(self.tokenizer, args.block_size)
        self.encoder(self.examples)  # warm the memo: neither side tokenises during the timed steps

    def module(self) -> DistillationModule:
        """A fresh student (seeded)."""
        torch.manual_seed(self.args.seed)
        return DistillationModule(PAPER_3MB, family="roberta", num_inputs=2, block_size=self.args.block_size, lr=1e-3)

    def data(self, module: DistillationModule) -> DistillationDataModule:
        """The student's data module, reusing the shared tokenizer and warmed encoder."""
        data = DistillationDataModule(self.task, soft_labels=str(self.soft_labels),
                                      tokenizer_cache=str(self.tokenizer_cache), student=module.student_inputs,
                                      batch_size=self.args.batch_size, block_size=self.args.block_size)
        data._splits["unlabelled"] = self.examples
        data.tokenizer, data.encoder = self.tokenizer, self.encoder
        return data


def run_lightning(setup: Setup) -> tuple[float, list[float]]:
    """Examples/s of the timed steps of ``Trainer.fit`` and the per-step losses."""
    module = setup.module()
    data = setup.data(module)
    timer = StepTimer(setup.args.warmup)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[timer])
    torch.manual_seed(setup.args.seed)
    trainer.fit(module, datamodule=data)
    return timed_examples(setup, len(timer.losses)) / (timer.end - timer.start), timer.losses


def run_plain(setup: Setup) -> tuple[float, list[float]]:
    """The same epoch as a hand-written loop over the same module's ``model``."""
    args, module = setup.args, setup.module()
    model = module.model
    labels = load_soft_labels(setup.soft_labels)
    targets, rows = labels.logits, labels.lookup()
    loader = DataLoader(setup.examples, batch_size=args.batch_size, shuffle=True, collate_fn=setup.encoder)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=module.lr,
                                  weight_decay=module.weight_decay)
    total = max(1, len(loader))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(module.warmup_ratio * total), total)
    model.train()
    torch.manual_seed(args.seed)
    losses, start, end = [], 0.0, 0.0
    for step, batch in enumerate(loader):
        teacher = targets[torch.tensor([rows[i] for i in batch["ids"]])]
        loss = mixed_loss(model(**model_inputs(batch)), teacher, batch["labels"], module.temperature, module.alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach().item())
        end = time.perf_counter()
        if step + 1 == args.warmup:
            start = end
    return timed_examples(setup, len(losses)) / (end - start), losses


def timed_examples(setup: Setup, steps: int) -> int:
    """Examples in the steps after the warm-up (the last batch may be short)."""
    size, n = setup.args.batch_size, len(setup.examples)
    return n - min(n, setup.args.warmup * size) if steps > setup.args.warmup else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="a BigCloneBench folder (default: the sample)")
    parser.add_argument("--pairs", type=int, default=512, help="unlabelled pairs in the fixed slice")
    parser.add_argument("--block-size", type=int, default=128, help="tokens per function (the paper: 400)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side, alternating")
    parser.add_argument("--discard", type=int, default=1, help="untimed rounds first (process warm-up)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pairs <= args.warmup * args.batch_size:
        parser.error("--pairs must leave at least one step after the warm-up")

    with tempfile.TemporaryDirectory() as folder:
        setup = Setup(args, Path(folder))
        rates: dict[str, list[float]] = {"lightning": [], "plain": []}
        losses: dict[str, list[float]] = {}
        for repeat in range(args.discard + args.repeats):
            for name, run in (("lightning", run_lightning), ("plain", run_plain)):
                rate, losses[name] = run(setup)
                timed = repeat >= args.discard
                if timed:
                    rates[name].append(rate)
                print(f"run {repeat + 1} {name:9s} {rate:8.1f} examples/s{'' if timed else ' (discarded)'}",
                      flush=True)

    lightning, plain = statistics.median(rates["lightning"]), statistics.median(rates["plain"])
    drift = max(abs(a - b) for a, b in zip(losses["lightning"], losses["plain"], strict=True))
    steps = len(losses["plain"])
    print(f"\n{len(setup.examples)} pairs, block {args.block_size}, batch {args.batch_size}, {steps} steps "
          f"({args.warmup} untimed), {args.repeats} runs each, torch threads {torch.get_num_threads()}; {load_text()}")
    print(markdown_table(["loop", "examples/s (median)", "runs"], [
        [name, f"{statistics.median(rates[key]):.1f}", ", ".join(f"{r:.1f}" for r in rates[key])]
        for name, key in (("Lightning (DistillationModule + Trainer)", "lightning"), ("plain PyTorch", "plain"))]))
    print(f"\nLightning / plain throughput: {lightning / plain:.3f} (goal: >= 0.90)")
    print(f"largest per-step loss difference between the two loops: {drift:.2e} (same work: ~0)")


if __name__ == "__main__":
    main()
