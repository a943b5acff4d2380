"""What each stage of a whole-split compress costs a function, measured here, and the time it projects.

    nice python scripts/bench_stage_costs.py --data ../shared/data/bigclonebench

Measures, for full blocks of random token ids (batch ``--batch`` functions, the best of 2 repeats, CPU seconds
per function from ``time.process_time`` on one thread by default: an oversubscribed thread pool's spinning would
count as CPU time on a shared machine):
the MiniLM teacher's forward and forward+backward+AdamW step (all layers, and the top 3 layers trainable: the
frozen bottom runs forward only), the 3 MB students' forward+backward (the quick start's shallow-wide genome, the
paper-labels one-layer genome), and (``--codebert-cpu``) CodeBERT's shape (random weights). FLOPs per
function come from ``torch.utils.flop_counter`` on the same modules. Encodings per epoch come from the pair
graph's covers (:mod:`lit_compressor.training.function_batches`), so the tables multiply measured costs by exact counts:

1. ``compress_full_cpu.yaml`` on this machine: each stage's CPU seconds, and wall time at 2 busy cores — a
   projection (the cores are shared, and it assumes both threads run in parallel without loss);
2. ``compress_3mb.yaml`` with CodeBERT on one GPU and on 8 (DDP): FLOPs / (peak x ``--mfu``), memory from the
   parameter count (AdamW fp32: 16 bytes a parameter) and activation memory per sequence (Korthikanti et al.
   2022: s*h*(34 + 5*a*s/h) bytes a layer in 16-bit) — a projection, not a measurement.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from lit_compressor.commands.benchmark import codebert_shape
from lit_compressor.core.console import markdown_table
from lit_compressor.data.task import TaskData
from lit_compressor.measure.bench import load_text
from lit_compressor.nn.student import build_student
from lit_compressor.search.architecture import StudentArchitecture
from lit_compressor.training.function_batches import PairGraph, cover, evaluation_batches
from lit_compressor.training.seeding import epoch_generator
from lit_compressor.training.teacher import build_teacher, freeze_below

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
H100_BF16_TFLOPS = 989.0  # dense, SXM (NVIDIA's datasheet)


def step(model, ids: torch.Tensor, train: bool) -> None:
    """One batch: forward (no grad), or forward + backward + an AdamW step."""
    mask = torch.ones_like(ids)
    if not train:
        with torch.no_grad():
            model.features(ids, mask)
        return
    model.features(ids, mask).float().pow(2).mean().backward()
    model.optimizer.step()
    model.optimizer.zero_grad()


def measure(name: str, model, block: int, batch: int, train: bool, vocab: int, repeats: int = 2) -> dict:
    """CPU seconds (the best of ``repeats`` batches; none when 0) and FLOPs a function, for full blocks."""
    model.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(5, vocab - 1, (batch, 1, block))
    model.train()  # dropout sends attention down the math path, whose matmuls the counter sees (the fused
    with FlopCounterMode(display=False) as counter:  # CPU attention kernel of eval mode is not counted)
        step(model, ids[:1], train)
    model.train(train)
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        step(model, ids, train)
        seconds.append(time.process_time() - start)
    return {"name": name, "block": block, "train": train, "cpu_s": min(seconds) / batch if seconds else None,
            "gflop": counter.get_total_flops() / 1e9}


def covers(data: str, size: int) -> dict[str, tuple[int, int]]:
    """(functions, encodings an epoch) of each split's graph: training covers of ``size``, evaluation of 256."""
    task = TaskData(data_dir=data)
    counts = {}
    for split in ("labelled", "unlabelled", "valid", "test"):
        graph = PairGraph(task.read(split))
        batches = (cover(graph, size, epoch_generator(42, 0)) if split in ("labelled", "unlabelled")
                   else evaluation_batches(graph, 256))
        counts[split] = (len(graph), sum(len(b.functions) for b in batches), len(graph.pairs))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/bigclonebench")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing (CPU s are summed)")
    parser.add_argument("--codebert-cpu", action="store_true", help="time CodeBERT's shape on the CPU too")
    parser.add_argument("--size", type=int, default=64, help="functions a training function batch")
    parser.add_argument("--teacher-block", type=int, default=128)
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--student-epochs", type=int, default=3)
    parser.add_argument("--mfu", type=float, default=0.3, help="fraction of the GPU's peak a training step reaches")
    parser.add_argument("--gpus", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # one thread: on a shared machine an oversubscribed OpenMP pool spins, and its spinning counts as CPU time
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    counts = covers(args.data, args.size)
    print(markdown_table(["split", "pairs", "functions", "encodings an epoch (cover)"],
                         [[s, f"{p:,}", f"{f:,}", f"{e:,}"] for s, (f, e, p) in counts.items()]))
    tb = args.teacher_block
    rows = []
    teacher, _ = build_teacher(MINILM, 2, 2, pooling="mean", pair_head="interaction")
    rows.append(measure("MiniLM forward", teacher, tb, args.batch, False, 30000))
    rows.append(measure("MiniLM fine-tune, all layers", teacher, tb, args.batch, True, 30000))
    frozen, _ = build_teacher(MINILM, 2, 2, pooling="mean", pair_head="interaction")
    freeze_below(frozen.encoder, 3)
    rows.append(measure("MiniLM fine-tune, top 3 (no frozen cache)", frozen, tb, args.batch, True, 30000))
    wide = build_student(StudentArchitecture(3, 128, 4, 384, 1000), num_inputs=2, max_positions=tb + 2,
                         family="bert", pair_head="interaction")
    rows.append(measure("student shallow-wide 3 MB, train", wide, tb, args.batch, True, 1000))
    rows.append(measure("student shallow-wide 3 MB, forward", wide, tb, args.batch, False, 1000))
    paper = build_student(StudentArchitecture(1, 240, 4, 48, 1000), num_inputs=2, max_positions=402)
    rows.append(measure("student paper-labels L1 H240, train", paper, 400, args.batch, True, 1000))
    codebert = codebert_shape(2)
    repeats = 2 if args.codebert_cpu else 0  # FLOPs only by default: 204 GFLOP a pass is minutes on 2 cores
    rows.append(measure("CodeBERT shape forward", codebert, 400, 2, False, 50000, repeats))
    rows.append(measure("CodeBERT shape fine-tune", codebert, 400, 2, True, 50000, repeats))
    print()
    print(markdown_table(["module", "block", "CPU ms a function", "GFLOP a function", "CPU GFLOP/s"],
                         [[r["name"], str(r["block"]), f"{r['cpu_s'] * 1000:.1f}" if r["cpu_s"] else "-",
                           f"{r['gflop']:.2f}", f"{r['gflop'] / r['cpu_s']:.1f}" if r["cpu_s"] else "-"]
                          for r in rows]))
    cost = {r["name"]: r for r in rows}
    student = build_student(StudentArchitecture(12, 96, 8, 64, 1000), num_inputs=2, max_positions=402)
    ga_gflop = measure("GA student", student, 400, 1, True, 1000, 0)["gflop"]
    print(cpu_projection(counts, cost, args))
    print(gpu_projection(counts, cost, sum(p.numel() for p in codebert.parameters()), ga_gflop, args))
    print(f"\n{load_text()}")


def cpu_projection(counts: dict, cost: dict, args: argparse.Namespace) -> str:
    """compress_full_cpu.yaml's stages: encodings (exact) x measured CPU seconds a function."""
    lab, unl, val, test = (counts[s] for s in ("labelled", "unlabelled", "valid", "test"))
    top3 = cost["MiniLM fine-tune, top 3 (no frozen cache)"]["cpu_s"]
    forward = cost["MiniLM forward"]["cpu_s"]
    # the cached run: frozen bottom 3 of 6 layers once per function (half a forward), top 3 trained per encoding
    teacher_s = args.teacher_epochs * (lab[0] * forward / 2 + lab[1] * (top3 - forward / 2) + val[1] * forward)
    label_s = (lab[0] + unl[0]) * forward  # an upper bound: most unlabelled functions are also labelled ones
    group_encodings = 4 * (lab[0] + unl[0])  # functions mode: every cached function an anchor of a group of 4
    student_s = args.student_epochs * (group_encodings * cost["student shallow-wide 3 MB, train"]["cpu_s"]
                                       + val[1] * cost["student shallow-wide 3 MB, forward"]["cpu_s"])
    test_s = test[1] * (forward + cost["student shallow-wide 3 MB, forward"]["cpu_s"])
    stages = [("teacher (top 3 of 6 layers, cached bottom)", teacher_s), ("label", label_s),
              ("student", student_s), ("tests (teacher, student)", test_s)]
    total = sum(s for _, s in stages)
    return (f"\nProjection, compress_full_cpu.yaml at block {args.teacher_block}: {args.teacher_epochs} teacher "
            f"epoch(s), {args.student_epochs} student epochs\n"
            + markdown_table(["stage", "CPU s", "wall min at 2 cores (projected)"],
                             [[n, f"{s:.0f}", f"{s / 120:.1f}"] for n, s in stages]
                             + [["all", f"{total:.0f}", f"{total / 120:.1f}"]]))


def gpu_projection(counts: dict, cost: dict, params: int, ga_gflop: float, args: argparse.Namespace) -> str:
    """compress_3mb.yaml with CodeBERT on H100s: FLOPs / (peak x mfu); memory from parameters and activations."""
    lab, unl, test = counts["labelled"], counts["unlabelled"], counts["test"]
    cb, cb_forward = cost["CodeBERT shape fine-tune"]["gflop"], cost["CodeBERT shape forward"]["gflop"]
    layers, hidden, heads, seq = 12, 768, 12, 400
    activations_gb = layers * seq * hidden * (34 + 5 * heads * seq / hidden) / 1e9  # a sequence, 16-bit
    rate = H100_BF16_TFLOPS * 1e3 * args.mfu  # GFLOP/s

    def training_gb(sequences: float) -> float:  # AdamW states + the activations of a step's sequences
        return params * 16 / 1e9 + sequences * activations_gb

    inference_gb = params * 2 / 1e9 + 256 * activations_gb / layers  # bf16 weights, a layer's worth of 256
    group_encodings = 4 * (lab[0] + unl[0])
    student_steps = 10 * group_encodings / 64
    plan = [("teacher, pair batches (2 epochs, 32 pairs = 64 sequences a step)", 2 * 2 * lab[2] * cb, True),
            ("teacher, function batches (2 epochs, 64 functions a step)", 2 * lab[1] * cb, True),
            ("label (unlabelled + labelled functions, forward)", (lab[0] + unl[0]) * cb_forward, False),
            (f"student distill_3mb (10 epochs, groups of 4: {student_steps:,.0f} steps of 64 functions)",
             10 * group_encodings * ga_gflop, None),
            ("tests (4,000 pairs, evaluation cover)", test[1] * cb_forward, False)]
    n = args.gpus

    def memory(train: bool | None) -> tuple[str, str]:
        if train is None:
            return "< 2", "< 2"
        return (f"{training_gb(64):.1f}", f"{training_gb(64 / n):.1f}") if train else (f"{inference_gb:.1f}",) * 2

    rows = [[name, f"{f / 1e3:,.1f}", f"{f / rate / 60:.2f}", f"{f / rate / 60 / n:.3f}", *memory(train)]
            for name, f, train in plan]
    return (f"\nProjection (not measured): compress_3mb.yaml with CodeBERT at block 400 on H100 at {args.mfu:.0%} "
            f"of {H100_BF16_TFLOPS:.0f} bf16 TFLOP/s; DDP on {n} GPUs keeps the global batch (64 sequences: "
            f"{64 // n} a GPU) and assumes linear scaling\n"
            + markdown_table(["stage", "TFLOP", "1 GPU min", f"{n} GPUs min", "memory, 1 GPU (GB)",
                              f"memory a GPU of {n} (GB)"], rows)
            + f"\n\nThe student row is FLOPs only: a 3 MB student is bound by kernel launches on a GPU, not FLOPs "
            f"({student_steps:,.0f} steps: {student_steps * 0.03 / 60:.1f} min at 30 ms a step). CodeBERT: "
            f"{params:,} parameters; activations {activations_gb * 1000:.0f} MB a 400-token sequence in training.")

if __name__ == "__main__":
    main()
