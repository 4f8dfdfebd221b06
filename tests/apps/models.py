"""Tiny, randomly initialised models for every demo task, saved with `save_pretrained`.

Each builder writes a complete model directory (weights, config, tokenizer or processor) that
`transformers.pipeline(task, model=path)` loads offline. The same directories can be pushed to a
Vitrine hub, so hub tests can rerun the demo checks through `HF_ENDPOINT`.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Fixed seed per build so that two builds of the same task give identical weights.
SEED = 0

WORDS = (
    "the a an is was are be to of and in on at for with this that it i you we they he she "
    "my your our their movie film book food service day night city paris london berlin "
    "good great bad awful love hate like happy sad fine nice terrible wonderful boring "
    "capital france germany england john smith lives works acme corp new york name "
    "what who how many which where when sum total average count number actors movies "
    "repository stars contributors language python java rust go brad pitt leonardo "
    "george clooney age sport politics science music cat dog car photo picture sky "
    "hello world today tomorrow once upon time there lived king"
).split()

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EMPTY]"]


def _bert_vocab() -> list[str]:
    """Word-piece vocabulary that can spell any ASCII word (letters and `##` continuations)."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    vocab = BERT_SPECIALS + chars + pieces
    return vocab + [w for w in dict.fromkeys(WORDS) if w not in vocab]


def _bert_tokenizer():  # noqa: ANN202 - transformers types are dynamic
    from transformers import BertTokenizer

    vocab = {token: i for i, token in enumerate(_bert_vocab())}
    return BertTokenizer(vocab=vocab, model_max_length=128)


def _bert_config(**kwargs: Any):  # noqa: ANN202
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(_bert_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        **kwargs,
    )


def _labels(names: list[str]) -> dict[str, Any]:
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def _text_classification(out: Path) -> None:
    from transformers import BertForSequenceClassification

    config = _bert_config(**_labels(["negative", "neutral", "positive"]))
    BertForSequenceClassification(config).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)


def _token_classification(out: Path) -> None:
    from transformers import BertForTokenClassification

    config = _bert_config(**_labels(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]))
    BertForTokenClassification(config).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)


def _fill_mask(out: Path) -> None:
    from transformers import BertForMaskedLM

    BertForMaskedLM(_bert_config()).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)


def _feature_extraction(out: Path) -> None:
    from transformers import BertModel

    BertModel(_bert_config()).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)


def _zero_shot_classification(out: Path) -> None:
    from transformers import BertForSequenceClassification

    # The zero-shot pipeline finds the entailment column by label name, as in MNLI models.
    config = _bert_config(**_labels(["contradiction", "neutral", "entailment"]))
    BertForSequenceClassification(config).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)


def _byte_level_vocab() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {ch: i for i, ch in enumerate(bytes_to_unicode().values())}


def _text_generation(out: Path) -> None:
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    vocab = _byte_level_vocab()
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], model_max_length=128)
    eos = vocab["<|endoftext|>"]
    config = GPT2Config(
        vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=128,
        bos_token_id=eos, eos_token_id=eos,
    )
    model = GPT2LMHeadModel(config)
    # Greedy decoding keeps the demo and the direct pipeline call comparable.
    model.generation_config = GenerationConfig(
        do_sample=False, max_new_tokens=12, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _table_question_answering(out: Path) -> None:
    from transformers import TapasConfig, TapasForQuestionAnswering, TapasTokenizer

    vocab_file = out / "vocab.txt"
    out.mkdir(parents=True, exist_ok=True)
    vocab_file.write_text("\n".join(_bert_vocab()) + "\n", encoding="utf-8")
    tokenizer = TapasTokenizer(vocab_file=str(vocab_file), model_max_length=128)
    config = TapasConfig(
        vocab_size=len(_bert_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128,
        num_aggregation_labels=4,
        aggregation_labels={0: "NONE", 1: "SUM", 2: "AVERAGE", 3: "COUNT"},
    )
    TapasForQuestionAnswering(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _image_classification(out: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, **_labels(["cat", "dog", "car", "sky"]),
    )
    ViTForImageClassification(config).save_pretrained(out)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)


def _clip_tokenizer():  # noqa: ANN202
    from transformers import CLIPTokenizer

    byte_chars = list(_byte_level_vocab())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + byte_chars + [c + "</w>" for c in byte_chars]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=64)


def _zero_shot_image_classification(out: Path) -> None:
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = _clip_tokenizer()
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37,
        "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 64,
        "projection_dim": 16, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1,
    }
    vision = {
        "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
        "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 16,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(out)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)


def _object_detection(out: Path) -> None:
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig
    from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil

    # An explicit transformers backbone config keeps timm (not installed) out of the picture.
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    config = DetrConfig(
        backbone_config=backbone,
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=5,
        **_labels(["cat", "dog", "car"]),
    )
    DetrForObjectDetection(config).save_pretrained(out)
    DetrImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(out)


def _image_feature_extraction(out: Path) -> None:
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37,
    )
    ViTModel(config).save_pretrained(out)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)


def _depth_estimation(out: Path) -> None:
    from transformers import DPTConfig, DPTForDepthEstimation
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    # One reassembled feature map per ViT layer, as DPT needs four.
    config = DPTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=37, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=16,
    )
    DPTForDepthEstimation(config).save_pretrained(out)
    DPTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)


def _zero_shot_object_detection(out: Path) -> None:
    from transformers import CLIPTokenizer, OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    # OWL-ViT treats a query whose first token id is 0 as padding, so the specials go last, as in CLIP.
    byte_chars = list(_byte_level_vocab())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=16)
    text = {
        "vocab_size": len(tokens), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
        "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": len(tokens) - 2,
        "eos_token_id": len(tokens) - 1, "pad_token_id": len(tokens) - 1,
    }
    vision = {
        "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
        "num_hidden_layers": 2, "num_attention_heads": 2,
    }
    # The class head compares image and text embeddings directly, so both sides share one width.
    config = OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
    OwlViTForObjectDetection(config).save_pretrained(out)
    image_processor = OwlViTImageProcessorPil(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
    OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)


# A minimal chat template: each turn is "role: content", images become the processor's <image> token.
_VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def _image_text_to_text(out: Path) -> None:
    from transformers import GenerationConfig, GPT2Tokenizer, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab = _byte_level_vocab()
    eos = vocab["<|endoftext|>"] = len(vocab)
    image_token = vocab["<image>"] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], model_max_length=256)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    text = {
        "model_type": "llama", "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
    }
    vision = {
        "model_type": "clip_vision_model", "image_size": 32, "patch_size": 8, "hidden_size": 32,
        "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
    }
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_id=image_token, vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config)
    # Greedy decoding keeps the demo and the direct pipeline call comparable.
    model.generation_config = GenerationConfig(
        do_sample=False, max_new_tokens=12, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos
    )
    model.save_pretrained(out)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    # 16 patch tokens per image; the CLS token the vision tower adds is dropped ("default" strategy).
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, image_token="<image>", chat_template=_VLM_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


def _image_segmentation(out: Path) -> None:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    from transformers.models.segformer.image_processing_pil_segformer import SegformerImageProcessorPil

    config = SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
        decoder_hidden_size=16, **_labels(["background", "cat", "sky"]),
    )
    SegformerForSemanticSegmentation(config).save_pretrained(out)
    SegformerImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)


def _wav2vec2_config(**kwargs: Any):  # noqa: ANN202
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=8, **kwargs,
    )


def _wav2vec2_feature_extractor():  # noqa: ANN202
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True)


def _audio_classification(out: Path) -> None:
    from transformers import Wav2Vec2ForSequenceClassification

    config = _wav2vec2_config(**_labels(["yes", "no", "up", "down"]))
    Wav2Vec2ForSequenceClassification(config).save_pretrained(out)
    _wav2vec2_feature_extractor().save_pretrained(out)


def _automatic_speech_recognition(out: Path) -> None:
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC, Wav2Vec2Processor

    out.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list(string.ascii_lowercase + "'")
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps({c: i for i, c in enumerate(chars)}), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file))
    config = _wav2vec2_config(vocab_size=len(chars), pad_token_id=0, ctc_loss_reduction="mean")
    Wav2Vec2ForCTC(config).save_pretrained(out)
    processor = Wav2Vec2Processor(feature_extractor=_wav2vec2_feature_extractor(), tokenizer=tokenizer)
    processor.save_pretrained(out)


def _zero_shot_audio_classification(out: Path) -> None:
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    vocab = ["<s>", "<pad>", "</s>", "<unk>", *_byte_level_vocab(), "<mask>"]
    tokenizer = RobertaTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[], model_max_length=32)
    text = {
        "vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 37, "max_position_embeddings": 40, "projection_dim": 16,
    }
    # HTSAT folds the mel spectrogram into a square of side spec_size = 4 x num_mel_bins.
    audio = {
        "num_mel_bins": 16, "spec_size": 64, "window_size": 4, "patch_size": 4, "patch_stride": [4, 4],
        "depths": [1, 1], "num_attention_heads": [1, 2], "patch_embeds_hidden_size": 8, "hidden_size": 16,
        "projection_dim": 16,
    }
    ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).save_pretrained(out)
    # One-second window at 16 kHz: the test clip fits exactly, so no random crop is taken.
    feature_extractor = ClapFeatureExtractor(
        feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=1, fft_window_size=400,
        frequency_max=8000, truncation="rand_trunc",
    )
    ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out)


def _text_to_audio(out: Path) -> None:
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    out.mkdir(parents=True, exist_ok=True)
    chars = ["_", *" abcdefghijklmnopqrstuvwxyz'.,!?"]  # "_" pads and separates characters
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps({c: i for i, c in enumerate(chars)}), encoding="utf-8")
    # Character input (no phonemizer), as the MMS text-to-speech checkpoints use.
    tokenizer = VitsTokenizer(str(vocab_file), pad_token="_", unk_token=None, phonemize=False)
    config = VitsConfig(
        vocab_size=len(chars), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        window_size=2, flow_size=8, spectrogram_bins=9, upsample_initial_channel=16, upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
        duration_predictor_filter_channels=16, duration_predictor_num_flows=1, depth_separable_num_layers=1,
        sampling_rate=16000,
        # No sampling noise: the same text gives the same waveform in the demo and the direct call.
        noise_scale=0.0, noise_scale_duration=0.0,
    )
    VitsModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _video_classification(out: Path) -> None:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    # Four 32x32 frames in tubelets of two; VideoMAE's own video processor needs torchvision, so the
    # pipeline falls back to the image processor and decodes frames with PyAV.
    config = VideoMAEConfig(
        image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=37, **_labels(["dancing", "cooking", "running"]),
    )
    VideoMAEForVideoClassification(config).save_pretrained(out)
    VideoMAEImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)


def _document_question_answering(out: Path) -> None:
    from transformers import LayoutLMConfig, LayoutLMForQuestionAnswering, LayoutLMTokenizerFast

    # LayoutLM, as the most used document QA checkpoints: the pipeline reads the page with Tesseract.
    out.mkdir(parents=True, exist_ok=True)
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(_bert_vocab()) + "\n", encoding="utf-8")
    tokenizer = LayoutLMTokenizerFast(vocab_file=str(vocab_file), model_max_length=128)
    config = LayoutLMConfig(
        vocab_size=len(_bert_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128,
    )
    LayoutLMForQuestionAnswering(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _keypoint_matching(out: Path) -> None:
    from transformers import SuperGlueConfig, SuperGlueForKeypointMatching, SuperPointConfig
    from transformers.models.superglue.image_processing_pil_superglue import SuperGlueImageProcessorPil

    # SuperPoint builds from its config, so no detector weights are fetched; threshold 0 keeps keypoints
    # on random weights, and a cap keeps the matcher small.
    detector = SuperPointConfig(
        encoder_hidden_sizes=[8, 8, 16, 16], decoder_hidden_size=16, descriptor_decoder_dim=16, max_keypoints=32,
        keypoint_threshold=0.0,
    )
    config = SuperGlueConfig(
        keypoint_detector_config=detector, hidden_size=16, keypoint_encoder_sizes=[8, 16],
        gnn_layers_types=["self", "cross"], num_attention_heads=2, sinkhorn_iterations=5,
    )
    SuperGlueForKeypointMatching(config).save_pretrained(out)
    SuperGlueImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(out)


# A minimal chat template: each turn is "role: content".
_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _decision(out: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    # Any chat model answers decision questions by the logits of the option labels, which must be
    # single tokens: Yes/No for yes-no questions, A, B, C... (single bytes here) for the others.
    vocab = _byte_level_vocab()
    eos = vocab["<|endoftext|>"] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], model_max_length=1024)
    tokenizer.add_tokens(["Yes", "No"])
    tokenizer.chat_template = _CHAT_TEMPLATE
    # Byte-level tokens with no merges make long prompts, hence the 1024 positions.
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=1024, bos_token_id=eos,
        eos_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "text-classification": _text_classification,
    "token-classification": _token_classification,
    "fill-mask": _fill_mask,
    "feature-extraction": _feature_extraction,
    "sentence-similarity": _feature_extraction,
    "text-generation": _text_generation,
    "zero-shot-classification": _zero_shot_classification,
    "table-question-answering": _table_question_answering,
    "image-classification": _image_classification,
    "zero-shot-image-classification": _zero_shot_image_classification,
    "object-detection": _object_detection,
    "image-segmentation": _image_segmentation,
    "audio-classification": _audio_classification,
    "automatic-speech-recognition": _automatic_speech_recognition,
    "image-feature-extraction": _image_feature_extraction,
    "depth-estimation": _depth_estimation,
    "zero-shot-object-detection": _zero_shot_object_detection,
    "image-text-to-text": _image_text_to_text,
    "zero-shot-audio-classification": _zero_shot_audio_classification,
    "text-to-audio": _text_to_audio,
    "text-to-speech": _text_to_audio,
    "video-classification": _video_classification,
    "document-question-answering": _document_question_answering,
    "keypoint-matching": _keypoint_matching,
    "decision": _decision,
}


def build_task_model(task: str, out_dir: Path, *, seed: int = SEED) -> Path:
    """Build and save a tiny random model for `task` into `out_dir`; return the directory."""
    if task not in BUILDERS:
        raise KeyError(f"no tiny model builder for task {task!r}; known: {sorted(BUILDERS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BUILDERS[task](out_dir)
    return out_dir
