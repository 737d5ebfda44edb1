"""The shared training step and the digits default: contract tests that need no training run."""
from __future__ import annotations

import pytest
import torch

from lucid.train.step import COMPILE_MIN_IMAGES, fast_defaults, train_step


def _tiny_model() -> torch.nn.Module:
    from lucid.models import create_model

    return create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=4, in_channels=1)


@pytest.mark.parametrize("fast_bf16, amp", [(True, torch.bfloat16), (False, None)])
def test_fast_defaults_has_the_agreed_keys_and_follows_the_cpu(monkeypatch, fast_bf16, amp) -> None:
    from lucid.train import step

    monkeypatch.setattr(step, "cpu_has_fast_bf16", lambda: fast_bf16)
    d = fast_defaults(torch.device("cpu"))
    assert set(d) == {"channels_last", "amp_dtype", "compile", "fused_optimizer"}
    assert d["amp_dtype"] == amp
    assert d["channels_last"] is True and d["compile"] is False and d["fused_optimizer"] is True


def test_fast_defaults_compiles_only_long_cuda_runs(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda = torch.device("cuda")
    assert fast_defaults(cuda, images=COMPILE_MIN_IMAGES)["compile"] is True
    assert fast_defaults(cuda, images=COMPILE_MIN_IMAGES - 1)["compile"] is False
    assert fast_defaults(cuda)["compile"] is False  # run length unknown: no compile start-up cost
    assert fast_defaults(cuda)["amp_dtype"] == torch.bfloat16
    assert fast_defaults(torch.device("cpu"), images=10 * COMPILE_MIN_IMAGES)["compile"] is False


@pytest.mark.parametrize("amp_dtype, channels_last", [(None, False), (torch.bfloat16, True)])
def test_train_step_returns_the_pre_update_loss_and_updates_the_weights(amp_dtype, channels_last) -> None:
    model = _tiny_model()
    x, y = torch.randn(6, 1, 32, 32), torch.randint(0, 4, (6,))
    loss_fn = torch.nn.CrossEntropyLoss()
    reference = _tiny_model()
    reference.load_state_dict(model.state_dict())
    with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        expected = loss_fn(reference(x).float(), y)  # train mode, same batch: same BatchNorm statistics
    before = model.fc.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss, logits = train_step(model, x, y, opt, loss_fn, amp_dtype=amp_dtype, channels_last=channels_last)
    assert not loss.requires_grad and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not logits.requires_grad and logits.shape == (6, 4)
    assert loss_fn(logits.float(), y).item() == pytest.approx(loss.item(), rel=1e-5)  # the logits of this very forward pass
    assert not torch.equal(model.fc.weight, before)


def test_gradient_accumulation_matches_one_large_batch() -> None:
    """Two half batches with update=False then True give the gradient of the mean loss: the same step as one batch.

    BatchNorm makes the halves see other batch statistics, so the check runs on a model without BatchNorm.
    """
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    twin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    twin.load_state_dict(net.state_dict())
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    loss_fn = torch.nn.CrossEntropyLoss()
    opt_a, opt_b = torch.optim.SGD(net.parameters(), lr=0.5), torch.optim.SGD(twin.parameters(), lr=0.5)
    train_step(net, x, y, opt_a, loss_fn)
    train_step(twin, x[:4], y[:4], opt_b, loss_fn, update=False, accumulated=2)
    assert all(p.grad is not None for p in twin.parameters())  # accumulated, not applied
    train_step(twin, x[4:], y[4:], opt_b, loss_fn, update=True, accumulated=2)
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert all(p.grad is None for p in twin.parameters())  # cleared after the update


def test_a_non_finite_loss_is_refused_before_the_weights_change() -> None:
    from lucid.train.step import NonFiniteLossError

    model = _tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    x, y = torch.randn(6, 1, 32, 32), torch.randint(0, 4, (6,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match="nan"):
        train_step(model, x, y, opt, lambda logits, t: logits.sum() * float("nan"), check_finite=True)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items() if "running" not in k)
    assert all(p.grad is None for p in model.parameters())


def test_train_step_clips_the_global_gradient_norm() -> None:
    model = _tiny_model()
    x, y = torch.randn(6, 1, 32, 32), torch.randint(0, 4, (6,))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    seen = []  # the global gradient norm the optimizer step receives (the gradients are cleared after it)
    opt.register_step_pre_hook(lambda o, a, k: seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))))
    train_step(model, x, y, opt, torch.nn.CrossEntropyLoss(), clip_grad=0.01)
    assert seen[0].item() == pytest.approx(0.01, rel=1e-4)


def test_default_run_is_the_specification_model_on_the_digits_split() -> None:
    from lucid.models import ResNeXtConfig
    from lucid.train.engine import TrainConfig, build_data, build_model

    cfg = TrainConfig()
    data = build_data(cfg)
    train, val, classes, prep, overrides = data.train, data.val, data.classes, data.prep, data.overrides
    assert (len(train), len(val), classes) == (1438, 359, [str(i) for i in range(10)])
    assert tuple(train[0][0].shape) == (1, 32, 32) and prep.image_size == 32  # stored at 8x8, upsampled as read
    with torch.device("meta"):
        model = build_model(cfg, overrides, load_weights=False)
    spec = ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4, num_classes=10, in_channels=1, stem_type="deep", stem_width=32,
                         zero_init_residual=True)  # the specification's model, its residual blocks starting as identities
    assert model.config == spec
    # The split is a fixed function of the seed: the same again, disjoint, and different for another seed.
    again = build_data(cfg).val
    assert torch.equal(again.images, val.images)
    other = build_data(TrainConfig(seed=1)).val
    assert not torch.equal(other.images, val.images)
    from sklearn.datasets import load_digits

    together = torch.cat([train.targets, val.targets])
    assert torch.equal(torch.bincount(together), torch.bincount(torch.as_tensor(load_digits().target)))
