"""int8 against float32 on a digits-trained model: validation accuracy of each and top-1 agreement.

Loads a ``lucid train`` run folder trained on the bundled digits, rebuilds its validation split
(same seed and fraction), calibrates ``optimize_for_inference(dtype=torch.int8)`` on training
images (no augmentation) and reports accuracy and agreement. With ``--runtimes``, also
onnxruntime's ``quantize_static`` QDQ model of lucid's export, run by ONNX Runtime and OpenVINO,
calibrated on the same images.

Usage: ``python benchmarks/int8_accuracy.py RUN_FOLDER [--calibration-batches 8] [--batch-size 64] [--runtimes] [--result NAME]``;
the report also goes to ``benchmarks/results/NAME.log`` (default ``int8_accuracy``) under a header.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import _results
import torch

from lucid import optimize_for_inference
from lucid.benchmark import onnx_models, openvino_model, ort_session
from lucid.data.folder import digits_splits
from lucid.inference.predict import calibration_batches, load_trained


def _logits(run, images: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([torch.as_tensor(run(images[i:i + batch])) for i in range(0, len(images), batch)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a lucid train output folder (digits)")
    p.add_argument("--calibration-batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--runtimes", action="store_true", help="also onnxruntime's int8 QDQ model in ONNX Runtime and OpenVINO")
    _results.add_result_option(p, "int8_accuracy")
    args = p.parse_args()
    with _results.recording(args.result) as figures:
        report = measure(args)
        print(json.dumps(report, indent=1))
        figures.append(f"fp32 val acc1 {report['fp32_acc1']:.2%} on {report['val_images']} images")
        figures += [f"{key} {value:.2%}" for key, value in report.items() if key.endswith(("acc1", "agreement")) and key != "fp32_acc1"]
    return 0


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Accuracy of the float model and of each int8 contender, and their top-1 agreement with it."""
    trained = load_trained(args.run)
    model = trained.model.eval()
    _, val_set, _, _ = digits_splits(trained.preprocessing.image_size, trained.dataset["val_fraction"], trained.dataset["seed"], augment=False)
    val = torch.stack([val_set[i][0] for i in range(len(val_set))])  # preprocessed (normalised) as in evaluation
    labels = val_set.targets
    calibration = calibration_batches(trained, args.calibration_batches, args.batch_size)  # what `lucid eval --dtype int8` uses
    with torch.no_grad():
        ref = _logits(model, val, args.batch_size)
    runs = {"lucid int8": optimize_for_inference(model, dtype=torch.int8, calibration=calibration, calibration_batches=len(calibration))}
    if args.runtimes:
        files = tempfile.TemporaryDirectory()  # the ONNX files, removed at exit
        paths = onnx_models(model, val[:1], Path(files.name), int8=True, calibration=calibration)
        for name, bind in (("onnxruntime int8 QDQ", ort_session(paths["int8"])), ("openvino int8 QDQ", openvino_model(paths["int8"], None))):
            runs[name] = lambda x, bind=bind: torch.as_tensor(bind(x.contiguous())()[0])
    report = {"run": args.run, "val_images": len(labels), "calibration_images": sum(len(c) for c in calibration),
              "fp32_acc1": (ref.argmax(1) == labels).float().mean().item()}
    for name, run in runs.items():
        out = _logits(run, val, args.batch_size)
        report[f"{name} acc1"] = (out.argmax(1) == labels).float().mean().item()
        report[f"{name} agreement"] = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    return report


if __name__ == "__main__":
    sys.exit(main())
