"""Datasets and the input pipeline: image folders, WebDataset shards, Hugging Face datasets, the bundled
digits, preprocessing, reduced-size decoding, loader defaults, and ``lucid data pack``/``info``.

The entry point for ``--data`` is :func:`open_source`, which recognises the format; :func:`make_splits`
turns a source into training and validation datasets (map-style, with ``.classes`` and ``.targets``).
"""
from __future__ import annotations

from ..core.errors import DataError
from .decode import DecodeRandomResizedCrop, decode_image_file, open_image
from .digits import DIGITS_MEAN, DIGITS_STD, DigitsDataset, digits_splits
from .folder import ImageFileDataset, folder_records, folder_splits, scan_class_folders
from .loader import EncodedRandomResizedCrop, GpuBatchDecoder, collate_encoded, default_workers, gpu_decode_pipeline, loader_options
from .preprocessing import Preprocessing, default_preprocessing, describe_transform, eval_transform, min_crop_scale, train_transform
from .records import Batch, FolderRecords, ImageDataset, Records, collate_skipping
from .sources import FORMATS, detect_format, open_source, open_splits
from .splits import Source, Splits, eval_dataset, make_splits

__all__ = [
    "Batch",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "DataError",
    "DecodeRandomResizedCrop",
    "DigitsDataset",
    "EncodedRandomResizedCrop",
    "FORMATS",
    "FolderRecords",
    "GpuBatchDecoder",
    "ImageDataset",
    "ImageFileDataset",
    "Preprocessing",
    "Records",
    "Source",
    "Splits",
    "collate_encoded",
    "collate_skipping",
    "decode_image_file",
    "default_preprocessing",
    "default_workers",
    "describe_transform",
    "detect_format",
    "digits_splits",
    "eval_dataset",
    "eval_transform",
    "folder_records",
    "folder_splits",
    "gpu_decode_pipeline",
    "loader_options",
    "make_splits",
    "min_crop_scale",
    "open_image",
    "open_source",
    "open_splits",
    "scan_class_folders",
    "train_transform",
]
