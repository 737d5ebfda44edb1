"""`lucid predict` takes folders (every image under them, as training does) and keeps odd file names on one line."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lucid.cli import main
from lucid.core.constants import IMAGENET_MEAN, IMAGENET_STD
from lucid.data.preprocessing import Preprocessing
from lucid.models import ResNet, ResNetConfig


@pytest.fixture
def run(tmp_path: Path) -> Path:
    model = ResNet(ResNetConfig(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), num_classes=3))
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    model.save_pretrained(tmp_path / "run", metadata={"class_names": ["a", "b", "c"], "preprocessing": prep})
    return tmp_path / "run"


def test_a_folder_is_every_image_under_it(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos = tmp_path / "photos" / "flower"
    (photos / "deeper").mkdir(parents=True)
    for path in (photos / "1.png", photos / "deeper" / "2.jpg"):
        Image.new("RGB", (40, 40), (10, 200, 10)).save(path)
    (photos / "notes.txt").write_text("not an image")
    assert main(["predict", str(run), str(photos)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(photos / "1.png"), str(photos / "deeper" / "2.jpg")]
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(run), str(tmp_path / "empty")]) == 1
    assert "a folder without image files" in capsys.readouterr().err


def test_a_newline_in_a_file_name_stays_on_one_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    odd = tmp_path / "bad\nname.png"
    odd.write_bytes(b"not a png")
    assert main(["predict", str(run), str(odd)]) == 1
    warning = capsys.readouterr().err.splitlines()[0]
    assert warning.startswith("warning: ") and "bad\\nname.png" in warning and "cannot decode" in warning
