"""Inference helpers of the service: safe image decoding, HTR with calibrated confidences.

Confidence of an HTR reading. The head's CTC output is read greedily (best class per
column, repeats collapsed, blanks dropped). Each character of the reading comes from a run
of columns with that class; its confidence is the highest posterior of that class in its
run, from ``softmax(logits / T)``. The item's confidence is the product of its characters'
confidences (the chance that every character is right if they erred independently; an empty
reading gets the lowest blank posterior). ``T`` is a temperature fitted on a held-out slice
of reviewed items (:func:`fit_temperature`: the T on a log grid that minimises the binary
cross-entropy between item confidence and "the reading was exactly right"), saved as
``calibration.json`` in the model folder; a model without one uses T = 1 (uncalibrated).
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

CALIBRATION_NAME = "calibration.json"


class ImageProblem(Exception):
    """An upload that is not a usable image; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, name: str, max_pixels: int, mode: str = "RGB") -> Image.Image:
    """Bytes -> a loaded PIL image, refusing bombs (pixel count read from the header first)."""
    if not data:
        raise ImageProblem(422, f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageProblem(413, f"{name}: image of {w}x{h} = {w * h} pixels is over the "
                                        f"limit of {max_pixels} pixels")
            if w < 1 or h < 1:
                raise ImageProblem(422, f"{name}: image has no pixels")
            im.load()
            return im.convert(mode)
    except ImageProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageProblem(413, f"{name}: {e}") from None
    except Exception as e:  # PIL raises many types on broken files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageProblem(422, f"{name}: not a readable image ({msg})") from None


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Reading:
    text: str
    confidence: float
    char_conf: list[float]


def load_temperature(model_dir: str | Path | None) -> float:
    """The calibrated temperature saved with a model (1.0 when there is none)."""
    if model_dir is None:
        return 1.0
    p = Path(model_dir) / CALIBRATION_NAME
    try:
        t = float(json.loads(p.read_text())["temperature"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1.0
    return t if math.isfinite(t) and t > 0 else 1.0


def htr_logits(model: Any, images: list) -> tuple[Any, list[int]]:
    """The HTR head's CTC logits (B, T, C) for images (PIL or paths) and their lengths.

    Where the head decodes one script per image, the other script's classes come back at
    -inf, so every reading here equals ``predict``'s."""
    import torch

    from fusionbrain.tasks.htr.data import HTRSample
    from fusionbrain.tasks.htr.head import keep_script

    samples = [HTRSample(str(i), im, "", "") for i, im in enumerate(images)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batch = model.collate("HTR", samples, train=False)
            head = model.heads["HTR"]
            logits = head._logits(model, batch)[0].float().cpu()
            masks = head.decode_masks() if hasattr(head, "decode_masks") else None
            if masks is not None:
                logits = keep_script(torch.log_softmax(logits, -1), batch["input_lengths"], masks)
    finally:
        model.train(was_training)
    return logits, [int(n) for n in batch["input_lengths"]]


def readings_from_logits(logits: Any, lengths: list[int], temperature: float = 1.0
                         ) -> list[Reading]:
    """Greedy CTC readings with per-character and item confidences (see module doc)."""
    import torch

    from fusionbrain.tasks.htr import charset

    probs = torch.softmax(logits / temperature, -1)
    best = probs.argmax(-1)
    out = []
    for i, n in enumerate(lengths):
        ids = best[i, :n].tolist()
        p = probs[i, :n]
        chars: list[int] = []
        conf: list[float] = []
        prev = charset.BLANK
        for t, c in enumerate(ids):
            if c != charset.BLANK:
                if c != prev:
                    chars.append(c)
                    conf.append(float(p[t, c]))
                else:  # same run: keep the run's highest posterior
                    conf[-1] = max(conf[-1], float(p[t, c]))
            prev = c
        text = charset.decode(chars)
        if conf:
            item = float(math.exp(sum(math.log(max(c, 1e-12)) for c in conf)))
        else:
            item = float(p[:, charset.BLANK].min()) if n else 0.0
        out.append(Reading(text, item, [round(c, 4) for c in conf]))
    return out


def read_htr(model: Any, images: list, temperature: float = 1.0) -> list[Reading]:
    logits, lengths = htr_logits(model, images)
    return readings_from_logits(logits, lengths, temperature)


def calibrate(model: Any, samples: list, batch_size: int = 32) -> dict[str, float]:
    """:func:`fit_temperature` of ``model``'s HTR readings of labelled ``samples``."""
    chunks = [htr_logits(model, [s.image_path for s in samples[i:i + batch_size]])
              for i in range(0, len(samples), batch_size)]
    return fit_temperature(chunks, [s.text for s in samples])


def fit_temperature(logits_list: list[tuple[Any, list[int]]], truths: list[str]
                    ) -> dict[str, float]:
    """The temperature (log grid 0.25..8) minimising the BCE of item confidence vs exact match.

    ``logits_list``: (logits, lengths) chunks in the order of ``truths``. Returns the
    temperature, the BCE at T = 1 and at the fitted T, and the held-out size.
    """
    def bce(t: float) -> float:
        total, k = 0.0, 0
        for logits, lengths in logits_list:
            for r in readings_from_logits(logits, lengths, t):
                y = 1.0 if r.text == truths[k] else 0.0
                c = min(max(r.confidence, 1e-6), 1 - 1e-6)
                total -= y * math.log(c) + (1 - y) * math.log(1 - c)
                k += 1
        return total / max(1, k)

    grid = [2 ** (e / 4) for e in range(-8, 13)]
    scores = {t: bce(t) for t in grid}
    best = min(scores, key=lambda t: (scores[t], abs(math.log(t))))
    return {"temperature": best, "bce_t1": bce(1.0), "bce": scores[best],
            "n": float(len(truths))}
