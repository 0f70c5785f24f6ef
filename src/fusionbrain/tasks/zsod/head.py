"""zsOD head: a dense, phrase-conditioned detector on the backbone's spatial map.

Per (image, phrase) row, the shared body reads ``[prompt] [image tokens] phrase [query]``;
its hidden state at the query (the last position) is the phrase code ``q``. The frozen
EfficientNet's stride-16 map (plus its last map, upsampled) becomes a grid of cell
features (CenterNet / FCOS-like). Every cell gets, conditioned on ``q`` (dot product +
FiLM), a match logit and a box (centre offset and size); one more "not in the image"
logit comes from ``q``. Training: softmax cross-entropy over [cells..., absent] (the
target is the true centres' cells, or "absent" when the phrase has no box), and L1 +
GIoU on the boxes of the cells near each true centre. Inference: when
``P(present) >= zsod_score_threshold``, the peak cell's box, plus further local peaks of
at least ``peak_ratio`` of the peak (``max_boxes`` at most) (several instances of one phrase), as
``[score, x, y, w, h]`` in pixels; otherwise ``[]``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.model.vision import image_key, preprocess

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig
    from fusionbrain.model.protocol import HeadModel

NEEDS_VISION = True
NMS_IOU = 0.7  # near-duplicate boxes of one phrase are merged at inference
BOX_PRIOR = 0.15  # initial box side, relative to the image (scene objects: 0.11-0.27)
MAX_OFFSET = 2.0  # a cell's box centre lies within this many cells of the cell's centre
CENTRE_SIGMA = 0.6  # cells: spread of a true centre's target over its neighbour cells
POSITIVE_RADIUS = 1  # cells (Chebyshev) around a true centre that learn its box
# Output policy (config.tasks["zsOD"]: score_threshold / peak_ratio / max_boxes), chosen on
# the valid split (cpu-small, 100 steps; test not used): F1 has no one-to-one matching and
# a wrong box on a present phrase only turns an FN into an FP, so a second peak pays on
# multi-instance phrases (COCO), more than two cost too many FPs.
COORD_FREQS = (1.0, 2.0, 4.0)  # Fourier features of the cell position


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


def elementwise_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matching rows of ``a`` and ``b`` (n, 4), xyxy."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    union = area_a + area_b - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    iou = inter / union.clamp(min=1e-7)
    return iou - (hull - union) / hull.clamp(min=1e-7)


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
            rows_ids.append(ids[: config.task("zsOD").max_phrase_tokens])
            rel = [to_relative(b, *im.size) for b in (boxes or []) if len(b) >= 4]
            rows_boxes.append(torch.tensor([b for b in rel if b[2] > 0 and b[3] > 0],
                                           dtype=torch.float32).reshape(-1, 4))
    return {"task": "zsOD", "ids": [s.id for s in samples],
            "pixels": preprocess(images, config.image_size),
            "image_keys": [image_key(s.image_path) for s in samples],
            "sizes": [im.size for im in images], "row_image": rows_img,
            "row_phrase": rows_phrase, "row_ids": rows_ids, "row_boxes": rows_boxes}


def cell_centres(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(h*w, 2) relative (x, y) centres of the cells, row-major."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)


def coord_features(centres: torch.Tensor) -> torch.Tensor:
    """Cell position -> [x, y, sin/cos of x and y at a few frequencies] (relations: left of...)."""
    feats = [centres]
    for f in COORD_FREQS:
        feats += [torch.sin(math.pi * f * centres), torch.cos(math.pi * f * centres)]
    return torch.cat(feats, -1)


def centre_targets(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(h*w,) target distribution over cells: a small Gaussian at every true centre, each
    object with equal mass (their sum is 1)."""
    centres = cell_centres(h, w, boxes.device)  # (HW, 2)
    scale = torch.tensor([w, h], device=boxes.device, dtype=torch.float32)
    d2 = (((centres[None] - boxes[:, None, :2]) * scale) ** 2).sum(-1)  # (n, HW) in cells²
    g = torch.exp(-d2 / (2 * CENTRE_SIGMA ** 2))
    g = g / g.sum(-1, keepdim=True).clamp(min=1e-12)
    return g.mean(0)


def positive_cells(boxes: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells that learn a box: those within POSITIVE_RADIUS cells of a true centre and
    inside it (always the centre cell); a cell near several takes the smallest box.
    Returns (cell indices, object index of each)."""
    best: dict[int, tuple[float, int]] = {}
    for k, (cx, cy, bw, bh) in enumerate(boxes.tolist()):
        ci, cj = min(h - 1, max(0, int(cy * h))), min(w - 1, max(0, int(cx * w)))
        area = bw * bh
        for di in range(-POSITIVE_RADIUS, POSITIVE_RADIUS + 1):
            for dj in range(-POSITIVE_RADIUS, POSITIVE_RADIUS + 1):
                i, j = ci + di, cj + dj
                if not (0 <= i < h and 0 <= j < w):
                    continue
                if (di or dj) and not (abs((j + 0.5) / w - cx) < bw / 2
                                       and abs((i + 0.5) / h - cy) < bh / 2):
                    continue
                cell = i * w + j
                if cell not in best or area < best[cell][0]:
                    best[cell] = (area, k)
    cells = sorted(best)
    return (torch.tensor(cells, dtype=torch.long),
            torch.tensor([best[c][1] for c in cells], dtype=torch.long))


class ZsODHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: HeadModel) -> None:
        super().__init__()
        d = model.hidden_size
        c = config.task("zsOD").map_channels
        channels, mid_channels = model.vision_channels()
        scale = embedding_scale(model)
        self.prompt = TaskPrompt(config.prompt_tokens, d, scale)
        self.query = TaskPrompt(1, d, scale)  # its body output is the phrase code q
        # cell features from the frozen backbone's maps
        self.mid_in = nn.Sequential(nn.LayerNorm(mid_channels), nn.Linear(mid_channels, c))
        self.last_in = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, c))
        self.coord = nn.Linear(2 + 4 * len(COORD_FREQS), c)
        self.map_norm = nn.LayerNorm(c)
        self.map_conv = nn.Conv2d(c, c, 3, padding=1)  # each cell sees its neighbours
        self.cell_norm = nn.LayerNorm(c)
        # phrase conditioning
        self.q_norm = nn.LayerNorm(d)
        self.q_key = nn.Linear(d, c)
        self.q_film = nn.Linear(d, 2 * c)
        self.cell_mlp = nn.Linear(c, c)
        self.out = nn.Linear(c, 5)  # match logit, dx, dy, w, h (logits)
        self.absent = nn.Linear(d, 1)
        with torch.no_grad():
            # start as plain cell features (FiLM off), boxes at the prior size, and "absent"
            # as likely as all cells together
            self.q_film.weight.zero_()
            self.q_film.bias.zero_()
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()
            self.absent.weight.zero_()
            self.absent.bias.fill_(math.log(max(1, config.image_size // 16) ** 2))
        self.c = c
        self.threshold = config.task("zsOD").score_threshold
        self.peak_ratio = config.task("zsOD").peak_ratio
        self.max_boxes = config.task("zsOD").max_boxes
        self.w_l1, self.w_giou, self.w_score = (config.task("zsOD").loss_l1, config.task("zsOD").loss_giou,
                                                config.task("zsOD").loss_score)

    def _cells(self, model: HeadModel, batch: dict) -> tuple[torch.Tensor, int, int]:
        """(B, H*W, C) cell features of every image, and the grid size."""
        mid, last = model.vision_feature_maps(batch["pixels"], batch.get("image_keys"))
        b, _, h, w = mid.shape
        x = self.mid_in(mid.flatten(2).transpose(1, 2))
        y = self.last_in(last.flatten(2).transpose(1, 2))
        y = y.transpose(1, 2).reshape(b, self.c, *last.shape[2:])
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        x = x + y.flatten(2).transpose(1, 2)
        x = x + self.coord(coord_features(cell_centres(h, w, x.device)))[None]
        z = F.gelu(self.map_norm(x)).transpose(1, 2).reshape(b, self.c, h, w)
        x = x + self.map_conv(z).flatten(2).transpose(1, 2)
        return x, h, w

    def _outputs(self, model: HeadModel, batch: dict
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
        """Per row: cell match logits (R, HW), "absent" logit (R,), cell boxes (R, HW, 4)
        as relative cxcywh, and the grid size."""
        cells, h, w = self._cells(model, batch)
        img = model.encode_images(batch["pixels"], batch.get("image_keys"))
        p, qt = self.prompt(), self.query()
        parts = [[p, img[i], model.embed_ids(ids), qt]
                 for i, ids in zip(batch["row_image"], batch["row_ids"], strict=True)]
        embeds, mask = model.assemble(parts)
        hidden, _ = model.run_body(embeds, mask)
        q = self.q_norm(hidden[:, -1])  # left padding: the query is the last position
        rows = torch.as_tensor(batch["row_image"], device=cells.device)
        f = self.cell_norm(cells[rows])  # (R, HW, C)
        gamma, beta = self.q_film(q).chunk(2, -1)
        g = F.gelu(f * (1 + gamma[:, None]) + beta[:, None])
        g = g + F.gelu(self.cell_mlp(g))
        o = self.out(g)
        logits = o[..., 0] + (f * self.q_key(q)[:, None]).sum(-1) / math.sqrt(self.c)
        centres = cell_centres(h, w, o.device)
        size = torch.tensor([w, h], device=o.device, dtype=torch.float32)
        xy = centres[None] + MAX_OFFSET * torch.tanh(o[..., 1:3]) / size
        # sizes in (0, 1) of the image, starting at BOX_PRIOR; a sigmoid, not a clamped
        # exp, so a size pushed too far early still gets a gradient back
        wh = torch.sigmoid(o[..., 3:5] + math.log(BOX_PRIOR / (1 - BOX_PRIOR)))
        return logits, self.absent(q).squeeze(-1), torch.cat([xy, wh], -1), h, w

    def forward(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        if not batch["row_ids"]:  # no phrase asked at all: nothing to learn, keep the graph
            zero = sum(p.sum() for p in self.parameters()) * 0.0
            return {"loss": zero}
        logits, absent, boxes, h, w = self._outputs(model, batch)
        dev = logits.device
        target = torch.zeros(logits.shape[0], logits.shape[1] + 1, device=dev)
        pred_sel, true_sel = [], []
        for r, true in enumerate(batch["row_boxes"]):
            if len(true) == 0:
                target[r, -1] = 1.0
                continue
            true = true.to(dev)
            target[r, :-1] = centre_targets(true, h, w)
            cells, objs = positive_cells(true, h, w)
            pred_sel.append(boxes[r, cells.to(dev)])
            true_sel.append(true[objs.to(dev)])
        logp = torch.log_softmax(torch.cat([logits, absent[:, None]], -1), -1)
        loss_score = -(target * logp).sum(-1).mean()
        if pred_sel:
            pb, tb = torch.cat(pred_sel), torch.cat(true_sel)
            loss_l1 = (pb - tb).abs().sum(-1).mean()
            loss_giou = (1 - elementwise_giou(cxcywh_to_xyxy(pb), cxcywh_to_xyxy(tb))).mean()
        else:
            loss_l1 = loss_giou = boxes.sum() * 0.0  # keeps the graph for absent-only batches
        loss = self.w_l1 * loss_l1 + self.w_giou * loss_giou + self.w_score * loss_score
        return {"loss": loss, "loss_l1": loss_l1.detach(), "loss_giou": loss_giou.detach(),
                "loss_score": loss_score.detach()}

    def predict(self, model: HeadModel, batch: dict, threshold: float | None = None
                ) -> list[dict[str, list[list[float]]]]:
        if not batch["row_ids"]:
            return [{} for _ in batch["ids"]]
        logits, absent, boxes, h, w = self._outputs(model, batch)
        return self.decode(batch, logits, absent, boxes, h, w,
                           self.threshold if threshold is None else threshold)

    def decode(self, batch: dict, logits: torch.Tensor, absent: torch.Tensor,
               boxes: torch.Tensor, h: int, w: int, threshold: float,
               peak_ratio: float | None = None, max_boxes: int | None = None
               ) -> list[dict[str, list[list[float]]]]:
        """Head outputs -> per sample {phrase: [[score, x, y, w, h], ...]} in pixels."""
        peak_ratio = self.peak_ratio if peak_ratio is None else peak_ratio
        max_boxes = self.max_boxes if max_boxes is None else max_boxes
        probs = torch.softmax(torch.cat([logits, absent[:, None]], -1).float(), -1)
        present = (1 - probs[:, -1]).cpu()
        cell_p = probs[:, :-1]
        # local maxima of the cell probabilities (3 x 3 neighbourhood)
        pooled = F.max_pool2d(cell_p.reshape(-1, 1, h, w), 3, stride=1, padding=1).reshape_as(cell_p)
        is_peak = (cell_p >= pooled).cpu()
        cell_p = cell_p.cpu()
        xyxy = cxcywh_to_xyxy(boxes.float()).clamp(0, 1).cpu()
        out: list[dict[str, list[list[float]]]] = [{} for _ in batch["ids"]]
        for r, (i, phrase) in enumerate(zip(batch["row_image"], batch["row_phrase"],
                                            strict=True)):
            out[i][phrase] = []
            if float(present[r]) < threshold:
                continue
            best = float(cell_p[r].max())
            keep: list[int] = []
            for j in cell_p[r].argsort(descending=True).tolist():
                if not keep:  # the best cell always answers
                    keep.append(j)
                    continue
                if len(keep) >= max_boxes or float(cell_p[r, j]) < peak_ratio * best:
                    break
                if not bool(is_peak[r, j]):
                    continue
                iou, _ = pairwise_giou(xyxy[r, j:j + 1], xyxy[r, keep])
                if float(iou.max()) <= NMS_IOU:
                    keep.append(j)
            iw, ih = batch["sizes"][i]
            for j in keep:
                x0, y0, x1, y1 = xyxy[r, j].tolist()
                if x1 - x0 <= 0 or y1 - y0 <= 0:
                    continue
                score = float(present[r]) * float(cell_p[r, j]) / max(best, 1e-12)
                out[i][phrase].append([round(score, 4), round(x0 * iw, 1), round(y0 * ih, 1),
                                       round((x1 - x0) * iw, 1), round((y1 - y0) * ih, 1)])
        return out


def build_head(config: FusionBrainConfig, model: HeadModel) -> ZsODHead:
    return ZsODHead(config, model)
