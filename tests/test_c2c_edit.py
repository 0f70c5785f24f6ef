"""C2C text-editing decoder: alignment, labels, phrase vocabulary, reconstruction, and the
edit head on the tiny model (trains, predicts, windows, save/load, the generate path)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from fusionbrain.model import FusionBrain, preset
from fusionbrain.tasks.c2c import edit
from fusionbrain.tasks.c2c import head as c2c_head
from fusionbrain.tasks.c2c.data import C2CSample, read_avatar

AVATAR_TEST = (Path(__file__).resolve().parents[1]
               / "src/fusionbrain/assets/avatar-g4g/test.jsonl")

PAIRS = [
    C2CSample("0", "static int f ( int a ) { return a + 1 ; }",
              "def f ( a ) : NEW_LINE INDENT return a + 1 NEW_LINE DEDENT"),
    C2CSample("1", "static int g ( int b ) { int c = b * 2 ; return c ; }",
              "def g ( b ) : NEW_LINE INDENT c = b * 2 NEW_LINE return c NEW_LINE DEDENT"),
    C2CSample("2", "static void h ( int n ) { for ( int i = 0 ; i < n ; i ++ ) "
                   "System . out . println ( i ) ; }",
              "def h ( n ) : NEW_LINE INDENT for i in range ( n ) : NEW_LINE INDENT "
              "print ( i ) NEW_LINE DEDENT DEDENT"),
]


# -- torch-free part: edit.py ---------------------------------------------------------
def test_align_example_and_realize_roundtrip_on_real_pairs():
    src = "static int f ( int a ) { return a + 1 ; }".split()
    e = edit.align(src, PAIRS[0].python.split())
    assert len(e.keep) == len(src) and len(e.added) == len(src) + 1
    assert e.keep[:2] == [False, False] and e.added[0] == "def"  # static int -> def
    assert e.keep[src.index("f")] and not e.keep[4]  # the parameter's type goes
    assert e.added[src.index("{")] == ": NEW_LINE INDENT"
    # "; }" -> "NEW_LINE DEDENT": each Java token gets its own counterpart
    assert e.added[-3:] == ["NEW_LINE", "DEDENT", ""] and e.keep[-2:] == [False, False]
    # every real AVATAR pair is rebuilt exactly from its gold edit
    pairs = read_avatar(AVATAR_TEST)[:150]
    assert len(pairs) == 150
    for s in pairs:
        g = edit.align(s.java.split(), s.python.split())
        assert edit.realize(s.java.split(), g.keep, g.added) == " ".join(s.python.split()), s.id


def test_realize_copies_an_untagged_tail_and_handles_empty():
    assert edit.realize("a b c".split(), [True], ["x", "", "", "y"]) == "x a b c y"
    assert edit.realize([], [], ["pass"]) == "pass"
    assert edit.realize([], [], [""]) == ""


def test_vocabulary_labels_and_oracle():
    pairs = [(s.java, s.python) for s in PAIRS]
    vocab = edit.phrase_vocabulary(pairs, 500)
    assert vocab[0] == edit.NO_PHRASE and len(set(vocab)) == len(vocab)
    counts = Counter(p for j, py in pairs for p in edit.align(j.split(), py.split()).added)
    assert [counts[p] for p in vocab[1:]] == sorted((counts[p] for p in vocab[1:]), reverse=True)
    assert set(vocab) == set(counts) | {""}  # all fit in 500: the most frequent first
    assert edit.phrase_vocabulary(pairs, 3) == vocab[:3]
    index = {p: i for i, p in enumerate(vocab)}
    for java, python in pairs:  # every phrase in the vocabulary: labels rebuild the target
        keep, phrase = edit.labels(java.split(), python.split(), index)
        assert -100 not in phrase
        out = edit.realize(java.split(), [k == edit.KEEP for k in keep], [vocab[i] for i in phrase])
        assert out == python
        assert edit.oracle(java, python, vocab) == python
    # an out-of-vocabulary phrase is ignored by the loss and left out by the oracle
    small = edit.phrase_vocabulary(pairs, 2)
    _, phrase = edit.labels(PAIRS[2].java.split(), PAIRS[2].python.split(),
                            {p: i for i, p in enumerate(small)})
    assert -100 in phrase and set(phrase) - {-100} <= {0, 1}
    assert edit.oracle(PAIRS[2].java, PAIRS[2].python, small) != PAIRS[2].python


def test_fit_config_builds_the_vocabulary_only_for_edit():
    cfg = preset("tiny")
    assert c2c_head.fit_config(cfg, PAIRS) == {}
    fitted = FusionBrain.fit_config(cfg.replace(c2c_decoder="edit", c2c_max_phrases=4),
                                    {"C2C": PAIRS})
    assert fitted.c2c_phrases == edit.phrase_vocabulary(
        [(s.java, s.python) for s in PAIRS], 4)
    assert len(fitted.c2c_phrases) == 4 and fitted.c2c_phrases[0] == ""


def test_windows_tag_every_token_once_within_the_limit():
    pieces = [[1] * n for n in (3, 1, 2, 5, 1, 1, 2, 9, 1)]
    wins = c2c_head._windows(pieces, 6, whole=True)
    tagged = [i for _, a, b in wins for i in range(a, b)]
    assert tagged == list(range(len(pieces)))
    for ctx, a, b in wins:
        assert ctx <= a and (b - a == 1 or sum(map(len, pieces[ctx:b])) <= 6)
    assert c2c_head._windows(pieces, 6, whole=False) == [(0, 0, 3)]
    assert c2c_head._windows([], 6, whole=True) == [(0, 0, 0)]


# -- the edit head on the tiny model ------------------------------------------------------
@pytest.fixture(scope="module")
def edit_model() -> FusionBrain:
    cfg = FusionBrain.fit_config(preset("tiny").replace(c2c_decoder="edit"), {"C2C": PAIRS})
    return FusionBrain(cfg, tasks=["C2C"])


def test_edit_head_trains_and_predicts(edit_model):
    model = edit_model
    model.train()
    batch = model.collate("C2C", PAIRS)
    assert batch["keep"] is not None and len(batch["sources"]) == len(PAIRS)
    opt = torch.optim.Adam(model.trainable_parameters("C2C"), lr=3e-3)
    losses = []
    for _ in range(8):
        out = model("C2C", batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.5 * losses[0]
    # LoRA in the shared body learns from the edit loss too
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in model.body.named_parameters() if "lora_" in n)
    preds = model.predict("C2C", PAIRS + [C2CSample("e", "", "")])
    assert len(preds) == 4 and all(isinstance(p, str) for p in preds)
    assert "def" in preds[0].split()  # learnt from 3 pairs: functions start with def


def test_edit_head_reads_the_body(edit_model):
    """The tags come from the shared body: perturbing one of its weights changes them."""
    edit_model.eval()
    batch = edit_model.collate("C2C", PAIRS)
    head = edit_model.heads["C2C"]
    with torch.no_grad():
        before = head._edit_logits(edit_model, batch)[1].clone()
        w = edit_model.blocks[0].mlp.down_proj.weight
        saved = w.clone()
        w.add_(torch.randn_like(w) * w.std() * 2)
        try:
            after = head._edit_logits(edit_model, batch)[1]
        finally:
            w.copy_(saved)
    assert not torch.allclose(before, after, atol=1e-5)


def test_long_source_is_tagged_in_windows(edit_model):
    """A source longer than c2c_max_source_tokens: prediction tags it window by window."""
    model = edit_model
    cfg = model.config
    model.config = cfg.replace(c2c_max_source_tokens=8)
    try:
        batch = model.collate("C2C", PAIRS, train=False)
        assert len(batch["sources"]) > len(PAIRS) and max(map(len, batch["sources"])) <= 9
        train = model.collate("C2C", PAIRS)
        assert len(train["sources"]) == len(PAIRS) and train["phrase"][2][-1] == -100
        preds = model.predict("C2C", PAIRS)
    finally:
        model.config = cfg
    assert all(isinstance(p, str) for p in preds)
    # with KEEP everywhere and no phrases, the output would be the whole Java source
    head = model.heads["C2C"]
    with torch.no_grad():
        head.keep_out.bias.copy_(torch.tensor([50.0, -50.0]))
        head.phrase_out.bias.zero_()
        head.phrase_out.bias[0] = 50.0
        # the raw decode (no repair step): the tags alone decide the text
        model.config = cfg.replace(c2c_max_source_tokens=8, c2c_repair="none")
        try:
            copied = model.predict("C2C", PAIRS)
        finally:
            model.config = cfg
    assert copied == [" ".join(s.java.split()) for s in PAIRS]


def test_save_load_keeps_phrases_and_predictions(edit_model, tmp_path):
    edit_model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert again.config.c2c_decoder == "edit"
    assert again.config.c2c_phrases == edit_model.config.c2c_phrases
    assert again.heads["C2C"].phrases == edit_model.heads["C2C"].phrases
    assert again.predict("C2C", PAIRS) == edit_model.predict("C2C", PAIRS)


def test_generate_path_still_works(edit_model):
    """The default decoder: a generate head on the same body (no second model to load)."""
    model = edit_model
    cfg = preset("tiny").replace(c2c_max_target_tokens=6)
    gen = c2c_head.build_head(cfg, model)
    assert gen.decoder == "generate" and not hasattr(gen, "phrase_out")
    batch = c2c_head.collate(PAIRS[:2], tokenizer=model.tokenizer, config=cfg)
    assert "decoder" not in batch and batch["targets"][0][-1] == model.eos_id
    loss = gen(model, batch)["loss"]
    assert torch.isfinite(loss) and loss.item() > 1.0  # random body: about log(vocab)
    with torch.no_grad():
        out = gen.predict(model, c2c_head.collate(PAIRS[:2], tokenizer=model.tokenizer,
                                                  config=cfg, train=False))
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
