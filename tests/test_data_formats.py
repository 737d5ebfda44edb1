"""Every --data format gives the same samples: image folders, WebDataset shards (pack output, brace
patterns, list files) and Hugging Face datasets (save_to_disk, parquet); bad shards and labels."""
from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("webdataset")
datasets = pytest.importorskip("datasets")

from data_fixtures import CLASSES, make_folder  # noqa: E402

from lucid.core.errors import DataError  # noqa: E402
from lucid.data import (  # noqa: E402
    ImageDataset,
    default_preprocessing,
    detect_format,
    eval_dataset,
    make_splits,
    open_source,
)
from lucid.data.pack import data_info, pack  # noqa: E402


def _decoded(image: torch.Tensor) -> torch.Tensor:
    """No transform: the dataset decodes each image at full size and hands it over as it is."""
    return image


def decoded(source, records_part: str = "all") -> Counter:
    """The multiset of (pixel bytes, class name) of a source's part, decoded at full size."""
    records = source.parts[records_part]
    dataset = ImageDataset(records, _decoded)
    return Counter((image.numpy().tobytes(), records.classes[target]) for image, target in (dataset[i] for i in range(len(dataset))))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "folder")


def test_folder_to_shards_to_hf_keeps_every_image_and_label(folder: Path, tmp_path: Path) -> None:
    original = decoded(open_source(folder))
    assert sum(original.values()) == 18
    manifest = pack(str(folder), tmp_path / "shards", shard_size=4)
    assert detect_format(str(tmp_path / "shards")) == "shards"
    assert [f["samples"] for f in manifest["parts"]["all"]["files"]] == [4, 4, 4, 4, 2]
    assert decoded(open_source(tmp_path / "shards")) == original
    pack(str(tmp_path / "shards"), tmp_path / "hf", fmt="hf")
    hf = open_source(tmp_path / "hf")
    assert hf.kind == "hf" and hf.classes == CLASSES
    assert decoded(hf) == original
    # The HF dataset is an ordinary save_to_disk dataset with a ClassLabel.
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))["train"]
    assert loaded.features["label"].names == CLASSES and len(loaded) == 18


def test_brace_pattern_and_list_file_name_the_same_shards(folder: Path, tmp_path: Path) -> None:
    pack(str(folder), tmp_path / "s", shard_size=5)
    whole = decoded(open_source(tmp_path / "s"))
    pattern = open_source(str(tmp_path / "s" / "shard-{000000..000003}.tar"))
    (tmp_path / "s" / "shards.txt").write_text("shard-000000.tar\nshard-000001.tar\n# a comment\nshard-000002.tar\nshard-000003.tar\n")
    listed = open_source(tmp_path / "s" / "shards.txt")
    assert decoded(pattern) == decoded(listed) == whole
    assert pattern.classes == CLASSES  # classes.txt beside the shards


def test_train_and_val_parts_survive_packing_in_both_formats(folder: Path, tmp_path: Path) -> None:
    both = tmp_path / "both"
    make_folder(both / "train", per_class=4)
    make_folder(both / "val", per_class=2)
    prep = default_preprocessing(16, 3)
    pack(str(both), tmp_path / "s")
    pack(str(both), tmp_path / "h", fmt="hf")
    for location in (both, tmp_path / "s", tmp_path / "h"):
        splits = make_splits(open_source(location), None, 0, prep)
        assert (len(splits.train), len(splits.val)) == (12, 6), location
        assert splits.classes == CLASSES and sorted(splits.val.targets) == [0, 0, 1, 1, 2, 2]
        with pytest.raises(DataError, match="--val-split"):
            make_splits(open_source(location), 0.2, 0, prep)
        # lucid eval reads the val part, classes matched by name.
        assert len(eval_dataset(open_source(location), ["x", *CLASSES], prep)) == 6


def test_val_split_is_the_same_for_every_format(folder: Path, tmp_path: Path) -> None:
    pack(str(folder), tmp_path / "s", shard_size=7)
    pack(str(folder), tmp_path / "h", fmt="hf")
    prep = default_preprocessing(16, 3)
    held_out = []
    for location in (folder, tmp_path / "s", tmp_path / "h"):
        source = open_source(location)
        splits = make_splits(source, 0.25, 3, prep)
        assert splits.description["val_split"] == 0.25 and splits.description["seed"] == 3
        val = ImageDataset(splits.val.records, _decoded, indices=splits.val.indices)
        held_out.append(Counter((val[i][0].numpy().tobytes(), val[i][1]) for i in range(len(val))))
    assert held_out[0] == held_out[1] == held_out[2] and sum(held_out[0].values()) == 4  # round(18 * 0.25)


def test_parquet_files_with_a_class_label(folder: Path, tmp_path: Path) -> None:
    pack(str(folder), tmp_path / "h", fmt="hf")
    datasets.load_from_disk(str(tmp_path / "h"))["train"].to_parquet(str(tmp_path / "d.parquet"))
    source = open_source(tmp_path / "d.parquet")
    assert source.kind == "hf" and source.classes == CLASSES
    assert decoded(source) == decoded(open_source(folder))


def test_hf_string_labels_missing_labels_and_columns(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    rows = {"picture": [buffer.getvalue()] * 4, "kind": ["b", "a", None, "b"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match="--image-column"):
        open_source(tmp_path / "d")
    source = open_source(tmp_path / "d", image_column="picture", label_column="kind")
    records = source.parts["all"]
    assert records.classes == ["a", "b"] and len(records) == 3 and source.skipped == {"all": 1}
    assert [records.target(i) for i in range(3)] == [1, 0, 1]


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_samples_without_a_label_are_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s").mkdir()
    _tar(tmp_path / "s" / "a.tar", {"0.png": _png(), "0.cls": b"1", "1.png": _png(), "2.png": _png(), "2.json": b'{"label": 0}',
                                     "3.cls": b"0"})
    source = open_source(tmp_path / "s")
    assert len(source.parts["all"]) == 2 and source.skipped == {"all": 2}
    assert source.classes == ["0", "1"]  # no classes.txt: indices as names
    assert "2 sample(s) without an image or a label were skipped" in capsys.readouterr().err


@pytest.mark.parametrize("members, message", [
    ({"0.png": b"", "0.cls": b"7"}, r"label 7; expected a class index in \[0, 2\)"),
    ({"0.png": b"", "0.json": b'{"label": "dog"}'}, "names class 'dog', which is not in the shards' class list"),
    ({"0.png": b"", "0.cls": b"one"}, "is not a label"),
])
def test_labels_outside_the_class_list_are_refused_in_one_line(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "classes.txt").write_text("ant\nbee\n")
    _tar(tmp_path / "s" / "a.tar", members)
    with pytest.raises(DataError, match=message) as error:
        open_source(tmp_path / "s")
    assert "\n" not in str(error.value)


def test_a_damaged_shard_is_refused_in_one_line(folder: Path, tmp_path: Path) -> None:
    pack(str(folder), tmp_path / "s", shard_size=20)
    shard = tmp_path / "s" / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:3000] + b"\x01" * 700)
    with pytest.raises(DataError, match="shard-000000.tar is not a readable") as error:
        open_source(tmp_path / "s")
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match=r"2 shard\(s\) missing"):
        open_source(str(tmp_path / "s" / "missing-{0..1}.tar"))


def test_mismatched_val_classes_are_refused(tmp_path: Path) -> None:
    make_folder(tmp_path / "d" / "train", per_class=2)
    (tmp_path / "d" / "val" / "dog").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "val" / "dog" / "x.png")
    with pytest.raises(DataError, match=r"class\(es\) \['dog'\]"):
        make_splits(open_source(tmp_path / "d"), None, 0, default_preprocessing(16, 3))


def test_pack_re_encodes_large_images_and_writes_checksums(tmp_path: Path) -> None:
    make_folder(tmp_path / "big", per_class=2, size=(300, 120))
    manifest = pack(str(tmp_path / "big"), tmp_path / "s", max_side=64)
    source = open_source(tmp_path / "s")
    sizes = {ImageDataset(source.parts["all"], _decoded)[i][0].shape for i in range(6)}
    assert sizes == {(3, 26, 64)}  # long side 300 -> 64, aspect kept (120 * 64 / 300 = 25.6)
    assert json.loads((tmp_path / "s" / "manifest.json").read_text()) == manifest
    assert data_info(str(tmp_path / "s"), verify=True)["mismatched"] == []
    shard = tmp_path / "s" / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:-1] + b"x")
    assert data_info(str(tmp_path / "s"), verify=True)["mismatched"] == ["shard-000000.tar: sha256 differs"]


def test_pack_is_atomic_and_refuses_to_replace_other_folders(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lucid.data import pack as pack_module

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds other files"):
        pack(str(folder), tmp_path / "taken")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pack_module, "_file_entry", fail)
    with pytest.raises(OSError):
        pack(str(folder), tmp_path / "out", shard_size=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "taken"]  # nothing half-written is left


def test_exactly_once_under_two_ranks_with_workers_and_same_order_for_same_seed(folder: Path, tmp_path: Path) -> None:
    from torch.utils.data import DataLoader, DistributedSampler

    pack(str(folder), tmp_path / "s", shard_size=5)
    dataset = ImageDataset(open_source(tmp_path / "s").parts["all"], _EncodedSize())
    indexed = _IndexOf(dataset)

    def epoch(seed: int, epoch: int, workers: int = 0) -> list[list[int]]:
        seen = []
        for rank in range(2):
            sampler = DistributedSampler(indexed, num_replicas=2, rank=rank, shuffle=True, seed=seed, drop_last=False)
            sampler.set_epoch(epoch)
            loader = DataLoader(indexed, batch_size=3, sampler=sampler, num_workers=workers)
            seen.append([i for batch in loader for i in batch.tolist()])
        return seen

    first = epoch(seed=5, epoch=0, workers=2)
    assert sorted(first[0] + first[1]) == list(range(18))  # 18 samples, 9 per rank: each seen once
    assert epoch(seed=5, epoch=0) == first and epoch(seed=5, epoch=1) != first


class _EncodedSize:
    """A transform that takes the encoded image and returns its size in bytes."""

    decodes_sources = True

    def __call__(self, source: bytes) -> torch.Tensor:
        return torch.tensor(len(source))


class _IndexOf(torch.utils.data.Dataset):
    """Reads every sample through the shard index (so workers really open the shards) and returns its index."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> int:
        size, _ = self.dataset[index]
        assert int(size) > 100  # the encoded bytes of a 40x32 image were read
        return index


def test_lucid_eval_scores_every_format_alike(tmp_path: Path) -> None:
    from lucid.inference.predict import Trained, evaluate_folder
    from lucid.models import create_model

    both = tmp_path / "both"
    make_folder(both / "train", per_class=2)
    make_folder(both / "val", per_class=3)
    pack(str(both), tmp_path / "s")
    pack(str(both), tmp_path / "h", fmt="hf")
    model = create_model("resnet_18", num_classes=4, channels=[8, 16, 32, 64]).eval()
    trained = Trained(model, ["zebra", *CLASSES], default_preprocessing(32, 3), {})
    scores = [evaluate_folder(trained, str(location), device=torch.device("cpu"), amp_dtype=None, channels_last=False)
              for location in (both, tmp_path / "s", tmp_path / "h")]
    for score in scores[1:]:
        assert score["acc1"] == scores[0]["acc1"] and abs(score["loss"] - scores[0]["loss"]) < 1e-5
    assert [s["count"] for s in scores] == [9, 9, 9]  # the val part only (3 per class), not the 6 training images


def test_numbers_that_size_memory_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lucid.data import shards

    (tmp_path / "s").mkdir()
    _tar(tmp_path / "s" / "a.tar", {"0.png": _png(), "0.cls": b"999999999999"})
    with pytest.raises(DataError, match=r"label 999999999999; expected a class index in \[0, 1000000\)"):
        open_source(tmp_path / "s")  # no class list: the largest index would size the classifier
    _tar(tmp_path / "s" / "a.tar", {"0.png": _png(), "0.json": b'{"label": 0, "pad": "' + b"x" * 70_000 + b'"}'})
    with pytest.raises(DataError, match="a label is at most 65536"):
        open_source(tmp_path / "s")
    monkeypatch.setattr(shards, "MAX_CLASSES", 3)
    (tmp_path / "s" / "classes.txt").write_text("a\nb\nc\nd\n")
    with pytest.raises(DataError, match="must be 1 to 3 strings"):
        open_source(tmp_path / "s")
