"""Inference helpers of the service: safe image decoding, HTR with calibrated confidences.

Confidence of an HTR reading. The text is the head's own (``predict``'s: beam search with
its character n-gram, or greedy), probabilities come from ``softmax(logits / T)``.
- Greedy: each character comes from a run of columns with that class; its confidence is the
  highest posterior of that class in its run. The item's confidence is the product of its
  characters' (the chance that every character is right if they erred independently; an
  empty reading gets the lowest blank posterior).
- Beam with the n-gram: each character's columns are those of the best CTC alignment of the
  text, their posteriors re-weighed by the n-gram as the beam weighed them; the item's
  confidence is the beam's posterior of the text (its share of the final hypotheses).

``T`` is a temperature fitted on a held-out slice of reviewed items (:func:`fit_temperature`:
the T on a log grid that minimises the binary cross-entropy between item confidence and "the
reading was exactly right"), saved as ``calibration.json`` in the model folder; a model
without one uses T = 1 (uncalibrated).
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


@dataclass
class HTROutput:
    """The HTR head's output for a batch of images, as the service reads it."""

    logits: Any  # (B, T, C); where the head reads one script per image, the other at -inf
    lengths: list[int]
    texts: list[str] | None  # the head's own readings (``predict``'s); None: greedy
    lm: Any = None  # the head's character n-gram, when its readings use one
    decoding: dict[str, float] | None = None  # the head's beam settings


def htr_logits(model: Any, images: list) -> HTROutput:
    """The HTR head's CTC logits for images (PIL or paths), their lengths and the head's own
    texts for them (its beam search with the character n-gram, where it has one).

    Each image's logits keep only the classes of its reading's script (greedy: the script
    ``predict`` picks), so a greedy reading here equals the greedy ``predict``'s."""
    import torch

    from fusionbrain.tasks.htr import charset
    from fusionbrain.tasks.htr.data import HTRSample
    from fusionbrain.tasks.htr.head import keep_script

    samples = [HTRSample(str(i), im, "", "") for i, im in enumerate(images)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batch = model.collate("HTR", samples, train=False)
            head = model.heads["HTR"]
            lengths = batch["input_lengths"]
            logits = head._logits(model, batch)[0].float().cpu()
            logp = torch.log_softmax(logits, -1)
            masks = head.decode_masks() if hasattr(head, "decode_masks") else None
            lm = getattr(head, "lm", None) if getattr(head, "beam", False) else None
            texts = head.read(logp, lengths) if lm is not None else None
            if masks is not None:
                logits = keep_script(logp, lengths, masks)
                if texts is not None:  # the beam's script, which its n-gram helped pick
                    for i, text in enumerate(texts):
                        k = charset.script_of(text, masks)
                        if k is not None:
                            logits[i] = logp[i].masked_fill(~masks[k], float("-inf"))
    finally:
        model.train(was_training)
    return HTROutput(logits, [int(n) for n in lengths], texts, lm,
                     dict(getattr(head, "decoding", {})))


def _greedy_confidences(p: Any) -> tuple[list[int], list[float]]:
    """The greedy path's characters and each one's highest posterior in its run."""
    from fusionbrain.tasks.htr import charset

    chars: list[int] = []
    conf: list[float] = []
    prev = charset.BLANK
    for t, c in enumerate(p.argmax(-1).tolist()):
        if c != charset.BLANK:
            if c != prev:
                chars.append(c)
                conf.append(float(p[t, c]))
            else:  # same run: keep the run's highest posterior
                conf[-1] = max(conf[-1], float(p[t, c]))
        prev = c
    return chars, conf


def _alignment(p: Any, ids: list[int]) -> list[list[int]] | None:
    """The columns each character of ``ids`` takes in the best CTC alignment (Viterbi over
    blank, c1, blank, c2, ..., blank) of posteriors ``p`` (T, C); None where none fits."""
    import numpy as np

    from fusionbrain.tasks.htr import charset

    logp = np.log(np.clip(p.numpy(), 1e-30, None))
    states = [charset.BLANK]
    for c in ids:
        states += [c, charset.BLANK]
    n, t_len = len(states), logp.shape[0]
    if t_len == 0:
        return None
    score = np.full((t_len, n), -np.inf)
    back = np.zeros((t_len, n), dtype=np.int64)
    score[0, 0] = logp[0, states[0]]
    if n > 1:
        score[0, 1] = logp[0, states[1]]
    for t in range(1, t_len):
        for s in range(n):
            options = [(score[t - 1, s], s)]
            if s >= 1:
                options.append((score[t - 1, s - 1], s - 1))
            if s >= 2 and states[s] != charset.BLANK and states[s] != states[s - 2]:
                options.append((score[t - 1, s - 2], s - 2))
            best, k = max(options)
            score[t, s], back[t, s] = best + logp[t, states[s]], k
    s = n - 1 if n == 1 or score[-1, n - 1] >= score[-1, n - 2] else n - 2
    if not np.isfinite(score[-1, s]):
        return None
    columns: list[list[int]] = [[] for _ in ids]
    for t in range(t_len - 1, -1, -1):
        if s % 2 == 1:
            columns[s // 2].append(t)
        s = int(back[t, s])
    return columns


def _aligned_confidences(p: Any, ids: list[int], lm: Any = None, lm_weight: float = 0.0
                         ) -> list[float]:
    """Each character's highest posterior over its aligned columns (0 where no alignment
    fits). With the head's n-gram the posterior of each column is re-weighed as the beam
    weighs it, p(c) * (P_lm(c | the characters before) / the likeliest's) ** lm_weight (the
    blank and the n-gram's favourite keep their p), renormalised: a letter the n-gram chose
    over a hesitant column is not scored as if the pixels alone had to decide."""
    import torch

    from fusionbrain.tasks.htr import charset

    columns = _alignment(p, ids) if ids else []
    if columns is None:
        return [0.0] * len(ids)
    conf = []
    for k, (c, cols) in enumerate(zip(ids, columns, strict=True)):
        if lm is not None and lm_weight:
            history = charset.decode(ids[:k])
            lm_p = p.new_tensor([lm.prob(history, ch) for ch in charset.CHARSET])
            weights = torch.cat([lm_p.new_ones(1), (lm_p / lm_p.max()) ** lm_weight])
            fused = p[cols] * weights
            fused = fused / fused.sum(-1, keepdim=True).clamp(min=1e-30)
            conf.append(float(fused[:, c].max()))
        else:
            conf.append(float(p[cols, c].max()))
    return conf


def readings_from_logits(logits: Any, lengths: list[int], temperature: float = 1.0,
                         texts: list[str] | None = None, lm: Any = None,
                         decoding: dict[str, float] | None = None) -> list[Reading]:
    """Readings with per-character and item confidences (see module doc): the greedy texts,
    or ``texts`` (the head's beam search) with each character scored on its aligned columns.
    With the head's n-gram ``lm`` (and its beam ``decoding`` settings) the characters are
    re-weighed as the beam did, and the item's confidence is the beam's posterior of the
    text (:func:`~fusionbrain.tasks.htr.lm.text_posterior` at this temperature)."""
    import torch

    from fusionbrain.tasks.htr import charset
    from fusionbrain.tasks.htr.lm import text_posterior

    decoding = decoding or {}
    scaled = logits / temperature
    probs = torch.softmax(scaled, -1)
    out = []
    for i, n in enumerate(lengths):
        p = probs[i, :n]
        chars, conf = _greedy_confidences(p)
        if texts is not None and (lm is not None or texts[i] != charset.decode(chars)):
            chars = charset.encode(texts[i])
            conf = _aligned_confidences(p, chars, lm, decoding.get("lm_weight", 0.0))
        text = charset.decode(chars)
        if lm is not None and texts is not None:
            item = text_posterior(torch.log_softmax(scaled[i, :n], -1), text, lm, **decoding)
        elif conf:
            item = float(math.exp(sum(math.log(max(c, 1e-12)) for c in conf)))
        else:
            item = float(p[:, charset.BLANK].min()) if n else 0.0
        out.append(Reading(text, item, [round(c, 4) for c in conf]))
    return out


def read_htr(model: Any, images: list, temperature: float = 1.0) -> list[Reading]:
    out = htr_logits(model, images)
    return readings_from_logits(out.logits, out.lengths, temperature, out.texts, out.lm,
                                out.decoding)


def calibrate(model: Any, samples: list, batch_size: int = 32) -> dict[str, float]:
    """:func:`fit_temperature` of ``model``'s HTR readings of labelled ``samples``."""
    chunks = [htr_logits(model, [s.image_path for s in samples[i:i + batch_size]])
              for i in range(0, len(samples), batch_size)]
    return fit_temperature(chunks, [s.text for s in samples])


def fit_temperature(logits_list: list[HTROutput], truths: list[str]) -> dict[str, float]:
    """The temperature (log grid 0.25..8) minimising the BCE of item confidence vs exact match.

    ``logits_list``: :func:`htr_logits` chunks in the order of ``truths``. Returns the
    temperature, the BCE at T = 1 and at the fitted T, and the held-out size.
    """
    def bce(t: float) -> float:
        total, k = 0.0, 0
        for o in logits_list:
            for r in readings_from_logits(o.logits, o.lengths, t, o.texts, o.lm, o.decoding):
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
