"""The task table: pipeline tag -> demo template, example fields, defaults and extra requirements.

Adding a task is one template under `templates/spaces/tasks/<task>.py.j2` plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Names the generated app recognises as "draw this example yourself", so a bundle stays text-only
# and still has a working example on a machine that cannot fetch the card's example URLs.
BUILTIN_IMAGE = "vitrine-example.png"
BUILTIN_AUDIO = "vitrine-example.wav"
BUILTIN_VIDEO = "vitrine-example.mp4"
# The same scene seen from a little further right, for the demos that compare two images.
BUILTIN_OTHER_IMAGE = "vitrine-example-moved.png"
# A printed invoice, for the document demos.
BUILTIN_DOCUMENT = "vitrine-example-invoice.png"
BUILTIN_MEDIA: dict[str, tuple[str, ...]] = {
    "image": (BUILTIN_IMAGE, BUILTIN_OTHER_IMAGE, BUILTIN_DOCUMENT),
    "audio": (BUILTIN_AUDIO,),
    "video": (BUILTIN_VIDEO,),
}

# Card widget key that holds a media file (a URL, a path inside the Space, or a builtin name).
MEDIA_FIELD = "src"
# Widget key of the second media file, for the demos that take two (keypoint matching).
OTHER_MEDIA_FIELD = "other_src"
MEDIA_FIELDS = (MEDIA_FIELD, OTHER_MEDIA_FIELD)


@dataclass(frozen=True)
class TaskDemo:
    """How one pipeline task becomes a demo."""

    template: str
    """File name under `templates/spaces/tasks/`."""
    fields: tuple[str, ...]
    """Card `widget` keys mapped, in order, onto the leading inputs of the demo."""
    default_examples: tuple[tuple[Any, ...], ...]
    """Example rows (one value per field) used when the card has no widget examples."""
    requirements: tuple[str, ...] = ()
    """Extra requirement lines for the Space beyond transformers and torch."""
    system_packages: tuple[str, ...] = ()
    """Debian packages the Space needs, written to `packages.txt` (which Spaces installs with apt)."""
    media: Literal["image", "audio", "video"] | None = None
    """Kind of file in the `src` (and `other_src`) fields, resolved to a local file when the app starts."""
    pipeline: str = ""
    """`transformers.pipeline` task when it differs from the tag (e.g. sentence-similarity)."""
    shows_labels: bool = False
    """Whether the model's own class names are its answers, so the demo header lists them."""
    emoji: str = "🤗"
    """Space emoji in the README front matter."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Task-specific values handed to the template (defaults for sliders and the like)."""


# Pipeline tags with no demo, and why; the info page shown instead says so. A tag missing from
# both tables gets the generic "no demo template" reason.
UNSUPPORTED: dict[str, str] = {
    "mask-generation": (
        "The transformers `mask-generation` pipeline merges its masks with torchvision's "
        "non-maximum suppression, and this hub's demo runtime has no torchvision."
    ),
    "any-to-any": (
        "An any-to-any model takes and returns any mix of text, images, audio and video, "
        "so no single fixed demo fits it."
    ),
}


def pipeline_task(tag: str) -> str:
    """The `transformers.pipeline` task that serves the pipeline tag `tag`."""
    return TASKS[tag].pipeline or tag


_SENTENCES = (
    "That is a happy person",
    "That is a happy dog\nThat is a very happy person\nToday is a sunny day",
)
_REVIEW = "I love this movie, the story was wonderful!"
_DOCUMENT_QUESTION = "What is the total?"
_DECISION_STATE = "I was charged twice for my order last week and I want my money back now!"
_DECISION_QUESTIONS = """{
  "refund": {"type": "noul", "instructions": "Does the customer ask for a refund?"},
  "topic": {
    "type": "choice",
    "instructions": "What is the message about?",
    "criteria": {"billing": "payments and charges", "shipping": "delivery of the order", "other": "anything else"}
  },
  "anger": {"type": "score", "instructions": "How angry is the customer?", "criteria": ["calm", "annoyed", "furious"]}
}"""
_AUDIO_LABELS = "a dog barking, a piano, a person speaking, a siren"
_TABLE = {
    "headers": ["Repository", "Stars", "Contributors", "Programming language"],
    "data": [
        ["Transformers", "36542", "651", "Python"],
        ["Datasets", "4512", "77", "Python"],
        ["Tokenizers", "3934", "34", "Rust, Python and NodeJS"],
    ],
}

TASKS: dict[str, TaskDemo] = {
    "text-classification": TaskDemo(
        template="text-classification.py.j2",
        fields=("text",),
        default_examples=((_REVIEW,), ("The service was slow and the food was awful.",)),
        emoji="🏷️",
        shows_labels=True,
    ),
    "token-classification": TaskDemo(
        template="token-classification.py.j2",
        fields=("text",),
        default_examples=(("My name is John Smith and I work at Acme Corp in New York.",),),
        emoji="🔖",
        shows_labels=True,
    ),
    "fill-mask": TaskDemo(
        template="fill-mask.py.j2",
        # "[MASK]" is rewritten to the model's own mask token when the app runs.
        fields=("text",),
        default_examples=(("Paris is the [MASK] of France.",), ("The goal of life is [MASK].",)),
        emoji="🧩",
    ),
    "feature-extraction": TaskDemo(
        template="feature-extraction.py.j2",
        fields=("source_sentence", "sentences"),
        default_examples=(_SENTENCES,),
        requirements=("numpy",),
        emoji="📐",
    ),
    # Sentence-transformers models are tagged so; transformers serves them as feature extraction.
    "sentence-similarity": TaskDemo(
        template="feature-extraction.py.j2",
        fields=("source_sentence", "sentences"),
        default_examples=(_SENTENCES,),
        requirements=("numpy",),
        pipeline="feature-extraction",
        emoji="📐",
    ),
    "text-generation": TaskDemo(
        template="text-generation.py.j2",
        fields=("text",),
        default_examples=(("Once upon a time, there lived a king who",),),
        emoji="✍️",
        extra={"max_new_tokens": 50},
    ),
    "zero-shot-classification": TaskDemo(
        template="zero-shot-classification.py.j2",
        fields=("text", "candidate_labels", "multi_class"),
        default_examples=(
            (
                "I have a problem with my phone that needs to be resolved asap!",
                "urgent, not urgent, phone, computer",
                False,
            ),
            (_REVIEW, "music, movies, sport, politics", False),
        ),
        emoji="🎯",
    ),
    "table-question-answering": TaskDemo(
        template="table-question-answering.py.j2",
        fields=("text", "table"),
        default_examples=(("How many stars does the Transformers repository have?", _TABLE),),
        requirements=("pandas",),
        emoji="📊",
    ),
    "image-classification": TaskDemo(
        template="image-classification.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_IMAGE,),),
        requirements=("pillow",),
        media="image",
        emoji="🖼️",
        shows_labels=True,
    ),
    "zero-shot-image-classification": TaskDemo(
        template="zero-shot-image-classification.py.j2",
        fields=(MEDIA_FIELD, "candidate_labels"),
        default_examples=((BUILTIN_IMAGE, "a landscape, a cat, a dog, a car"),),
        requirements=("pillow",),
        media="image",
        emoji="🔭",
    ),
    "object-detection": TaskDemo(
        template="object-detection.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_IMAGE,),),
        # Most DETR-family checkpoints build their backbone with timm.
        requirements=("pillow", "timm"),
        media="image",
        emoji="📦",
        extra={"threshold": 0.5},
        shows_labels=True,
    ),
    "zero-shot-object-detection": TaskDemo(
        template="zero-shot-object-detection.py.j2",
        fields=(MEDIA_FIELD, "candidate_labels"),
        default_examples=((BUILTIN_IMAGE, "the sun, a red box, grass"),),
        requirements=("pillow",),
        media="image",
        emoji="🔎",
        # The pipeline's own default; open-vocabulary scores run lower than closed-set ones.
        extra={"threshold": 0.1},
    ),
    "image-feature-extraction": TaskDemo(
        template="image-feature-extraction.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_IMAGE,),),
        requirements=("pillow", "numpy"),
        media="image",
        emoji="📐",
    ),
    "depth-estimation": TaskDemo(
        template="depth-estimation.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_IMAGE,),),
        requirements=("pillow", "numpy"),
        media="image",
        emoji="🌊",
    ),
    "image-text-to-text": TaskDemo(
        template="image-text-to-text.py.j2",
        fields=(MEDIA_FIELD, "text"),
        default_examples=((BUILTIN_IMAGE, "Describe this image."),),
        requirements=("pillow",),
        media="image",
        emoji="💬",
        extra={"max_new_tokens": 50},
    ),
    "image-segmentation": TaskDemo(
        template="image-segmentation.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_IMAGE,),),
        requirements=("pillow", "numpy"),
        media="image",
        emoji="✂️",
        shows_labels=True,
    ),
    "audio-classification": TaskDemo(
        template="audio-classification.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_AUDIO,),),
        requirements=("numpy",),
        media="audio",
        emoji="🔊",
        shows_labels=True,
    ),
    "automatic-speech-recognition": TaskDemo(
        template="automatic-speech-recognition.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_AUDIO,),),
        requirements=("numpy",),
        media="audio",
        emoji="🎙️",
    ),
    "zero-shot-audio-classification": TaskDemo(
        template="zero-shot-audio-classification.py.j2",
        fields=(MEDIA_FIELD, "candidate_labels"),
        default_examples=((BUILTIN_AUDIO, _AUDIO_LABELS),),
        requirements=("numpy",),
        media="audio",
        emoji="👂",
    ),
    "text-to-audio": TaskDemo(
        template="text-to-audio.py.j2",
        fields=("text",),
        default_examples=(("A calm piano melody with soft rain in the background",),),
        requirements=("numpy",),
        emoji="🎵",
    ),
    # The Hub tags VITS, Bark and SpeechT5 so; transformers serves them as text-to-audio.
    "text-to-speech": TaskDemo(
        template="text-to-audio.py.j2",
        fields=("text",),
        default_examples=(("Hello, my name is Vitrine. How are you today?",),),
        requirements=("numpy",),
        pipeline="text-to-audio",
        emoji="🗣️",
    ),
    "video-classification": TaskDemo(
        template="video-classification.py.j2",
        fields=(MEDIA_FIELD,),
        default_examples=((BUILTIN_VIDEO,),),
        # The pipeline decodes videos with PyAV, whose wheels bundle ffmpeg.
        requirements=("av", "numpy"),
        media="video",
        emoji="🎬",
        shows_labels=True,
    ),
    "document-question-answering": TaskDemo(
        template="document-question-answering.py.j2",
        fields=(MEDIA_FIELD, "text"),
        default_examples=((BUILTIN_DOCUMENT, _DOCUMENT_QUESTION),),
        # LayoutLM-style models read the page with Tesseract; Donut-style models read the pixels themselves.
        requirements=("pillow", "pytesseract"),
        system_packages=("tesseract-ocr",),
        media="image",
        emoji="📄",
        extra={"top_k": 3},
    ),
    "keypoint-matching": TaskDemo(
        template="keypoint-matching.py.j2",
        fields=MEDIA_FIELDS,
        default_examples=((BUILTIN_IMAGE, BUILTIN_OTHER_IMAGE),),
        requirements=("pillow",),
        media="image",
        emoji="🔗",
        extra={"threshold": 0.2},
    ),
    "decision": TaskDemo(
        template="decision.py.j2",
        fields=("state", "questions"),
        default_examples=((_DECISION_STATE, _DECISION_QUESTIONS),),
        emoji="⚖️",
    ),
}
