"""Bad input and damaged files: each case that used to crash, lose work or print a traceback, reproduced.

Every command ends bad input with one line naming the option or file and a non-zero exit; a
non-finite loss never reaches a saved "best" model, and metrics.jsonl stays strict JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import COLOURS, TINY_ARGS, one_line_error, tiny_config, write_png_folder

from lucid.cli import main
from lucid.train.engine import fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    fit(tiny_config(folder, out, epochs=2))
    return out
T = [*TINY_ARGS, "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--workers", "0"]


def strict_records(out: Path) -> list[dict]:
    """metrics.jsonl parsed by a JSON reader that refuses NaN and Infinity."""
    def refuse(token: str) -> None:
        raise AssertionError(f"metrics.jsonl holds {token}, which is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- crashes and lost work


def test_unreadable_images_that_leave_a_batch_of_one_do_not_crash(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    write_png_folder(data, {c: 5 for c in COLOURS}, seed=3)
    for c in COLOURS:
        for i in range(15):
            (data / c / f"junk{i}.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["train", "--data", str(data), "--val-split", "0.25", *T, "--out", str(out)]) == 0
    record = strict_records(out)[0]
    assert record["skipped_images"] > 0 and record["skipped_steps"] >= 0
    assert (out / "model.safetensors").is_file()


def test_symlink_loops_are_entered_once_and_no_sample_is_in_both_splits(tmp_path: Path) -> None:
    from lucid.data.folder import (
        default_preprocessing,
        folder_splits,
        scan_class_folders,
    )

    data = tmp_path / "data"
    files = write_png_folder(data, {"red": 9, "blue": 8}, seed=4)
    os.symlink("..", data / "red" / "loop")  # red/loop/red/loop/... and red/loop/blue/...
    os.symlink(str(data / "blue"), data / "blue" / "self")
    os.symlink(str(files[0]), data / "blue" / "alias.png")  # a red file linked into blue
    _, samples = scan_class_folders(data)
    assert len(samples) == len(files) == 17
    assert len({os.path.realpath(p) for p, _ in samples}) == 17
    train, val, _ = folder_splits(data, 0.3, 0, default_preprocessing(32, 3))
    real = lambda ds: {os.path.realpath(p) for p, _ in ds.samples}
    assert not real(train) & real(val) and len(train) + len(val) == 17


def test_a_second_run_on_a_locked_out_folder_stops_at_once(folder: Path, tmp_path: Path, capsys) -> None:
    from lucid.train.rundir import RunFolder

    out = tmp_path / "out"
    with RunFolder.open(out, resume=False, overwrite=False):  # another run holds the folder
        one_line_error(capsys, ["train", "--data", str(folder), *T, "--out", str(out)], "--out", "in use", str(os.getpid()))
    assert not (out / "last.pt").exists()
    assert main(["train", "--data", str(folder), *T, "--out", str(out)]) == 0  # released: it runs


@pytest.mark.slow
def test_two_runs_started_together_leave_one_run_and_one_error(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lucid", "train", "--data", str(folder), *T, "--epochs", "2", "--out", str(out)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=240), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(err for code, err in results if code == 2)
    assert "in use" in err or "already holds a training run" in err, err
    assert [r["epoch"] for r in strict_records(out)] == [1, 2]


def test_out_holding_other_content_is_refused_unless_overwrite(folder: Path, tmp_path: Path, capsys) -> None:
    from lucid.models import create_model, from_pretrained

    model_dir = tmp_path / "model"
    create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=5).save_pretrained(model_dir)
    before = (model_dir / "model.safetensors").read_bytes()
    one_line_error(capsys, ["train", "--data", str(folder), *T, "--out", str(model_dir)], "--out", "other files", "--overwrite")
    assert (model_dir / "model.safetensors").read_bytes() == before
    assert main(["train", "--data", str(folder), *T, "--out", str(model_dir), "--overwrite"]) == 0
    assert from_pretrained(model_dir).config.num_classes == 3 and (model_dir / "last.pt").is_file()
    # a finished run is not started again by mistake either
    one_line_error(capsys, ["train", "--data", str(folder), *T, "--out", str(model_dir)], "--resume", "--overwrite")


@pytest.mark.parametrize("argv, flag", [
    (["--lr", "inf"], "--lr"), (["--lr", "nan"], "--lr"), (["--opt", "sgd", "--momentum", "nan"], "--momentum"),
    (["--label-smoothing", "nan"], "--label-smoothing"), (["--set", "stem_width=nan"], "--set stem_width"),
    (["--set", 'block_args={"drop_path": NaN}'], "--set block_args"),
    (["--warmup-epochs", "inf"], "--warmup-epochs"),
])
def test_non_finite_options_are_refused(argv: list[str], flag: str, capsys) -> None:
    one_line_error(capsys, ["train", *argv], flag, "finite")


def _nan_at(calls: int):
    """A loss function that turns NaN from the ``calls``-th call on (as a diverging run does)."""
    seen = {"n": 0}
    ce = torch.nn.CrossEntropyLoss()

    def loss(logits, targets):
        seen["n"] += 1
        value = ce(logits, targets)
        return value * float("nan") if seen["n"] >= calls else value

    return loss


def test_a_nan_loss_stops_the_run_and_never_becomes_the_best_model(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from lucid.models import from_pretrained
    from lucid.train import engine

    monkeypatch.setattr(engine.recipe, "build_loss", lambda cfg, n: _nan_at(calls=6))  # epoch 2, step 2 of 4
    out = tmp_path / "out"
    assert main(["train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--epochs", "3", "--batch-size", "8",
                 "--workers", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nan" in err[0] and "epoch 2, step 2" in err[0] and "--on-nonfinite skip" in err[0], err
    assert [r["epoch"] for r in strict_records(out)] == [1]
    model = from_pretrained(out)
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_skipping_non_finite_steps_counts_them_and_keeps_the_weights_finite(folder: Path, tmp_path: Path, monkeypatch) -> None:
    from lucid.train import engine

    monkeypatch.setattr(engine.recipe, "build_loss", lambda cfg, n: _nan_at(calls=3))  # every step from the 3rd on
    out = tmp_path / "out"
    summary = fit(tiny_config(folder, out, epochs=2, on_nonfinite="skip"))
    records = strict_records(out)
    assert [r["nonfinite_steps"] for r in records] == [2, 4] and summary["nonfinite_steps"] == 6
    assert records[1]["train_loss"] is not None  # figures of the finite steps only
    assert all(torch.isfinite(t).all() for t in torch.load(out / "last.pt", weights_only=True)["model"].values() if t.is_floating_point())


def test_metrics_are_strict_json_even_for_non_finite_figures(tmp_path: Path) -> None:
    from lucid.train.rundir import strict_json

    line = strict_json({"epoch": 1, "val_loss": float("nan"), "lr": float("inf"), "val_acc1": 0.5})
    assert json.loads(line, parse_constant=lambda t: pytest.fail(t)) == {"epoch": 1, "val_loss": None, "lr": None, "val_acc1": 0.5}


def test_export_verify_of_a_nan_model_fails(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    from lucid.models import create_model

    model = create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=3)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    code = main(["export", str(tmp_path / "nan"), "--out", str(tmp_path / "m.onnx"), "--input-shape", "1,3,32,32", "--verify"])
    assert code == 1 and "not finite" in capsys.readouterr().err


# ----------------------------------------------------------------------------- tracebacks where a line belongs


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder nothing can be written to (a read-only tmpfs as root, a 0555 folder otherwise)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        return target
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)], capture_output=True, check=False).returncode != 0:
        pytest.skip("root without mount: no read-only folder to test with")
    return target


def _unmount(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
    else:
        path.chmod(0o755)


def test_unwritable_paths_are_one_line_errors_with_the_path(folder: Path, tmp_path: Path, capsys) -> None:
    from lucid import weights
    from lucid.models import create_model

    ro = _read_only_dir(tmp_path)
    try:
        one_line_error(capsys, ["export", "resnet_18", "--set", "channels=8,16,32,64", "--input-shape", "1,3,32,32",
                                 "--out", str(ro / "m.onnx")], str(ro / "m.onnx"))
    finally:
        _unmount(ro)
    (tmp_path / "some_file.png").write_bytes(b"x")
    one_line_error(capsys, ["train", "--data", str(folder), *T, "--out", str(tmp_path / "some_file.png")], "--out", "some_file.png", "is a file")
    source = tmp_path / "x.safetensors"
    weights.save_file(create_model("resnet_18", channels=[8, 16, 32, 64]).state_dict(), source)
    (tmp_path / "existing").mkdir()
    one_line_error(capsys, ["weights", "convert", str(source), str(tmp_path / "existing")], str(tmp_path / "existing"), "folder")


def test_a_full_disk_is_a_one_line_error_and_the_old_state_stays(folder: Path, tmp_path: Path, capsys) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small file system")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = disk / "run"
        # A model of ~2.4 MB of weights cannot be saved on a 2 MB disk.
        code = main(["train", "--data", str(folder), "--model", "resnet_18", "--set", "channels=16,32,64,128", "--image-size", "32",
                     "--epochs", "1", "--batch-size", "8", "--workers", "0", "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "no space left" in err.lower() and str(out) in err, err
        assert not [p for p in out.iterdir() if ".tmp-" in p.name]  # no half-written temporaries left
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, check=False)


def _damage(run: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / f"damaged{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    change(config["metadata"])
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_damaged_run_metadata_is_aone_line_error(trained: Path, folder: Path, tmp_path: Path, capsys) -> None:
    image = str(folder / "val" / "red" / "0.png")
    crop0 = _damage(trained, tmp_path, lambda m: m["preprocessing"].update(crop=0))
    one_line_error(capsys, ["predict", str(crop0), image], "crop", "(0, 1]", str(crop0))
    no_channels = _damage(trained, tmp_path, lambda m: m["preprocessing"].pop("channels"))
    one_line_error(capsys, ["eval", str(no_channels), "--data", str(folder)], "channels", str(no_channels))
    state = torch.load(trained / "last.pt", weights_only=True)
    del state["model_config"]
    torch.save(state, tmp_path / "last.pt")
    one_line_error(capsys, ["eval", str(tmp_path / "last.pt"), "--data", str(folder)], "model_config", "last.pt")


@pytest.mark.parametrize("size", ["0", "-5", "100000"])
def test_bad_image_sizes_are_refused_on_every_command(size: str, trained: Path, folder: Path, capsys) -> None:
    one_line_error(capsys, ["train", "--image-size", size], "--image-size", size)
    one_line_error(capsys, ["eval", str(trained), "--data", str(folder), "--image-size", size], "--image-size", size)
    one_line_error(capsys, ["predict", str(trained), str(folder / "val" / "red" / "0.png"), "--image-size", size], "--image-size", size)


def test_bad_numbers_and_misleading_messages(capsys) -> None:
    one_line_error(capsys, ["train", "--seed", "99999999999999999999"], "--seed", "between 0 and")
    one_line_error(capsys, ["train", "--seed", "-1"], "--seed")
    one_line_error(capsys, ["train", "--batch-size", "1"], "--batch-size", ">= 2")
    one_line_error(capsys, ["train", "--set", "num_classes=abc"], "--set num_classes", "int", "'abc'")


def test_resume_with_a_relative_data_folder_from_another_working_folder(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    data = tmp_path / "work" / "data"
    shutil.copytree(folder, data)
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "--data", "data", *T, "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    state["epoch"], state["config"]["epochs"] = 1, 2  # as if stopped after epoch 1
    state["best_epoch"] = min(state["best_epoch"], 1)  # (a best epoch after the epochs done is refused as damage)
    torch.save(state, tmp_path / "run" / "last.pt")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 0
    shutil.rmtree(data)
    state["epoch"] = 1
    torch.save(state, tmp_path / "run" / "last.pt")
    one_line_error(capsys, ["train", "--resume", str(tmp_path / "run")], "--resume", "data", "no longer there")
    assert "--val-split" not in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_stops_with_the_resume_hint(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lucid", "train", "--data", str(folder), *T, "--epochs", "200", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((out / "last.pt").is_file() and torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1):  # epoch 1 saved
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"lucid train --resume {out}" in err and "terminated" in err
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1


def test_library_bugs_still_show_a_traceback(monkeypatch, capsys) -> None:
    from lucid.cli import models as models_command

    def buggy(args):
        raise KeyError("a bug in lucid")

    monkeypatch.setattr(models_command, "run", buggy)
    with pytest.raises(KeyError):
        main(["models"])


def test_refusals_raised_by_lucid_are_one_line_but_errors_from_inside_torch_are_not(monkeypatch, capsys) -> None:
    from lucid.cli import models as models_command

    one_line_error(capsys, ["train", "--model", "no_such_model"], "no_such_model")

    def torch_failure(args):
        torch.zeros(2) + torch.zeros(3)  # a ValueError/RuntimeError deep inside torch: a bug, not bad input

    monkeypatch.setattr(models_command, "run", torch_failure)
    with pytest.raises(RuntimeError):
        main(["models"])

    def wrong_call(args):
        int("x", "y", "z")  # a TypeError from a wrong call in lucid's own code

    monkeypatch.setattr(models_command, "run", wrong_call)
    with pytest.raises(TypeError):
        main(["models"])
