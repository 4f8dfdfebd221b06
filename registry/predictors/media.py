"""Images and audio in every form a dataset row or an API payload carries them, decoded for a pipeline.

`datasets` stores media in parquet as `{"bytes": ..., "path": ...}`; decoded rows hold PIL images and
`{"array": ..., "sampling_rate": ...}`; JSON payloads carry base64. Local paths are read only when the
caller says so (`allow_paths`), so a live endpoint never opens a file a request names.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InvalidInputError


def media_bytes(value: Any, kind: str, *, allow_paths: bool) -> bytes:
    """The encoded file behind `value`: bytes, base64 text, `{"bytes": ...}`, or a path when allowed."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, dict) and value.get("bytes") is not None:
        return media_bytes(value["bytes"], kind, allow_paths=False)
    elif isinstance(value, dict) and value.get("path") is not None:
        return _read_path(value["path"], kind, allow_paths=allow_paths)
    elif isinstance(value, Path):
        return _read_path(value, kind, allow_paths=allow_paths)
    elif isinstance(value, str):
        if allow_paths and Path(value).is_file():
            return _read_path(value, kind, allow_paths=True)
        data = _decode_base64(value, kind)
    else:
        raise InvalidInputError(f"Cannot read {kind} from {type(value).__name__}.")
    if not data:
        raise InvalidInputError(f"The {kind} is empty.")
    return data


def _read_path(path: Any, kind: str, *, allow_paths: bool) -> bytes:
    if not allow_paths:
        raise InvalidInputError(
            f"The {kind} is given as a path ({path}); send its bytes, or load the predictor with allow_paths=True."
        )
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InvalidInputError(f"Cannot read {kind} file {path}: {e.strerror or e}.") from e


def _decode_base64(text: str, kind: str) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URI
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInputError(f"The {kind} string is not base64 ({e}).") from e


def load_image(value: Any, *, allow_paths: bool = False) -> Any:
    """A PIL RGB image from a PIL image, an HxW(xC) array, bytes, base64, `{"bytes"/"path"}`, or a path.

    Raises:
        InvalidInputError: the value is not an image this reads.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, np.ndarray):
        try:
            return Image.fromarray(value).convert("RGB")
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"Cannot read an image from an array of shape {value.shape}: {e}.") from e
    data = media_bytes(value, "image", allow_paths=allow_paths)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InvalidInputError(f"The image could not be decoded: {e}.") from e


def load_audio(value: Any, sampling_rate: int, *, allow_paths: bool = False) -> np.ndarray:
    """Mono float32 samples at `sampling_rate` from `{"array", "sampling_rate"}`, an encoded file, or a decoder.

    Resampling is the linear interpolation the demos use, so both hear the same signal.

    Raises:
        InvalidInputError: the value is not audio this reads.
    """
    if isinstance(value, dict) and value.get("array") is not None:
        rate = value.get("sampling_rate")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise InvalidInputError(f"Audio 'sampling_rate' must be a positive integer, got {rate!r}.")
        try:
            samples = np.asarray(value["array"])
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"Audio 'array' is not a list of numbers: {e}.") from e
        return to_mono(samples, rate, sampling_rate)
    if hasattr(value, "get_all_samples"):  # a torchcodec AudioDecoder, as `datasets` decodes audio
        decoded = value.get_all_samples()
        # The decoder gives (channels, samples); the demos' arrays are (samples, channels).
        return to_mono(np.asarray(decoded.data).T, int(decoded.sample_rate), sampling_rate)
    samples, rate = decode_audio(media_bytes(value, "audio", allow_paths=allow_paths))
    return to_mono(samples, rate, sampling_rate)


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Samples and sampling rate of an encoded audio file: soundfile when installed, else WAV only.

    Raises:
        InvalidInputError: the bytes are not audio that can be decoded here.
    """
    try:
        import soundfile
    except ImportError:
        return _decode_wav(data)
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (RuntimeError, TypeError, ValueError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise InvalidInputError(f"The audio could not be decoded: {e}.") from e
    return np.asarray(samples), int(rate)


_WAV_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("u1"), 2: np.dtype("<i2"), 4: np.dtype("<i4")}


def _decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as e:
        raise InvalidInputError(
            f"The audio could not be decoded as WAV ({e}); other formats need the soundfile package."
        ) from e
    if width not in _WAV_DTYPES:
        raise InvalidInputError(f"{8 * width}-bit WAV is not supported without the soundfile package.")
    samples = np.frombuffer(frames, dtype=_WAV_DTYPES[width])
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        samples = (samples.astype(np.float32) - 128.0) / 128.0
    return samples.reshape(-1, channels) if channels > 1 else samples, rate


def to_mono(samples: np.ndarray, rate: int, sampling_rate: int) -> np.ndarray:
    """Mono float32 at `sampling_rate`: integers scaled to [-1, 1), channels averaged, linear resampling.

    Raises:
        InvalidInputError: the samples are empty, not numbers, or not finite.
    """
    if not np.issubdtype(samples.dtype, np.number):
        raise InvalidInputError("Audio samples must be numbers.")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = samples.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise InvalidInputError(f"Audio must be a non-empty mono or (samples, channels) array, not {samples.shape}.")
    if not np.isfinite(samples).all():
        raise InvalidInputError("Audio samples must be finite numbers.")
    if rate != sampling_rate and len(samples) > 1:
        count = max(1, round(len(samples) * sampling_rate / rate))
        positions = np.linspace(0, len(samples) - 1, count)
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
    return samples
