"""`lucid bench` and lucid.benchmark: same weights for every contender, interleaved timing, CLI errors."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lucid.benchmark import (
    Contender,
    Result,
    format_table,
    infer_contenders,
    measure,
    onnx_models,
    peer_models,
    randomize_batchnorm,
    ratio_lines,
    runtime_runners,
    runtimes_installed,
)
from lucid.cli import main
from lucid.models import create_model


@pytest.mark.slow
def test_peers_carry_lucids_weights() -> None:
    model = create_model("resnet_18", num_classes=10).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        x = torch.randn(2, 3, 32, 32)
        ref = model(x)
        peers = peer_models("resnet_18", model)
        assert sorted(peers) == ["timm", "torchvision"]
        for peer in peers.values():
            assert torch.allclose(peer.eval()(x), ref, rtol=1e-5, atol=1e-5)


def test_no_peers_for_architectures_they_lack() -> None:
    assert peer_models("resnet_18", create_model("resnet_18", stem_type="deep")) == {}
    assert peer_models("not_a_preset", create_model("resnet_18")) == {}


def test_measure_warms_up_then_interleaves_rotating_the_order() -> None:
    calls: list[str] = []
    contenders = [Contender(n, "fake", lambda n=n: calls.append(n), batch=4) for n in "abc"]
    results = measure(contenders, warmup=2, rounds=3, memory=False)
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]
    assert calls[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [len(r.seconds) for r in results] == [3, 3, 3]
    assert results[0].images_per_second == pytest.approx(4 / sorted(results[0].seconds)[1])
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        measure(contenders, rounds=0)


def test_table_ratios_are_peer_time_over_row_time() -> None:
    peer = Result("torchvision", "float32 NCHW eager", 8, [0.9, 1.0, 1.1], 10.0, peer=True)
    fast = Result("lucid", "optimize_for_inference", 8, [0.5, 0.4, 0.6], None, faults=[10, 30, 20])
    lines = format_table([peer, fast]).splitlines()
    assert lines[0].split("|")[-2].strip() == "x torchvision float32 NCHW eager"
    assert lines[2].split("|")[1:-1][4:6] == [" 10 ", " n/a "]
    assert lines[3].split("|")[1:-1] == [" lucid ", " optimize_for_inference ", " 16.0 ", " 500.0 ", " n/a ", " 20 ", " 2.00 "]
    assert ratio_lines("infer", [peer, fast]) == [
        "infer: lucid optimize_for_inference 16.0 img/s vs torchvision float32 NCHW eager 8.0 img/s = 2.00x"
    ]


def _bench_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    argv = ["bench", "resnet_18", "--set", "num_classes=10", "--batch-size", "2", "--image-size", "32",
            "--warmup", "1", "--rounds", "2", "--json", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_cli_bench_infer_and_train(capsys: pytest.CaptureFixture[str]) -> None:
    report = _bench_json(capsys, "--dtype", "bfloat16")
    rows = [(r["library"], r["setup"]) for r in report["results"]]
    runtimes = ["openvino"] if "openvino" in runtimes_installed() else []  # onnxruntime has no bf16 CPU kernels
    assert [lib for lib, _ in rows] == ["torchvision", "torchvision", "timm", "timm", *runtimes, "lucid"]
    assert rows[1][1] == "bfloat16 channels-last eager" and "optimize_for_inference(bfloat16)" in rows[-1][1]
    for r in report["results"]:
        assert len(r["seconds"]) == 2 and r["images_per_second"] == pytest.approx(2 / (r["median_ms"] / 1000))
    report = _bench_json(capsys, "--mode", "train", "--no-peers")
    assert [r["library"] for r in report["results"]] == ["lucid"]
    assert report["results"][0]["setup"].startswith("train_step, fast_defaults")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mode", "train", "--dtype", "bfloat16"], "--dtype and --compile apply to --mode infer"),
        (["--batch-size", "0"], "--batch-size must be a positive int, got 0"),
        (["--dtype", "float16", "--device", "cpu"], "dtype must be one of"),
    ],
)
def test_cli_bench_refuses_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "resnet_18", "--no-peers", "--rounds", "1", "--warmup", "1", "--image-size", "32", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_fast_defaults_fused_optimizer_updates_like_the_plain_one() -> None:
    import copy

    from lucid.train.step import fast_defaults, train_step

    defaults = fast_defaults(torch.device("cpu"))
    assert defaults["fused_optimizer"] is True
    model = create_model("resnet_18", num_classes=4, channels=[4, 8, 8, 8])
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    nets = [copy.deepcopy(model), copy.deepcopy(model)]
    for net, fused in zip(nets, (None, True)):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, fused=fused)
        for _ in range(2):
            train_step(net, x, y, opt, nn.CrossEntropyLoss())
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_runtimes_run_lucids_own_export_with_the_same_weights(tmp_path) -> None:
    installed = runtimes_installed()
    if not installed:
        pytest.skip("neither onnxruntime nor openvino is installed")
    model = randomize_batchnorm(create_model("resnet_18", num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    paths = onnx_models(model, x, tmp_path, int8=False)
    runners = runtime_runners(paths, torch.float32)
    assert sorted(name for name, _, _ in runners) == sorted(installed)
    for name, _, bind in runners:
        out = torch.as_tensor(bind(x)()[0])
        assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-4, name


@pytest.mark.slow
def test_cli_bench_int8_adds_the_runtimes_int8_models(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torchao")
    report = _bench_json(capsys, "--dtype", "int8")
    rows = [(r["library"], r["setup"]) for r in report["results"]]
    assert [lib for lib, _ in rows] == ["torchvision", "timm", *runtimes_installed(), "lucid"]
    assert all("int8 QDQ" in setup for lib, setup in rows if lib in ("onnxruntime", "openvino"))
    assert "optimize_for_inference(int8)" in rows[-1][1]


@pytest.mark.slow
def test_lucid_rows_take_the_backends_that_apply_to_the_dtype() -> None:
    pytest.importorskip("torchao")
    model = create_model("resnet_18", num_classes=10).eval()
    asked = ("onednn-graph", "onednn-fused", "onednn-lowered")
    float_rows = infer_contenders("resnet_18", model, batch=2, size=32, peers=False, lucid_backends=asked)
    assert [row.setup.rsplit(": ", 1)[1] for row in float_rows] == ["onednn-graph", "onednn-fused"]
    int8_rows = infer_contenders("resnet_18", model, batch=2, size=32, dtype=torch.int8, peers=False, lucid_backends=asked)
    assert [row.setup.rsplit(": ", 1)[1] for row in int8_rows] == ["onednn-lowered"]
    default = infer_contenders("resnet_18", model, batch=2, size=32, dtype=torch.int8, peers=False, lucid_backends=("onednn-graph",))
    from lucid.optimize.quantize import compiler_available

    assert [row.setup.rsplit(": ", 1)[1] for row in default] == ["inductor-aot" if compiler_available() else "onednn-lowered"]  # lucid's default
