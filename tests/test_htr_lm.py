"""HTR's character n-gram and the CTC prefix beam search over it: the n-gram is a proper
distribution and round-trips through its file, the beam reads what greedy reads on clear
columns, lets the n-gram settle a hesitant column, picks the script, and travels with a
saved model; the service's confidences follow the beam's text."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from ctc_frames import frame_log_probs

from fusionbrain.errors import UserError
from fusionbrain.model import FusionBrain
from fusionbrain.serve.inference import _aligned_confidences, readings_from_logits
from fusionbrain.tasks.htr import charset
from fusionbrain.tasks.htr.data import HTRSample
from fusionbrain.tasks.htr.head import greedy_decode
from fusionbrain.tasks.htr.lm import (
    EOS,
    FILE_NAME,
    CharNgramLM,
    beam_decode,
    prefix_beam_search,
    text_posterior,
)

TEXTS = ["cat", "catalogue", "scatter", "cattle", "concat", "Catherine", "vacation"] * 5


def _logp(frames: list[list[tuple[str, float]]]) -> torch.Tensor:
    return frame_log_probs(frames, floor=1e-5)


def _word(text: str, hesitant: dict[int, list[tuple[str, float]]] | None = None
          ) -> torch.Tensor:
    """Clear columns for each character of ``text`` with a blank between, except where
    ``hesitant`` gives a character index its own column."""
    frames: list[list[tuple[str, float]]] = [[("", 0.95)]]
    for i, ch in enumerate(text):
        frames.append((hesitant or {}).get(i, [(ch, 0.95)]))
        frames.append([("", 0.95)])
    return _logp(frames)


def test_ngram_is_a_distribution_over_the_charset_and_end():
    lm = CharNgramLM.fit(TEXTS, order=4)
    for history in ("", "c", "ca", "xyzw", "Cathe"):
        total = sum(lm.prob(history, c) for c in charset.CHARSET) + lm.prob(history, EOS)
        assert total == pytest.approx(1.0, abs=1e-9), history
    # seen spellings beat unseen ones, and nothing is impossible
    assert lm.prob("ca", "t") > lm.prob("ca", "q") > 0


def test_ngram_file_round_trip_and_bad_files(tmp_path):
    lm = CharNgramLM.fit(TEXTS, order=3)
    lm.save(tmp_path / "lm.gz")
    back = CharNgramLM.load(tmp_path / "lm.gz")
    assert back.order == 3 and back.counts == lm.counts
    assert back.prob("ca", "t") == lm.prob("ca", "t")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match="bad.gz"):
        CharNgramLM.load(tmp_path / "bad.gz")
    (tmp_path / "other.gz").write_bytes(gzip.compress(b'{"format": "x"}'))
    with pytest.raises(UserError, match="format"):
        CharNgramLM.load(tmp_path / "other.gz")
    bad_counts = {"format": "fusionbrain-char-ngram/1", "order": 3, "counts": {"ca": {"t": -1}}}
    (tmp_path / "counts.gz").write_bytes(gzip.compress(json.dumps(bad_counts).encode()))
    with pytest.raises(UserError, match="counts after 'ca'"):
        CharNgramLM.load(tmp_path / "counts.gz")


def test_beam_reads_clear_columns_as_greedy_does_repeats_included():
    for text in ("cattle", "all", "aaa", "19.05.2003"):
        logp = _word(text)
        lengths = torch.tensor([logp.shape[1]])
        assert beam_decode(logp, lengths, None) == greedy_decode(logp, lengths) == [text]
        lm = CharNgramLM.fit(TEXTS)
        assert beam_decode(logp, lengths, lm) == [text]


def test_the_ngram_settles_a_hesitant_column():
    # the middle column leans to "o" (0.5 vs 0.42): greedy reads "cot"; after "c" the
    # n-gram of the training texts expects "a", and the beam reads "cat"
    logp = _word("cat", {1: [("o", 0.5), ("a", 0.42)]})
    lengths = torch.tensor([logp.shape[1]])
    assert greedy_decode(logp, lengths) == ["cot"]
    assert beam_decode(logp, lengths, None) == ["cot"]  # no n-gram: the pixels decide
    assert beam_decode(logp, lengths, CharNgramLM.fit(TEXTS), lm_weight=0.5) == ["cat"]
    # a clear column is not overruled
    clear = _word("cot")
    assert beam_decode(clear, lengths, CharNgramLM.fit(TEXTS), lm_weight=0.5) == ["cot"]


def test_one_script_per_image_and_the_ngram_helps_pick_it():
    masks = torch.tensor(list(charset.script_masks().values()))
    # capitals that look alike: the pixels lean Cyrillic in two of three columns
    logp = _word("TOM", {0: [("Т", 0.55), ("T", 0.4)], 1: [("О", 0.55), ("O", 0.4)],
                         2: [("M", 0.5), ("М", 0.45)]})
    lengths = torch.tensor([logp.shape[1]])
    assert beam_decode(logp, lengths, None, masks) == ["ТОМ"]  # never a mix
    latin = CharNgramLM.fit(["TOM", "TOMMY", "TOMAS", "ATOM", "MOTTO"] * 10)
    assert beam_decode(logp, lengths, latin, masks, lm_weight=0.5) == ["TOM"]


def test_search_returns_its_score_and_skips_impossible_classes():
    logp = _word("ab")
    ids, score = prefix_beam_search(logp[0], None, length_bonus=0.0)
    assert charset.decode(ids) == "ab" and score < 0
    masked = logp[0].clone()
    masked[:, charset.encode("a")[0]] = float("-inf")
    ids, _ = prefix_beam_search(masked, None)
    assert "a" not in charset.decode(ids)


def test_aligned_confidences_score_each_character_on_its_columns():
    p = _word("cat", {1: [("o", 0.5), ("a", 0.42)]})[0].exp()
    conf = _aligned_confidences(p, charset.encode("cat"))
    assert len(conf) == 3
    assert conf[0] == pytest.approx(float(p[1, charset.encode("c")[0]]))
    assert conf[1] == pytest.approx(float(p[3, charset.encode("a")[0]]))  # the hesitant one
    assert conf[1] < conf[0]
    # a text longer than the columns can hold has no alignment
    assert _aligned_confidences(p[:2], charset.encode("cat")) == [0.0, 0.0, 0.0]
    # the service's readings: the beam's text, its characters scored where they align
    logits = _word("cat", {1: [("o", 0.5), ("a", 0.42)]})
    lengths = [logits.shape[1]]
    greedy = readings_from_logits(logits, lengths)[0]
    beam = readings_from_logits(logits, lengths, texts=["cat"])[0]
    assert greedy.text == "cot" and beam.text == "cat"
    assert beam.char_conf[1] == pytest.approx(float(p[3, charset.encode("a")[0]]), abs=1e-4)
    assert readings_from_logits(logits, lengths, texts=["cot"])[0] == greedy
    # with the n-gram that chose "a", the hesitant column is re-weighed as the beam weighed it
    lm = CharNgramLM.fit(TEXTS)
    fused = readings_from_logits(logits, lengths, texts=["cat"], lm=lm, decoding={"lm_weight": 0.5})[0]
    assert fused.text == "cat" and fused.char_conf[1] > beam.char_conf[1]
    assert fused.confidence > beam.confidence


def test_script_of_a_text():
    masks = torch.tensor(list(charset.script_masks().values()))
    latin, cyrillic = list(charset.script_masks()).index("latin"), \
        list(charset.script_masks()).index("cyrillic")
    assert charset.script_of("TOM 12", masks) == latin
    assert charset.script_of("ТОМ", masks) == cyrillic
    assert charset.script_of("12.05", masks) is None  # either
    assert charset.script_of("TОM", masks) is None  # a mix


def test_the_ngram_is_fitted_on_training_texts_and_saved_with_the_model(tmp_path):
    model = FusionBrain("tiny", tasks=["HTR"])
    head = model.heads["HTR"]
    assert head.lm is None
    samples = [HTRSample(str(i), "unused.png", t, "en") for i, t in enumerate(TEXTS)]
    model.fit_data({"HTR": samples})
    assert head.lm is not None and head.lm.prob("ca", "t") > head.lm.prob("ca", "x")
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / FILE_NAME).is_file()
    back = FusionBrain.from_pretrained(tmp_path / "m")
    assert back.heads["HTR"].lm is not None
    assert back.heads["HTR"].lm.counts == head.lm.counts
    # keep_fitted (a second stage): a fitted n-gram stays, a missing one is fitted
    back.fit_data({"HTR": samples[:1]}, keep_fitted=True)
    assert back.heads["HTR"].lm.counts == head.lm.counts
    back.fit_data({"HTR": samples[:1]})
    assert back.heads["HTR"].lm.counts != head.lm.counts
    bare = FusionBrain("tiny", tasks=["HTR"])
    bare.fit_data({"HTR": samples}, keep_fitted=True)
    assert bare.heads["HTR"].lm.counts == head.lm.counts
    # greedy by config: nothing fitted, nothing saved
    greedy = FusionBrain(model.config.with_task("HTR", decode="greedy"), tasks=["HTR"])
    greedy.fit_data({"HTR": samples})
    assert greedy.heads["HTR"].lm is None
    greedy.save_pretrained(tmp_path / "m")  # over the folder: the old n-gram goes
    assert not (tmp_path / "m" / FILE_NAME).exists()
    assert FusionBrain.from_pretrained(tmp_path / "m").heads["HTR"].lm is None


def test_text_posterior_is_the_beams_share_of_the_text():
    lm = CharNgramLM.fit(TEXTS)
    clear = _word("cat")[0]
    assert text_posterior(clear, "cat", lm) > 0.95
    hesitant = _word("cat", {1: [("o", 0.5), ("a", 0.42)]})[0]
    share_a = text_posterior(hesitant, "cat", lm, lm_weight=0.5)
    share_o = text_posterior(hesitant, "cot", lm, lm_weight=0.5)
    assert 0 < share_o < share_a and share_a + share_o <= 1.0 + 1e-9
    # without the n-gram's help the pixels' lean to "o" shows
    assert text_posterior(hesitant, "cot", None) > text_posterior(hesitant, "cat", None) > 0.2
    assert text_posterior(clear, "dog", lm) == 0.0  # not among the final hypotheses
