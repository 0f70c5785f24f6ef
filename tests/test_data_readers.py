"""Readers of real datasets, challenge formats and the training format (small fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fusionbrain.data.report import SkipReport
from fusionbrain.errors import UserError
from fusionbrain.tasks.c2c import data as c2c_data
from fusionbrain.tasks.c2c import formats as c2c_formats
from fusionbrain.tasks.htr import data as htr_data
from fusionbrain.tasks.htr import formats as htr_formats
from fusionbrain.tasks.vqa import data as vqa_data
from fusionbrain.tasks.vqa import formats as vqa_formats
from fusionbrain.tasks.zsod import coco
from fusionbrain.tasks.zsod import data as zsod_data
from fusionbrain.tasks.zsod import formats as zsod_formats


def image(path: Path, size=(40, 20), colour=128, fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour, 255 - colour, 60)).save(path, fmt)
    return path


def truncated(path: Path, fmt: str = "PNG") -> Path:
    """A real image cut in half: opens fine, fails to decode."""
    image(path, size=(200, 120), fmt=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def reasons(report: SkipReport) -> list[str]:
    return [e.reason.split(":")[0] for e in report.entries]


# --- HTR ------------------------------------------------------------------------------------

def test_copybook_skips_bad_items_and_reports_them(tmp_path):
    image(tmp_path / "images" / "good.png")
    image(tmp_path / "images" / "ru.png")
    image(tmp_path / "images" / "digits.png")
    truncated(tmp_path / "images" / "corrupt.png")
    image(tmp_path / "images" / "empty.png")
    image(tmp_path / "images" / "greek.png")
    labels = {"good.png": "hello", "ru.png": "привет", "digits.png": "1984",
              "corrupt.png": "word", "missing.png": "gone", "empty.png": "  ",
              "greek.png": "λόγος"}
    (tmp_path / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), "utf-8")
    report = SkipReport()
    samples = htr_data.read_copybook(tmp_path / "labels.json", report=report)
    assert [(s.id, s.text, s.lang) for s in samples] == [
        ("good.png", "hello", "en"), ("ru.png", "привет", "ru"), ("digits.png", "1984", "en")]
    assert all(Path(s.image_path).is_absolute() for s in samples)
    assert sorted(e.item for e in report.entries) == ["corrupt.png", "empty.png", "greek.png",
                                                      "missing.png"]
    assert sorted(reasons(report)) == ["corrupt image", "empty transcription", "missing file",
                                       "unknown language"]


def test_copybook_all_bad_is_a_user_error(tmp_path):
    truncated(tmp_path / "a.png")
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": "x", "b.png": "y"}), "utf-8")
    with pytest.raises(UserError, match="all 2 items are unusable"):
        htr_data.read_copybook(tmp_path / "labels.json", images_dir=tmp_path)


def test_htr_challenge_round_trip(tmp_path):
    src = [htr_data.HTRSample("0", str(image(tmp_path / "src" / "a.jpg", fmt="JPEG")), "дом", "ru"),
           htr_data.HTRSample("1", str(image(tmp_path / "src" / "b.png")), "house", "en")]
    inp = tmp_path / "input" / "HTR"
    written = htr_formats.write_input(src, inp)
    truth = htr_formats.truth_json(written)
    assert truth == {"0.png": "дом", "1.png": "house"}
    assert htr_formats.truth_json(src) == truth  # keys follow the ids, not the file names
    with Image.open(inp / "images" / "0.png") as im:
        assert im.format == "PNG"  # converted: the challenge wants PNG
    unlabelled = htr_formats.read_input(inp)
    assert [(s.id, s.text) for s in unlabelled] == [("0.png", ""), ("1.png", "")]
    (tmp_path / "true_HTR.json").write_text(json.dumps(truth, ensure_ascii=False), "utf-8")
    back = htr_data.read_challenge(inp, tmp_path / "true_HTR.json")
    assert back == written
    assert htr_formats.prediction_json(back, ["дом", "hose"]) == {"0.png": "дом", "1.png": "hose"}


def test_htr_read_input_skips_corrupt_and_orders_numerically(tmp_path):
    inp = tmp_path / "HTR"
    for n in ("10.png", "2.png", "1.png"):
        image(inp / "images" / n)
    truncated(inp / "images" / "3.png")
    report = SkipReport()
    samples = htr_formats.read_input(inp, report)
    assert [s.id for s in samples] == ["1.png", "2.png", "10.png"]
    assert [e.item for e in report.entries] == ["3.png"]


# --- training format --------------------------------------------------------------------------

def test_split_round_trip_copies_images_and_skips_bad_records(tmp_path):
    a = image(tmp_path / "src1" / "x.png", colour=10)
    b = image(tmp_path / "src2" / "x.png", colour=200)  # same name, other image
    samples = [htr_data.HTRSample("s0", str(a), "one", "en"),
               htr_data.HTRSample("s1", str(b), "два", "ru"),
               htr_data.HTRSample("s2", str(a), "again", "en")]
    folder = tmp_path / "train" / "HTR"
    htr_data.write_split(samples, folder)
    lines = [json.loads(x) for x in (folder / "samples.jsonl").read_text("utf-8").splitlines()]
    assert [x["image_path"] for x in lines] == ["images/x.png", "images/x-1.png", "images/x.png"]
    back = htr_data.read_split(folder)
    assert [(s.id, s.text, s.lang) for s in back] == [(s.id, s.text, s.lang) for s in samples]
    assert Path(back[1].image_path).read_bytes() == b.read_bytes()
    # bad records: malformed line, unknown language, missing image
    with open(folder / "samples.jsonl", "a", encoding="utf-8") as f:
        f.write("{not json\n")
        f.write(json.dumps({"id": "s3", "image_path": "images/x.png", "text": "t",
                            "lang": "de"}) + "\n")
        f.write(json.dumps({"id": "s4", "image_path": "images/nope.png", "text": "t",
                            "lang": "en"}) + "\n")
    report = SkipReport()
    assert len(htr_data.read_split(folder, report)) == 3
    assert sorted(reasons(report)) == ["malformed JSON", "missing file", "unknown language"]


def test_vqa_and_zsod_and_c2c_split_round_trip(tmp_path):
    img = str(image(tmp_path / "scene.jpg", fmt="JPEG"))
    v = [vqa_data.VQASample("q1", img, "What colour?", ["red", "red", "pink"], "en", "colour")]
    z = [zsod_data.ZsODSample("z1", img, {"красный круг": [[1.0, 2.0, 3.0, 4.0]], "куб": []},
                              "ru")]
    c = [c2c_data.C2CSample("c1", "int f ( ) { return 1 ; }", "def f ( ) : NEW_LINE INDENT "
                            "return 1 NEW_LINE DEDENT")]
    for mod, samples, name in ((vqa_data, v, "VQA"), (zsod_data, z, "zsOD"), (c2c_data, c, "C2C")):
        mod.write_split(samples, tmp_path / name)
        back = mod.read_split(tmp_path / name)
        for s in back:
            if hasattr(s, "image_path"):
                assert Path(s.image_path).parent == (tmp_path / name / "images").resolve()
                s.image_path = img
        assert back == samples


# --- VQA --------------------------------------------------------------------------------------

def _vqa_v2(tmp_path: Path) -> tuple[Path, Path, Path]:
    imgs = tmp_path / "val2014"
    image(imgs / "COCO_val2014_000000000042.jpg", fmt="JPEG")
    truncated(imgs / "COCO_val2014_000000000043.jpg", fmt="JPEG")
    qs = {"data_subtype": "val2014", "questions": [
        {"image_id": 42, "question": "What is on the table?", "question_id": 420},
        {"image_id": 42, "question": "How many cats?", "question_id": 421},
        {"image_id": 43, "question": "Is it broken?", "question_id": 430},
        {"image_id": 44, "question": "Where is it?", "question_id": 440},
        {"image_id": 42, "question": "Unanswered?", "question_id": 422}]}
    ten = ["cup", "mug", "cup", "cup", "tea cup", "cup", "mug", "cup", "cup", "glass"]
    anns = {"annotations": [
        {"question_id": 420, "answers": [{"answer": a, "answer_id": i + 1}
                                         for i, a in enumerate(ten)],
         "multiple_choice_answer": "cup", "answer_type": "other"},
        {"question_id": 421, "answers": [{"answer": "2"}] * 10,
         "multiple_choice_answer": "2", "answer_type": "number"},
        {"question_id": 430, "answers": [{"answer": "yes"}] * 10, "multiple_choice_answer": "yes"},
        {"question_id": 440, "answers": [{"answer": "home"}] * 10,
         "multiple_choice_answer": "home"}]}
    qp, ap = tmp_path / "q.json", tmp_path / "a.json"
    qp.write_text(json.dumps(qs), "utf-8")
    ap.write_text(json.dumps(anns), "utf-8")
    return qp, ap, imgs


def test_vqa_v2_keeps_ten_answers_and_skips_bad(tmp_path):
    qp, ap, imgs = _vqa_v2(tmp_path)
    report = SkipReport()
    samples = vqa_data.read_vqa_v2(qp, ap, imgs, report=report)
    assert [s.id for s in samples] == ["420", "421"]
    assert len(samples[0].answers) == 10 and samples[0].answers[0] == "cup"
    assert sorted(samples[0].answers) == sorted(["cup", "mug", "cup", "cup", "tea cup", "cup",
                                                 "mug", "cup", "cup", "glass"])
    assert samples[1].question_type == "number" and samples[0].lang == "en"
    assert sorted(e.item for e in report.entries) == ["422", "430", "440"]
    assert sorted(reasons(report)) == ["corrupt image", "missing annotation", "missing file"]
    # Without annotations: unlabelled; with a custom pattern.
    (imgs / "42.jpg").write_bytes((imgs / "COCO_val2014_000000000042.jpg").read_bytes())
    un = vqa_data.read_vqa_v2(qp, None, imgs, pattern="{image_id}.jpg", report=SkipReport())
    assert [s.id for s in un] == ["420", "421", "422"] and all(s.answers == [] for s in un)


def test_vqa_challenge_round_trip_detects_language(tmp_path):
    img1 = str(image(tmp_path / "a.jpg", fmt="JPEG"))
    img2 = str(image(tmp_path / "b.jpg", colour=20, fmt="JPEG"))
    src = [vqa_data.VQASample("0", img1, "Какого цвета куб?", ["красный"], "ru", "colour"),
           vqa_data.VQASample("1", img1, "How many cubes?", ["2"], "en", "count"),
           vqa_data.VQASample("2", img2, "What is it?", ["cup", "mug", "cup"], "en", "")]
    inp = tmp_path / "input" / "VQA"
    written = vqa_formats.write_input(src, inp)
    qs = json.loads((inp / "questions.json").read_text("utf-8"))
    assert set(qs["0"]) == {"file_name", "question"}  # no language in questions.json
    assert qs["0"]["file_name"] == qs["1"]["file_name"] != qs["2"]["file_name"]
    truth = vqa_formats.truth_json(written)
    assert truth["0"] == {"answer": "красный", "question_id": 0, "lang": "ru"}
    assert truth["2"]["answer"] == ["cup", "mug", "cup"]
    unlabelled = vqa_formats.read_input(inp)
    assert [s.lang for s in unlabelled] == ["ru", "en", "en"]
    tp = tmp_path / "true_VQA.json"
    tp.write_text(json.dumps(truth, ensure_ascii=False), "utf-8")
    back = vqa_data.read_challenge(inp, tp)
    assert [(s.id, s.question, s.answers, s.lang) for s in back] == \
        [(s.id, s.question, s.answers, s.lang) for s in src]
    assert vqa_formats.prediction_json(back, ["a", "b", "c"]) == {"0": "a", "1": "b", "2": "c"}


def test_vqa_truth_with_unknown_language_is_skipped(tmp_path):
    img = str(image(tmp_path / "a.jpg", fmt="JPEG"))
    src = [vqa_data.VQASample(str(i), img, "Why?", ["because"], "en") for i in range(2)]
    inp = tmp_path / "VQA"
    truth = vqa_formats.truth_json(vqa_formats.write_input(src, inp))
    truth["1"]["lang"] = "fr"
    tp = tmp_path / "t.json"
    tp.write_text(json.dumps(truth), "utf-8")
    report = SkipReport()
    assert [s.id for s in vqa_data.read_challenge(inp, tp, report)] == ["0"]
    assert reasons(report) == ["unknown language"]


# --- zsOD -------------------------------------------------------------------------------------

def _coco(tmp_path: Path) -> Path:
    image(tmp_path / "images" / "1.jpg", size=(100, 80), fmt="JPEG")
    image(tmp_path / "images" / "2.jpg", size=(100, 80), fmt="JPEG")
    truncated(tmp_path / "images" / "3.jpg", fmt="JPEG")
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(
        ["person", "dog", "cat", "zebra", "cup", "traffic light"])]
    data = {"images": [{"id": k, "file_name": f"{k}.jpg", "width": 100, "height": 80}
                       for k in (1, 2, 3, 4)],
            "categories": cats,
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "iscrowd": 0},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 2, 30, 40], "iscrowd": 0},
                {"id": 3, "image_id": 1, "category_id": 2, "bbox": [5, 5, 10, 10], "iscrowd": 0},
                {"id": 4, "image_id": 1, "category_id": 3, "bbox": [0, 0, 99, 79], "iscrowd": 1},
                {"id": 5, "image_id": 2, "category_id": 6, "bbox": [5, 5, 0, 10], "iscrowd": 0},
                {"id": 6, "image_id": 2, "category_id": 5, "bbox": [5, 5, 9, 10], "iscrowd": 0}]}
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_coco_reader_positives_negatives_and_bad_items(tmp_path):
    path = _coco(tmp_path)
    report = SkipReport()
    samples = zsod_data.read_coco(path, langs=("en", "ru"), seed=3, report=report)
    assert [s.id for s in samples] == ["1-en", "1-ru", "2-en", "2-ru"]
    en = samples[0].phrases
    assert en["person"] == [[1.0, 2.0, 30.0, 40.0], [50.0, 2.0, 30.0, 40.0]]
    assert en["dog"] == [[5.0, 5.0, 10.0, 10.0]]
    assert "cat" not in en  # crowd-only: neither asked nor a negative
    negatives = [p for p, b in en.items() if b == []]
    assert negatives and set(negatives) <= {"zebra", "cup", "traffic light"}
    ru = samples[1].phrases
    assert ru["человек"] == en["person"] and samples[1].lang == "ru"
    assert {coco.phrase(n, "ru") for n in en} == set(ru)  # same questions in both languages
    assert samples[2].phrases["cup"] == [[5.0, 5.0, 9.0, 10.0]]
    assert sorted(reasons(report)) == ["bad box", "corrupt image", "missing file"]


def test_coco_translation_table_is_complete():
    names = json.loads((coco.COCO128_DIR / "annotations" / "instances.json").read_text("utf-8"))
    cats = [c["name"] for c in names["categories"]]
    assert len(cats) == 80 and set(cats) == set(coco.EN_RU)
    values = list(coco.EN_RU.values())
    assert len(set(values)) == 80
    assert all(any("а" <= ch.lower() <= "я" or ch == "ё" for ch in v) for v in values)
    assert coco.EN_RU["person"] == "человек" and coco.EN_RU["traffic light"] == "светофор"
    assert coco.EN_RU["hot dog"] == "хот-дог"
    assert set(coco.HELD_OUT) <= set(cats) and len(coco.HELD_OUT) == 10


def test_zsod_challenge_round_trip_and_prediction(tmp_path):
    img = str(image(tmp_path / "a.png", size=(60, 60)))
    src = [zsod_data.ZsODSample("0", img, {"red circle": [[1.0, 2.0, 3.0, 4.0]], "cube": []},
                                "en"),
           zsod_data.ZsODSample("1", img, {"красный круг": [], "куб": [[5.0, 5.0, 6.0, 6.0]]},
                                "ru")]
    inp = tmp_path / "input" / "zsOD"
    written = zsod_formats.write_input(src, inp)
    req = json.loads((inp / "requests.json").read_text("utf-8"))
    assert req == {"0.jpg": ["red circle", "cube"], "1.jpg": ["красный круг", "куб"]}
    with Image.open(inp / "images" / "0.jpg") as im:
        assert im.format == "JPEG"
    truth = zsod_formats.truth_json(written)
    assert truth["1.jpg"] == {"красный круг": [], "куб": [[5.0, 5.0, 6.0, 6.0]]}
    un = zsod_formats.read_input(inp)
    assert [(s.id, s.lang, s.phrases) for s in un] == [
        ("0.jpg", "en", {"red circle": [], "cube": []}),
        ("1.jpg", "ru", {"красный круг": [], "куб": []})]
    tp = tmp_path / "true_zsOD.json"
    tp.write_text(json.dumps(truth, ensure_ascii=False), "utf-8")
    back = zsod_data.read_challenge(inp, tp)
    assert [(s.id, s.phrases, s.lang) for s in back] == \
        [(s.id, s.phrases, s.lang) for s in written]
    pred = zsod_formats.prediction_json(back, [{"red circle": [[0.9, 1, 2, 3, 4]]}, {}])
    assert pred == {"0.jpg": {"red circle": [[0.9, 1.0, 2.0, 3.0, 4.0]], "cube": []},
                    "1.jpg": {"красный круг": [], "куб": []}}


def test_zsod_read_input_rejects_malformed_requests(tmp_path):
    inp = tmp_path / "zsOD"
    image(inp / "images" / "0.jpg", fmt="JPEG")
    (inp / "requests.json").write_text(json.dumps({"0.jpg": "not a list"}), "utf-8")
    with pytest.raises(UserError, match="requests.json: key '0.jpg'"):
        zsod_formats.read_input(inp)


# --- C2C --------------------------------------------------------------------------------------

def test_avatar_jsonl_reader(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join([
        json.dumps({"id": "a", "java": ["int f ( ) { }", "alt"], "python": ["def f ( ) :"]}),
        json.dumps({"id": "b", "java": "void g ( ) { }", "python": "def g ( ) :"}),
        "{broken",
        json.dumps({"id": "c", "java": ["x"], "python": [""]}),
        json.dumps({"id": "d", "java": ["x"]}),
    ]) + "\n", "utf-8")
    report = SkipReport()
    samples = c2c_data.read_avatar(p, report)
    assert [(s.id, s.java, s.python) for s in samples] == [
        ("a", "int f ( ) { }", "def f ( ) :"), ("b", "void g ( ) { }", "def g ( ) :")]
    assert sorted(reasons(report)) == ["bad record", "empty python translation", "malformed JSON"]


def test_vendored_avatar_is_read_whole():
    assert len(c2c_data.read_avatar(c2c_data.AVATAR_DIR / "valid.jsonl")) == 341


def test_parallel_line_files(tmp_path):
    j, p = tmp_path / "t.java", tmp_path / "t.python"
    j.write_text("F1 | int f ( ) { }\nF2 | void g ( ) { }\nF3 | x\n", "utf-8")
    p.write_text("F1 | def f ( ) :\nF2 | def g ( ) :\nF3 | \n", "utf-8")
    report = SkipReport()
    samples = c2c_data.read_parallel(j, p, report)
    assert [(s.id, s.java, s.python) for s in samples] == [
        ("F1", "int f ( ) { }", "def f ( ) :"), ("F2", "void g ( ) { }", "def g ( ) :")]
    assert reasons(report) == ["empty python translation"]
    p.write_text("def f ( ) :\n", "utf-8")
    with pytest.raises(UserError, match="cannot pair"):
        c2c_data.read_parallel(j, p)


def test_c2c_challenge_round_trip(tmp_path):
    src = [c2c_data.C2CSample("0", "int a ;", "a = 0"), c2c_data.C2CSample("1", "int b ;", "b = 0")]
    inp = tmp_path / "C2C"
    written = c2c_formats.write_input(src, inp)
    assert json.loads((inp / "requests.json").read_text("utf-8")) == {"0": "int a ;",
                                                                       "1": "int b ;"}
    tp = tmp_path / "true_C2C.json"
    tp.write_text(json.dumps(c2c_formats.truth_json(written)), "utf-8")
    assert c2c_data.read_challenge(inp, tp) == src
    assert [s.python for s in c2c_formats.read_input(inp)] == ["", ""]
    assert c2c_formats.prediction_json(src, ["x", "y"]) == {"0": "x", "1": "y"}


# --- report -----------------------------------------------------------------------------------

def test_report_prints_summary_and_first_entries_and_writes_full_list(tmp_path, capsys):
    r = SkipReport()
    for i in range(8):
        r.add("src.json", f"item{i}", "missing file: x" if i % 2 else "corrupt image: y")
    r.print(full_list=tmp_path / "skipped.tsv")
    r.write(tmp_path / "skipped.tsv")
    err = capsys.readouterr().err
    assert "skipped 8 bad items (4 corrupt image, 4 missing file)" in err
    assert "item4" in err and "item5" not in err
    assert len((tmp_path / "skipped.tsv").read_text("utf-8").splitlines()) == 9


def test_cli_import_copybook_writes_training_format(tmp_path, capsys):
    from fusionbrain.cli import main

    image(tmp_path / "images" / "a.png")
    image(tmp_path / "images" / "b.png")
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": "кот", "b.png": "cat",
                                                      "c.png": "lost"}), "utf-8")
    out = tmp_path / "train" / "HTR"
    assert main(["data", "import", "copybook", str(tmp_path / "labels.json"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HTR: wrote 2 samples" in printed and "en: 1, ru: 1" in printed
    assert "skipped 1 bad items (1 missing file)" in printed
    assert "c.png" in (out / "skipped.tsv").read_text("utf-8")
    assert [s.text for s in htr_data.read_split(out)] == ["кот", "cat"]
    assert main(["data", "import", "copybook", str(tmp_path / "labels.json"),
                 "--out", str(out)]) == 2  # refuses to overwrite without --force


def test_vqa_write_input_in_place_keeps_every_image(tmp_path):
    inp = tmp_path / "VQA"
    image(inp / "images" / "1.jpg", colour=10, fmt="JPEG")
    image(inp / "images" / "0.jpg", colour=240, fmt="JPEG")
    (inp / "questions.json").write_text(json.dumps({
        "0": {"file_name": "1.jpg", "question": "A?"},
        "1": {"file_name": "0.jpg", "question": "B?"}}), "utf-8")
    before = {s.question: Path(s.image_path).read_bytes() for s in vqa_formats.read_input(inp)}
    vqa_formats.write_input(vqa_formats.read_input(inp), inp)
    after = {s.question: Path(s.image_path).read_bytes() for s in vqa_formats.read_input(inp)}
    assert after == before and before["A?"] != before["B?"]
