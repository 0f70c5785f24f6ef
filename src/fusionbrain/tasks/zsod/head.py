"""zsOD head: per phrase, ``[prompt] [image tokens] phrase [K box queries]`` -> K boxes + scores.

Each learned box query reads the image and the phrase through the shared body; its
output gives a box (cx, cy, w, h, sigmoid, relative to the image) and a score. Training
uses Hungarian matching (scipy ``linear_sum_assignment``) with an L1 + GIoU + score cost
and loss (DETR-style). At inference, boxes with score >= threshold are the answer (in
pixels, ``[score, x, y, w, h]``); none means the phrase is absent from the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.model.vision import image_key, preprocess

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig

NEEDS_VISION = True
NMS_IOU = 0.7  # near-duplicate boxes of one phrase are merged at inference


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def pairwise_giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and generalised IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = inter / union.clamp(min=1e-7)
    lt_c = torch.min(a[:, None, :2], b[None, :, :2])
    rb_c = torch.max(a[:, None, 2:], b[None, :, 2:])
    hull = (rb_c - lt_c).clamp(min=0).prod(-1)
    return iou, iou - (hull - union) / hull.clamp(min=1e-7)


def to_relative(box: list[float], width: int, height: int) -> list[float]:
    """Pixel [x, y, w, h] -> relative [cx, cy, w, h] clipped to the image."""
    x, y, w, h = (float(v) for v in box[-4:])
    x0, y0 = max(0.0, x) / width, max(0.0, y) / height
    x1, y1 = min(float(width), x + w) / width, min(float(height), y + h) / height
    return [(x0 + x1) / 2, (y0 + y1) / 2, max(0.0, x1 - x0), max(0.0, y1 - y0)]


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    """One row per (image, phrase); the image is encoded once per sample."""
    images = [open_image(s.image_path) for s in samples]
    rows_img, rows_phrase, rows_ids, rows_boxes = [], [], [], []
    for i, (s, im) in enumerate(zip(samples, images, strict=True)):
        for phrase, boxes in s.phrases.items():
            rows_img.append(i)
            rows_phrase.append(phrase)
            ids = tokenizer(" " + " ".join(phrase.split()), add_special_tokens=False)["input_ids"]
            rows_ids.append(ids[: config.zsod_max_phrase_tokens])
            rel = [to_relative(b, *im.size) for b in (boxes or []) if len(b) >= 4]
            rows_boxes.append(torch.tensor([b for b in rel if b[2] > 0 and b[3] > 0],
                                           dtype=torch.float32).reshape(-1, 4))
    return {"task": "zsOD", "ids": [s.id for s in samples],
            "pixels": preprocess(images, config.image_size),
            "image_keys": [image_key(s.image_path) for s in samples],
            "sizes": [im.size for im in images], "row_image": rows_img,
            "row_phrase": rows_phrase, "row_ids": rows_ids, "row_boxes": rows_boxes}


class ZsODHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: Any) -> None:
        super().__init__()
        d = model.hidden_size
        scale = embedding_scale(model)
        self.k = config.zsod_queries
        self.prompt = TaskPrompt(config.prompt_tokens, d, scale)
        self.queries = TaskPrompt(self.k, d, scale)
        self.box = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 4))
        self.score = nn.Linear(d, 1)
        self.threshold = config.zsod_score_threshold
        self.w_l1, self.w_giou, self.w_score = (config.zsod_loss_l1, config.zsod_loss_giou,
                                                config.zsod_loss_score)

    def _outputs(self, model: Any, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, K, 4) relative cxcywh boxes and (R, K) score logits, one row per phrase."""
        img = model.encode_images(batch["pixels"], batch.get("image_keys"))
        p, q = self.prompt(), self.queries()
        parts = [[p, img[i], model.embed_ids(ids), q]
                 for i, ids in zip(batch["row_image"], batch["row_ids"], strict=True)]
        embeds, mask = model.assemble(parts)
        hidden, _ = model.run_body(embeds, mask)
        h = hidden[:, -self.k:]  # left padding: the queries are the last K positions
        return torch.sigmoid(self.box(h)), self.score(h).squeeze(-1)

    def forward(self, model: Any, batch: dict) -> dict[str, torch.Tensor]:
        if not batch["row_ids"]:  # no phrase asked at all: nothing to learn, keep the graph
            zero = sum(p.sum() for p in self.parameters()) * 0.0
            return {"loss": zero}
        boxes, logits = self._outputs(model, batch)
        dev = boxes.device
        score_target = torch.zeros_like(logits)
        pred_sel, true_sel = [], []
        for r, true in enumerate(batch["row_boxes"]):
            if len(true) == 0:
                continue
            true = true.to(dev)
            with torch.no_grad():
                _, giou = pairwise_giou(cxcywh_to_xyxy(boxes[r]), cxcywh_to_xyxy(true))
                cost = (self.w_l1 * torch.cdist(boxes[r], true, p=1) - self.w_giou * giou
                        - self.w_score * torch.sigmoid(logits[r])[:, None])
            qi, ti = linear_sum_assignment(cost.float().cpu().numpy())
            score_target[r, torch.as_tensor(qi, device=dev)] = 1.0
            pred_sel.append(boxes[r, torch.as_tensor(qi, device=dev)])
            true_sel.append(true[torch.as_tensor(ti, device=dev)])
        loss_score = F.binary_cross_entropy_with_logits(logits, score_target)
        if pred_sel:
            pb, tb = torch.cat(pred_sel), torch.cat(true_sel)
            loss_l1 = (pb - tb).abs().sum(-1).mean()
            _, giou = pairwise_giou(cxcywh_to_xyxy(pb), cxcywh_to_xyxy(tb))
            loss_giou = (1 - giou.diagonal()).mean()
        else:
            loss_l1 = loss_giou = boxes.sum() * 0.0  # keeps the graph for absent-only batches
        loss = self.w_l1 * loss_l1 + self.w_giou * loss_giou + self.w_score * loss_score
        return {"loss": loss, "loss_l1": loss_l1.detach(), "loss_giou": loss_giou.detach(),
                "loss_score": loss_score.detach()}

    def predict(self, model: Any, batch: dict) -> list[dict[str, list[list[float]]]]:
        if not batch["row_ids"]:
            return [{} for _ in batch["ids"]]
        boxes, logits = self._outputs(model, batch)
        scores = torch.sigmoid(logits).cpu()
        xyxy = cxcywh_to_xyxy(boxes.float()).clamp(0, 1).cpu()
        out: list[dict[str, list[list[float]]]] = [{} for _ in batch["ids"]]
        for r, (i, phrase) in enumerate(zip(batch["row_image"], batch["row_phrase"],
                                            strict=True)):
            w, h = batch["sizes"][i]
            keep: list[int] = []
            for j in scores[r].argsort(descending=True).tolist():
                if scores[r, j] < self.threshold:
                    break
                if keep:
                    iou, _ = pairwise_giou(xyxy[r, j:j + 1], xyxy[r, keep])
                    if float(iou.max()) > NMS_IOU:
                        continue
                keep.append(j)
            found = []
            for j in keep:
                x0, y0, x1, y1 = xyxy[r, j].tolist()
                found.append([round(float(scores[r, j]), 4), round(x0 * w, 1), round(y0 * h, 1),
                              round((x1 - x0) * w, 1), round((y1 - y0) * h, 1)])
            out[i][phrase] = found
        return out


def build_head(config: FusionBrainConfig, model: Any) -> ZsODHead:
    return ZsODHead(config, model)
