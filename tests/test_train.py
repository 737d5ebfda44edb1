"""``lucid train`` / ``eval`` / ``predict``: the loop learns, resume is exact, bad input fails in one line.

Everything runs a tiny ResNet (channels 8..64) on tiny generated PNG folders in temporary
directories, so the file takes seconds, not minutes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import COLOURS, TINY_ARGS, one_line_error, read_metrics, tiny_config, write_png_folder

from lucid.cli import main
from lucid.train import epoch, recipe
from lucid.train.engine import fit


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    fit(tiny_config(folder, out, epochs=4))
    return out


def test_training_lowers_the_loss_and_writes_a_loadable_run(trained: Path) -> None:
    from lucid.models import from_pretrained

    records = read_metrics(trained)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "val_acc1", "val_acc5", "lr", "epoch_seconds", "images_per_second"):
        assert all(isinstance(r[key], float) for r in records), key
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert max(r["val_acc1"] for r in records) > 0.5  # three colours: chance is 1/3
    model = from_pretrained(trained)
    assert model.metadata["class_names"] == sorted(COLOURS)
    assert model.config.num_classes == 3
    state = torch.load(trained / "last.pt", weights_only=True)
    assert state["epoch"] == 4 and state["best_acc1"] == max(r["val_acc1"] for r in records)


def test_schedule_warms_up_then_follows_a_cosine() -> None:
    f = recipe.warmup_cosine(total_steps=10, warmup_steps=2)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5)
    assert f(10) == pytest.approx(0.0)


def test_weight_decay_skips_norms_and_biases() -> None:
    from lucid.models import create_model

    model = create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=3)
    decay, no_decay = recipe.param_groups(model, 1e-4)
    norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    biases = {id(p) for n, p in model.named_parameters() if n.endswith(".bias")}
    convs_and_fc = {id(m.weight) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    assert {id(p) for p in no_decay["params"]} == norms | biases
    assert {id(p) for p in decay["params"]} == convs_and_fc
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # Uninterrupted reference, with random augmentation, shuffling and the default (bf16 on capable CPUs) precision.
    fit(tiny_config(folder, tmp_path / "a"))
    # Same run, Ctrl-C in the middle of epoch 3 (the 2nd of its 4 steps: 36 images, batch 8), then --resume.
    calls = {"n": 0}
    real_step = epoch.train_step

    def interrupting_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 2:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(epoch, "train_step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(folder, tmp_path / "b"))
    assert "lucid train --resume" in capsys.readouterr().err
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(epoch, "train_step", real_step)
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0

    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["epoch"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss", "val_acc1", "lr"):
            assert ra[key] == rb[key], (ra["epoch"], key)
    state_a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    state_b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key
    assert torch.equal(state_a["rng"][0]["torch"], state_b["rng"][0]["torch"])
    assert state_a["scheduler"]["last_epoch"] == state_b["scheduler"]["last_epoch"] == 12


def test_eval_matches_an_independent_computation(trained: Path, folder: Path, capsys) -> None:
    from PIL import Image
    from torchvision.transforms import v2

    from lucid.models import from_pretrained

    assert main(["eval", str(trained), "--data", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = from_pretrained(trained).eval()
    names = model.metadata["class_names"]
    transform = v2.Compose([v2.Resize(37), v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    files = sorted((folder / "val").glob("*/*.png"))
    images = torch.stack([transform(v2.functional.pil_to_tensor(Image.open(f).convert("RGB"))) for f in files])
    targets = torch.tensor([names.index(f.parent.name) for f in files])
    with torch.no_grad():
        logits = model(images)
    assert result["count"] == len(files) == 12
    assert result["acc1"] == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    assert result["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-4)
    # The same through last.pt (the training state) instead of the model folder.
    assert main(["eval", str(trained / "last.pt"), "--data", str(folder / "val"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acc1"] == result["acc1"]


def test_predict_prints_class_names_and_sorted_probabilities(trained: Path, folder: Path, capsys) -> None:
    from lucid.models import from_pretrained

    images = [str(folder / "val" / c / "0.png") for c in sorted(COLOURS)]
    assert main(["predict", str(trained), *images, "--top-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    model = from_pretrained(trained).eval()
    for row, path in zip(rows, images):
        probs = [t["probability"] for t in row["top"]]
        assert row["image"] == path and len(probs) == 2 and probs[0] >= probs[1] and sum(probs) <= 1 + 1e-6
        assert {t["class"] for t in row["top"]} <= set(COLOURS)
    assert main(["predict", str(trained), images[0], "--top-k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(images[0] + ": ") and line.split(": ")[1].split()[0] in COLOURS
    assert model.metadata["class_names"] == sorted(COLOURS)


def test_corrupt_images_are_skipped_with_a_warning_and_counted(folder: Path, tmp_path: Path, capsys) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(folder, data)
    (data / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (data / "val" / "blue" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    summary = fit(tiny_config(data, tmp_path / "out", epochs=1))
    err = capsys.readouterr().err
    assert "broken.png" in err and "broken.jpg" in err
    assert summary["skipped_images"] == 2
    assert read_metrics(tmp_path / "out")[0]["skipped_images"] == 2
    assert main(["eval", str(tmp_path / "out"), "--data", str(data), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["skipped"] == 1 and json.loads(out.out)["count"] == 12 and "broken.jpg" in out.err
    assert main(["predict", str(tmp_path / "out"), str(data / "val" / "blue" / "broken.jpg")]) == 1
    assert "broken.jpg" in capsys.readouterr().err


def test_bad_folders_fail_in_one_line(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, ["train", "--data", str(empty), "--val-split", "0.2"], "no class sub-folders")
    (empty / "cats").mkdir()
    (empty / "cats" / "notes.txt").write_text("no images here")
    one_line_error(capsys, ["train", "--data", str(empty), "--val-split", "0.2"], "no image files")
    write_png_folder(tmp_path / "tree", {"red": 2})
    one_line_error(capsys, ["train", "--data", str(tmp_path / "tree")], "--val-split")
    one_line_error(capsys, ["train", "--data", str(tmp_path / "missing"), "--val-split", "0.2"], "does not exist")


def test_bad_arguments_and_checkpoints_fail_in_one_line(trained: Path, folder: Path, tmp_path: Path, capsys) -> None:
    one_line_error(capsys, ["train", "--epochs", "0"], "--epochs", "0")
    one_line_error(capsys, ["train", "--amp", "fp16", "--device", "cpu"], "--amp fp16")
    one_line_error(capsys, ["train", "--resume", str(tmp_path)], "--resume", "last.pt")
    one_line_error(capsys, ["train", "--data", str(folder), "--out", str(trained), *TINY_ARGS], "--resume")
    # Weights of the tiny resnet_18 offered as a resnet_34: refused with the mismatch spelled out.
    one_line_error(capsys, ["eval", str(trained / "model.safetensors"), "--model", "resnet_34", "--set", "num_classes=3",
                             "--data", str(folder)], "layer")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    one_line_error(capsys, ["predict", str(tmp_path / "junk.pt"), str(folder / "val" / "red" / "0.png")], "junk.pt")
    # A bare weight file records no training data: --data is needed.
    one_line_error(capsys, ["eval", str(trained / "model.safetensors"), *TINY_ARGS, "--set", "num_classes=3",
                            "--image-size", "32", "--preprocess", "imagenet"], "--data")
    one_line_error(capsys, ["eval", str(trained), "--split", "val", "--data", str(tmp_path)], "--split val", "--split all")


def test_pretrained_fine_tunes_from_registered_weights(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--pretrained TAG goes through lucid.weights: the stem starts from the file, the 7-class head is replaced."""
    import hashlib

    from lucid import weights
    from lucid.models import create_model, from_pretrained

    source = create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=7)
    file = tmp_path / "tiny.safetensors"
    weights.save_file(source.state_dict(), file)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    weights.register_pretrained(weights.PretrainedWeights(preset="resnet_18", tag="TINY_TEST", url=file.as_uri(), sha256=digest[:16], layout="lucid"))
    out = tmp_path / "out"
    # lr ~0 so that the saved model still shows where it started.
    with pytest.warns(UserWarning, match="7 classes and the model 3"):
        assert main(["train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--epochs", "1", "--batch-size", "8",
                     "--workers", "0", "--lr", "1e-12", "--pretrained", "TINY_TEST", "--out", str(out)]) == 0
    tuned = from_pretrained(out)
    assert torch.allclose(tuned.stem[0].weight, source.stem[0].weight, atol=1e-6)
    assert tuned.fc.weight.shape == (3, 64 * 1)


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_exits_cleanly_and_resumes(folder: Path, tmp_path: Path) -> None:
    """SIGINT to `python -m lucid train`: exit 130 with the resume hint, a usable last.pt, then --resume finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lucid", "train", "--data", str(folder), *TINY_ARGS, "--image-size", "32",
            "--epochs", "200", "--batch-size", "8", "--workers", "0", "--out", str(out)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    # metrics.jsonl gets an epoch's line just before last.pt is saved: 3 lines mean epoch 2 is saved
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"lucid train --resume {out}" in err
    done = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert 2 <= done < 200
    assert len(read_metrics(out)) >= done
    # Continue, but only to check the resumed run starts at the saved epoch: interrupt it the same way.
    proc = subprocess.Popen([sys.executable, "-m", "lucid", "train", "--resume", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(read_metrics(out)) < done + 1 or torch.load(out / "last.pt", weights_only=True)["epoch"] < done + 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert [r["epoch"] for r in read_metrics(out)][: done + 1] == list(range(1, done + 2))
