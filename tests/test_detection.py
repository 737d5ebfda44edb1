"""fpn_backbone: torchvision's BackboneWithFPN over lucid models, in FasterRCNN and RetinaNet."""
from __future__ import annotations

import pytest
import torch
from conftest import TINY
from torchvision.models.detection import FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from lucid.models import ResNeXt, ResNeXtConfig
from lucid.models.detection import fpn_backbone


def _tiny() -> ResNeXt:
    return ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, num_classes=5, **TINY))


def _images_and_targets() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images = [torch.rand(3, 96, 128), torch.rand(3, 128, 96)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[5.0, 5.0, 40.0, 90.0], [50.0, 60.0, 90.0, 120.0]]), "labels": torch.tensor([2, 1])},
    ]
    return images, targets


def test_faster_rcnn_eval_and_one_training_step() -> None:
    source = _tiny()
    bn_stats = source.layer1[0].conv1.bn.running_mean.clone()
    backbone = fpn_backbone(source, trainable_layers=3, out_channels=32)
    body = backbone.body
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    torch.testing.assert_close(body.layer1[0].conv1.bn.running_mean, bn_stats)  # statistics carried over
    assert isinstance(body.layer1[0].conv1.bn, FrozenBatchNorm2d)
    frozen = {n for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("stem.", "layer1.")) for n in frozen)
    assert all(p.requires_grad for n, p in body.named_parameters() if n.startswith(("layer2.", "layer3.", "layer4.")))
    assert "fc" not in dict(body.named_children()) and "avgpool" not in dict(body.named_children())

    detector = FasterRCNN(backbone, num_classes=3, min_size=96, max_size=128)
    images, targets = _images_and_targets()
    detector.eval()
    with torch.no_grad():
        out = detector(images)
    assert len(out) == 2 and all({"boxes", "labels", "scores"} <= set(o) for o in out)

    detector.train()
    before = {n: p.detach().clone() for n, p in body.named_parameters()}
    optimizer = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=0.01)
    losses = detector(images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    sum(losses.values()).backward()
    optimizer.step()
    after = dict(body.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert not changed & frozen
    assert any(n.startswith("layer4.") for n in changed) and any(n.startswith("layer2.") for n in changed)
    torch.testing.assert_close(body.layer1[0].conv1.bn.running_mean, bn_stats)  # frozen norms did not update


def test_retinanet_with_a_preset_name_and_returned_layers() -> None:
    backbone = fpn_backbone("resnet_18", trainable_layers=0, returned_layers=(2, 3, 4),
                            extra_blocks=LastLevelP6P7(256, 256), num_classes=10)
    assert not any(p.requires_grad for p in backbone.body.parameters())
    assert backbone.body.return_layers == {"layer2": "0", "layer3": "1", "layer4": "2"}
    anchors = AnchorGenerator(tuple((s,) for s in (32, 64, 128, 256, 512)), ((0.5, 1.0, 2.0),) * 5)
    detector = RetinaNet(backbone, num_classes=3, anchor_generator=anchors, min_size=64, max_size=64).eval()
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 64))
        out = detector([torch.rand(3, 64, 64)])
    assert [f.shape[-1] for f in features.values()] == [8, 4, 2, 1, 1]
    assert {"boxes", "labels", "scores"} <= set(out[0])


def test_keep_batchnorm_and_train_everything() -> None:
    backbone = fpn_backbone(_tiny(), trainable_layers=5, norm_layer=torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in backbone.body.parameters())
    assert isinstance(backbone.body.stem[1], torch.nn.BatchNorm2d)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trainable_layers": 6}, "trainable_layers must be an int in 0..5"),
        ({"returned_layers": (0, 1)}, "returned_layers must be increasing stage numbers from 1..4"),
        ({"returned_layers": (3, 2)}, "returned_layers must be increasing"),
        ({"returned_layers": (2.0, 3.0)}, r"returned_layers must be increasing stage numbers .* got \(2\.0, 3\.0\)"),
        ({"trainable_layers": True}, "trainable_layers must be an int in 0..5"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fpn_backbone(_tiny(), **kwargs)


def test_not_a_lucid_model() -> None:
    with pytest.raises(TypeError, match=r"needs a lucid ResNet/ResNeXt .* Linear lacks"):
        fpn_backbone(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="only with a preset name"):
        fpn_backbone(_tiny(), weights="IMAGENET1K_V1")


def test_a_preset_with_published_weights_gets_frozen_norms_in_its_config(tmp_path) -> None:
    import hashlib

    import torchvision

    from lucid.weights import PretrainedWeights, register_pretrained

    reference = torchvision.models.resnet18()
    torch.nn.init.uniform_(reference.bn1.running_var, 0.5, 2.0)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")  # BatchNorm checkpoint, num_batches_tracked included
    digest = hashlib.sha256((tmp_path / "r18.pth").read_bytes()).hexdigest()
    register_pretrained(PretrainedWeights(preset="resnet_18", tag="MIRROR", url=(tmp_path / "r18.pth").as_uri(), sha256=digest[:12]))
    backbone = fpn_backbone("resnet_18", weights="MIRROR")
    body = backbone.body
    assert isinstance(body.stem[1], FrozenBatchNorm2d) and not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    torch.testing.assert_close(body.stem[1].running_var, reference.bn1.running_var)
    torch.testing.assert_close(body.layer4[1].conv2[0].weight, reference.layer4[1].conv2.weight)
