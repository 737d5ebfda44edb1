"""The input pipeline: reduced-size decode keeps torchvision's crop distribution and the crop's content;
digits are resized per sample; empty class folders are counted; loader defaults; GPU decoding's batch path."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import photo
from PIL import Image
from torchvision.transforms import v2

from lucid.core.errors import OptionError
from lucid.data import DecodeRandomResizedCrop, default_preprocessing, digits_splits, scan_class_folders, train_transform
from lucid.data.decode import draft_request
from lucid.data.loader import (
    EncodedRandomResizedCrop,
    GpuBatchDecoder,
    check_gpu_decode,
    collate_encoded,
    default_workers,
    loader_options,
)


def crop_stats(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Area fraction and log aspect ratio of ``(top, left, h, w)`` boxes."""
    return boxes[:, 2] * boxes[:, 3] / (width * height), np.log(boxes[:, 3] / boxes[:, 2])


def test_crop_boxes_follow_torchvisions_random_resized_crop() -> None:
    width, height, n = 500, 375, 4000
    ours = DecodeRandomResizedCrop(176, 3, scale=(0.08, 1.0))
    torch.manual_seed(1)
    mine = np.array([ours.crop_box(width, height) for _ in range(n)], dtype=np.float64)
    theirs_tf = v2.RandomResizedCrop(176, scale=(0.08, 1.0), antialias=True)
    torch.manual_seed(2)  # a different stream: compare distributions, not draws
    image = torch.empty(0, height, width)
    theirs = np.array([[p["top"], p["left"], p["height"], p["width"]] for p in (theirs_tf.make_params([image]) for _ in range(n))], dtype=np.float64)
    for a, b in zip(crop_stats(mine, width, height), crop_stats(theirs, width, height), strict=True):
        # Two samples of the same distribution: means within 4 standard errors, deciles within 0.04.
        standard_error = np.sqrt(a.var() / n + b.var() / n)
        assert abs(a.mean() - b.mean()) < 4 * standard_error
        assert np.abs(np.quantile(a, np.linspace(0.1, 0.9, 9)) - np.quantile(b, np.linspace(0.1, 0.9, 9))).max() < 0.04
    # Positions are uniform over the free space, as torchvision draws them.
    assert np.all(mine[:, 0] + mine[:, 2] <= height) and np.all(mine[:, 1] + mine[:, 3] <= width)


@pytest.mark.parametrize("box, size, expected_scale", [
    ((0, 0, 375, 500), 176, 2),   # the whole image holds 2x the output: decode at 1/2
    ((0, 0, 100, 100), 176, 1),   # a small crop needs every pixel
    ((10, 20, 370, 480), 64, 4),  # 370 px tall / 64 px out: 1/4 still holds 92 px
])
def test_draft_decodes_at_the_smallest_scale_that_still_holds_the_output(box, size, expected_scale) -> None:
    with Image.open(io.BytesIO(photo())) as image:
        top, left, h, w = box
        image.draft("RGB", draft_request(500, 375, w, h, size))
        assert image.size == (-(-500 // expected_scale), -(-375 // expected_scale))
        scale = image.size[0] / 500
        # The crop still spans the output (to rounding), or every pixel it has.
        assert h * scale >= min(h, size) - 1 and w * scale >= min(w, size) - 1


def test_reduced_decode_gives_the_same_crop_as_decoding_everything() -> None:
    data = photo(seed=3)
    full = v2.functional.pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB"))
    crop = DecodeRandomResizedCrop(96, 3, scale=(0.5, 1.0))
    for seed in range(6):
        torch.manual_seed(seed)
        top, left, h, w = crop.crop_box(500, 375)
        torch.manual_seed(seed)
        ours = crop(data)
        reference = v2.functional.resized_crop(full, top, left, h, w, [96, 96], antialias=True)
        assert ours.shape == (3, 96, 96) and ours.dtype == torch.uint8
        difference = (ours.float() - reference.float()).abs().mean().item()
        assert difference < 4.0, (seed, difference)  # same content; DCT scaling differs from a bilinear filter only slightly


def test_the_training_transform_takes_paths_bytes_and_tensors(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo())
    transform = train_transform(default_preprocessing(64, 3))
    for source in (str(tmp_path / "a.jpg"), photo(), torch.zeros(3, 80, 90, dtype=torch.uint8)):
        out = transform(source)
        assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    grey = train_transform(default_preprocessing(32, 1))(photo())
    assert grey.shape == (1, 32, 32)


def test_digits_are_resized_per_sample_not_all_at_once() -> None:
    import torch.nn.functional as F

    train, val, _, _ = digits_splits(512, 0.2, 0, augment=False)
    # Memory holds the 8x8 originals, whatever the size asked for (512 px for all 1,797 would be 1.9 GB).
    assert train.images.shape[-2:] == (8, 8) and val.images.shape[-2:] == (8, 8)
    image, _ = val[3]
    assert image.shape == (1, 512, 512)
    expected = F.interpolate(val.images[3:4], size=(512, 512), mode="bilinear", align_corners=False).clamp(0, 1)[0]
    assert torch.allclose(image, val.transform(expected))


def test_unreadable_class_folder_is_warned_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "x.png")
    (tmp_path / "c").chmod(0)  # unreadable for a normal user; root reads anything, so refuse it as the OS would
    listing = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(str(path)) == tmp_path / "c":
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    try:
        classes, samples = scan_class_folders(tmp_path)
    finally:
        (tmp_path / "c").chmod(0o755)
    assert classes == ["a", "b", "c"] and len(samples) == 1
    err = capsys.readouterr().err
    assert "1 folder(s) under" in err and "2 class folder(s)" in err and "b, c" in err


def test_empty_class_folders_are_warned_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "x.png")
    (tmp_path / "c" / "notes.txt").write_text("not an image")
    classes, samples = scan_class_folders(tmp_path)
    assert classes == ["a", "b", "c", "d"] and len(samples) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"warning: 3 class folder(s) of {tmp_path} hold no readable image (classes with 0 images): b, c, d"]


def test_loader_defaults_suit_the_machine() -> None:
    workers = default_workers()
    assert 1 <= workers <= 16 and workers <= max(1, len(os.sched_getaffinity(0)) - 1)
    assert default_workers(processes_per_machine=64) == 1
    assert loader_options("cuda", 4) == {"num_workers": 4, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 4}
    assert loader_options("cpu", 0) == {"num_workers": 0, "pin_memory": False}


def test_gpu_decode_is_refused_off_cuda_in_one_line() -> None:
    with pytest.raises(OptionError, match=r"--decode gpu needs a CUDA device, got device 'cpu'; use --decode cpu"):
        check_gpu_decode(torch.device("cpu"))


def test_the_gpu_batch_path_decodes_crops_and_flips_like_the_cpu_path() -> None:
    """The --decode gpu batch path, run on the CPU here (TorchCodec's CPU decoder; this machine has no GPU)."""
    pytest.importorskip("torchcodec")
    prep = default_preprocessing(64, 3)
    encoder = EncodedRandomResizedCrop(64, 3, scale=(0.3, 1.0))
    cpu = DecodeRandomResizedCrop(64, 3, scale=(0.3, 1.0))
    data = [photo(seed=s) for s in range(3)]
    torch.manual_seed(0)
    batch = collate_encoded([(encoder(d), i) for i, d in enumerate(data)] + ["broken.jpg"])
    assert batch.skipped == ["broken.jpg"] and batch.targets.tolist() == [0, 1, 2]
    out = GpuBatchDecoder(prep, torch.device("cpu"))(batch)
    assert out.images.shape == (3, 3, 64, 64)
    torch.manual_seed(0)
    for image, d in zip(out.images, data, strict=True):
        reference = cpu(d)
        if torch.rand(1) < 0.5:  # the flip is drawn after the box, as in the CPU pipeline
            reference = v2.functional.horizontal_flip(reference)
        normalised = (reference.float() / 255 - torch.tensor(prep.mean).view(3, 1, 1)) / torch.tensor(prep.std).view(3, 1, 1)
        assert (image - normalised).abs().mean() < 0.1  # full-size decode + tensor resize vs reduced decode


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_to_normalized_float_is_to_dtype_then_normalize(dtype: torch.dtype) -> None:
    from lucid.data.preprocessing import ToNormalizedFloat

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    image = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)
    image = image if dtype == torch.uint8 else image.float() / 255
    reference = v2.Normalize(list(mean), list(std))(v2.ToDtype(torch.float32, scale=True)(image))
    ours = ToNormalizedFloat(mean, std)(image)
    assert ours.dtype == torch.float32 and torch.allclose(ours, reference, atol=1e-5)
