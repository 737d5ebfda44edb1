"""Datasets and the input pipeline: image folders, the bundled digits, preprocessing and transforms."""
from __future__ import annotations

from .folder import (
    DIGITS_MEAN,
    DIGITS_STD,
    Batch,
    DataError,
    DigitsDataset,
    ImageFileDataset,
    Preprocessing,
    collate_skipping,
    decode_image_file,
    default_preprocessing,
    describe_transform,
    digits_splits,
    eval_transform,
    folder_splits,
    min_crop_scale,
    scan_class_folders,
    train_transform,
)

__all__ = [
    "Batch",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "DataError",
    "DigitsDataset",
    "ImageFileDataset",
    "Preprocessing",
    "collate_skipping",
    "decode_image_file",
    "default_preprocessing",
    "describe_transform",
    "digits_splits",
    "eval_transform",
    "folder_splits",
    "min_crop_scale",
    "scan_class_folders",
    "train_transform",
]
