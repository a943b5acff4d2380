"""Nothing lost on interruption: a SIGKILLed ``fit`` resumes exactly; a killed ``label`` leaves no partial file.

What is guaranteed (CPU, one process, ``seed_everything`` set, the ``ExactResume`` callback in the
trainer's callbacks): ``lit-compressor fit ... --ckpt_path last`` after a SIGKILL anywhere in an
epoch ends with *bit-identical* weights and the same test metrics as the uninterrupted run. Each
epoch's order is a permutation seeded by (seed, epoch), the checkpoint records how many batches of
the epoch were served (the resumed run skips exactly those), and the random generators (dropout)
are restored from the checkpoint. Work done after the last checkpoint is redone, nothing else.

Without ``ExactResume`` Lightning restores the step counters but restarts a plain ``DataLoader``'s
epoch from a fresh permutation of the global generator, so a mid-epoch resume trains on different
batches (some twice, some never) and ends with different weights.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tiny_tasks import (
    ROOT,
    _env,
    _tiny_classifier,
    cli,
    distill_config,
    finish,
    make_soft_labels,
    make_tiny_task,
    student_state,
)


def test_sigkilled_fit_resumes_to_identical_weights_and_metrics(tmp_path):
    task = make_tiny_task(tmp_path / "data")
    soft = make_soft_labels(task, tmp_path / "soft.safetensors")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    # 2 epochs x 6 steps; checkpoints at steps 4 and 8; killed at step 10 (mid epoch 1, after its validation)
    runs = [cli("fit", "--config", str(distill_config(reference, task, soft))),
            cli("fit", "--config", str(distill_config(killed, task, soft, kill_at=10)))]
    (code_reference, err_reference), (code_killed, err_killed) = [finish(p) for p in runs]
    assert code_reference == 0, err_reference[-3000:]
    assert code_killed == -signal.SIGKILL, err_killed[-3000:]
    last = killed / "checkpoints" / "last.ckpt"
    from lit_compressor.training.resume import load_checkpoint_state

    checkpoint = load_checkpoint_state(last, key=None)
    assert checkpoint["global_step"] == 8 and checkpoint["epoch"] == 1
    assert not (killed / "student").exists()  # the killed run never got to write its model

    code, err = finish(cli("fit", "--config", str(distill_config(killed, task, soft)), "--ckpt_path", "last"))
    assert code == 0, err[-3000:]
    expected, resumed = student_state(reference), student_state(killed)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert tensor.equal(resumed[name]), name
    metrics = [json.loads((run / "student" / "metrics.json").read_text()) for run in (reference, killed)]
    assert metrics[0] == metrics[1], metrics
    assert {"accuracy", "f1", "precision", "recall"} <= metrics[0].keys()


def test_killed_label_never_leaves_a_partial_file_that_loads(tmp_path, monkeypatch):
    """The writer dies mid-write: the target path either does not exist or holds the previous, complete file."""
    import torch

    import lit_compressor.labels.soft_labels as soft_labels
    from lit_compressor.core.errors import UserError

    path = tmp_path / "soft.safetensors"
    old = soft_labels.SoftLabels(["a", "b"], torch.zeros(2, 2), {"data": "old"})
    soft_labels.save_soft_labels(path, old)
    before = path.read_bytes()

    def dying_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)  # half a file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(soft_labels, "save_file", dying_save_file)
    new = soft_labels.SoftLabels(["c"], torch.ones(1, 2), {"data": "new"})
    try:
        soft_labels.save_soft_labels(path, new)
    except KeyboardInterrupt:
        pass
    assert path.read_bytes() == before
    assert soft_labels.load_soft_labels(path).metadata["data"] == "old"
    assert not soft_labels.is_current(path, teacher="", data="new")
    monkeypatch.undo()
    # a killed first run: no file at the target at all, so nothing is taken as complete
    fresh = tmp_path / "fresh.safetensors"
    monkeypatch.setattr(soft_labels, "save_file", dying_save_file)
    try:
        soft_labels.save_soft_labels(fresh, new)
    except KeyboardInterrupt:
        pass
    assert not fresh.exists()
    try:
        soft_labels.load_soft_labels(fresh)
        raise AssertionError("a missing soft-label file loaded")
    except UserError as error:
        assert "not found" in str(error)


SLOW_WRITER = """
import os, sys, time
import lit_compressor.labels.soft_labels as soft_labels
real_save_file = soft_labels.save_file

def half_written(tensors, filename, metadata=None):
    real_save_file(tensors, filename, metadata=metadata)
    os.truncate(filename, os.path.getsize(filename) // 2)
    print("HALF-WRITTEN", filename, file=sys.stderr, flush=True)
    time.sleep(600)

soft_labels.save_file = half_written
from lit_compressor.commands.cli import main
main(sys.argv[1:])
"""


def test_sigkilled_label_subprocess_leaves_no_complete_looking_file(tmp_path):
    """A real `lit-compressor label` process SIGKILLed while its file is half written (its writer is slowed
    down to make the moment certain): the output path never exists half-written, the rerun completes."""
    from lit_compressor.labels.soft_labels import load_soft_labels

    task = make_tiny_task(tmp_path / "data")
    teacher = _tiny_classifier(tmp_path / "teacher")
    output = tmp_path / "soft.safetensors"
    args = ["label", "--teacher", str(teacher), "--output", str(output), "--task.data_dir", str(task),
            "--block_size", "64", "--batch_size", "8"]
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, *args], cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in process.stderr:  # blocks until the writer reports, or the process ends
        seen += line
        if line.startswith("HALF-WRITTEN"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert "HALF-WRITTEN" in seen, seen[-3000:]
    partial = Path(seen.split("HALF-WRITTEN", 1)[1].split()[0])
    assert partial.exists() and partial != output and not output.exists()

    code, err = finish(cli(*args))
    assert code == 0, err[-3000:]
    labels = load_soft_labels(output)
    assert len(labels.ids) == 24 and labels.logits.shape == (24, 2)
    assert not partial.exists()  # the dead run's temporary file was cleaned up
