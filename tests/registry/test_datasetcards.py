"""Dataset tags are derived from the card and the files the way the Hub derives them."""

from __future__ import annotations

from registry.datasetcards import dataset_tags

CARD = {
    "task_categories": ["text-classification"],
    "task_ids": ["sentiment-classification"],
    "annotations_creators": ["expert-generated"],
    "multilinguality": "monolingual",
    "source_datasets": ["original"],
    "language": ["en", "fr"],
    "license": "mit",
    "size_categories": ["1K<n<10K"],
    "tags": ["reviews", "reviews"],
    "pretty_name": "Not a tag",
}


def test_card_fields_become_prefixed_tags_then_files_then_card_tags() -> None:
    tags = dataset_tags(CARD, files=[".gitattributes", "README.md", "data/train-00000.parquet", "data/test.parquet"])
    assert tags == [
        "task_categories:text-classification", "task_ids:sentiment-classification",
        "annotations_creators:expert-generated", "multilinguality:monolingual", "source_datasets:original",
        "language:en", "language:fr", "license:mit", "size_categories:1K<n<10K",
        "format:parquet", "library:datasets", "library:pandas", "library:polars", "reviews",
    ]  # fmt: skip


def test_media_files_give_modality_and_the_folder_loader() -> None:
    files = ["README.md", "train/cat/1.png", "train/dog/2.JPG", "train/metadata.jsonl"]
    assert dataset_tags(None, files=files) == ["format:imagefolder", "modality:image", "library:datasets"]
    assert dataset_tags({}, files=["a.wav", "b.flac"]) == ["format:audiofolder", "modality:audio", "library:datasets"]


def test_the_most_common_data_format_is_the_loader() -> None:
    tags = dataset_tags(None, files=["a.csv", "b.csv", "notes.txt"])
    assert tags[0] == "format:csv" and "format:text" not in tags and "modality:text" in tags


def test_no_card_no_data_files_no_tags_and_junk_values_ignored() -> None:
    assert dataset_tags(None, files=["README.md", ".gitattributes"]) == []
    assert dataset_tags({"license": {"name": "mit"}, "language": [None, "", True, "de"]}, files=[]) == ["language:de"]
