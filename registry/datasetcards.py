"""The tags the Hub derives for a dataset from its card's metadata and its files.

The Hub prefixes each card field it understands (`task_categories:text-classification`,
`language:en`, `license:mit`, `size_categories:1K<n<10K`...), names the loader the data files
need (`format:parquet`) and the libraries that read it (`library:datasets`), then appends the
card's own `tags` verbatim. It also reads the columns (through its dataset viewer) to say
`modality:text` or `modality:tabular`; we do not read the data, so modality comes only from
media files (images, audio, video) and plain text files.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# Card fields the Hub turns into `field:value` tags, in the order it lists them.
CARD_FIELDS = (
    "task_categories", "task_ids", "annotations_creators", "language_creators", "multilinguality",
    "source_datasets", "language", "license", "size_categories",
)  # fmt: skip

_IMAGE = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_AUDIO = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".aiff")
_VIDEO = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# Data file suffix -> the `datasets` loader the Hub names in `format:` (compressed variants included).
_FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "json": (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz"),
    "csv": (".csv", ".tsv", ".csv.gz", ".tsv.gz"),
    "text": (".txt", ".txt.gz"),
    "arrow": (".arrow",),
    "webdataset": (".tar",),
    "imagefolder": _IMAGE,
    "audiofolder": _AUDIO,
    "videofolder": _VIDEO,
}
_MODALITIES = {"imagefolder": "image", "audiofolder": "audio", "videofolder": "video", "text": "text"}
# Formats the Hub also offers pandas and polars snippets for.
_DATAFRAME_FORMATS = {"parquet", "json", "csv"}
_NOT_DATA = {"README.md", ".gitattributes"}


def dataset_tags(card_data: dict[str, Any] | None, *, files: list[str]) -> list[str]:
    """The tags of a dataset repo as the Hub lists them, from its card metadata and its file paths.

    Args:
        card_data: the card's YAML header (None when the repo has no card or it is invalid).
        files: every path in the repo.

    Returns:
        Tags without duplicates: prefixed card fields, then `format:`, `modality:`, `library:`, then the card's `tags`.
    """
    card = card_data or {}
    tags = [f"{key}:{value}" for key in CARD_FIELDS for value in _values(card.get(key))]
    formats = _formats(files)
    tags += [f"format:{fmt}" for fmt in formats[:1]]
    tags += [f"modality:{_MODALITIES[fmt]}" for fmt in formats if fmt in _MODALITIES]
    if formats:
        tags.append("library:datasets")
        if formats[0] in _DATAFRAME_FORMATS:
            tags += ["library:pandas", "library:polars"]
    tags += _values(card.get("tags"))
    return list(dict.fromkeys(tags))


def _values(raw: Any) -> list[str]:
    """A card field's values as strings: one scalar or a list of them; anything else is ignored."""
    items = raw if isinstance(raw, list) else [raw]
    return [str(v) for v in items if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v)]


def _formats(files: list[str]) -> list[str]:
    """Formats of the data files, the loader `datasets` would pick first (the most files), then the rest."""
    counts: Counter[str] = Counter()
    has_media = any(f.lower().endswith(_IMAGE + _AUDIO + _VIDEO) for f in files)
    for path in files:
        base = path.rsplit("/", 1)[-1]
        if path in _NOT_DATA or base.startswith("."):
            continue
        if has_media and base.startswith("metadata."):
            continue  # an imagefolder's or audiofolder's captions, not a dataset of its own
        lower = base.lower()
        for fmt, suffixes in _FORMATS.items():
            if lower.endswith(suffixes):
                counts[fmt] += 1
                break
    order = list(_FORMATS)
    return sorted(counts, key=lambda fmt: (-counts[fmt], order.index(fmt)))
