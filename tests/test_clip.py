"""CLIP tab: zero-shot, ensemble and few-shot maths against open_clip's own computation on the same
tiny checkpoint (loaded straight with open_clip, not through the gallery); the text cache; batching;
bad input; the launched app's API."""

from __future__ import annotations


import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image


from demos.clip import zero_shot as ZS
from demos.clip import bias as CB, few_shot as CF, model as CM
from gallery import catalog, inputs, models
from gallery.errors import InputError
from tests.support.pages import ASSET_IMAGES

CAT = str(ASSET_IMAGES / "chelsea-the-cat.jpg")
COFFEE = str(ASSET_IMAGES / "coffee.jpg")
ROCKET = str(ASSET_IMAGES / "rocket.jpg")
ASTRONAUT = str(ASSET_IMAGES / "astronaut.jpg")
SHOTS = CF.EXAMPLE_SHOTS  # {"brick": [4 paths], "gravel": [...], "grass": [...]}
TEST = {k: str(CF.FEWSHOT / f"{k}-test.jpg") for k in SHOTS}


@pytest.fixture(scope="module")
def reference(tiny_dir):
    """The tiny checkpoint loaded straight with open_clip: (model, preprocess, tokenizer)."""
    import open_clip

    spec = "local-dir:" + str(tiny_dir / "clip")
    model, _, preprocess = open_clip.create_model_and_transforms(spec)
    return model.eval(), preprocess, open_clip.get_tokenizer(spec)


@pytest.fixture
def entry():
    return catalog.by_label("clip", None)


def ref_images(reference, paths) -> torch.Tensor:
    """open_clip README: preprocess, encode_image, normalise -> (N, D)."""
    model, preprocess, _ = reference
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        features = model.encode_image(pixels)
    return features / features.norm(dim=-1, keepdim=True)


def ref_zero_shot(reference, path, labels, template="a photo of a {}."):
    """open_clip README: normalised features, logit_scale.exp() (100 when trained), softmax."""
    model, _, tokenizer = reference
    image = ref_images(reference, [path])
    with torch.no_grad():
        text = model.encode_text(tokenizer([template.format(label) for label in labels]))
        text = text / text.norm(dim=-1, keepdim=True)
        cosine = image @ text.T
        return (model.logit_scale.exp() * cosine).softmax(dim=-1)[0].numpy(), cosine[0].numpy()


# --- equivalence with open_clip ------------------------------------------------------------------
def test_zero_shot_equals_open_clip_readme(reference, entry):
    labels = ["cat", "dog", "stuffed toy"]
    probabilities, cosine = ref_zero_shot(reference, CAT, labels)
    scores = ZS.zero_shot(None, CAT, "cat, dog, stuffed toy", "a photo of a {}.")
    assert scores.labels == labels
    np.testing.assert_allclose(scores.probabilities, probabilities, atol=1e-5)
    np.testing.assert_allclose(scores.cosine, cosine, atol=1e-5)
    assert scores.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    # The model's own temperature is used (1/0.07 for this random model), not a fixed 100.
    assert CM.logit_scale(entry) == pytest.approx(float(reference[0].logit_scale.detach().exp()))


def test_every_template_equals_open_clip(reference):
    for template in CM.TEMPLATES + [CM.BARE]:
        probabilities, _ = ref_zero_shot(reference, COFFEE, ["coffee", "tea"], template)
        scores = ZS.zero_shot(None, COFFEE, "coffee, tea", template)
        np.testing.assert_allclose(scores.probabilities, probabilities, atol=1e-5)


def test_ensemble_equals_open_clips_zero_shot_classifier(reference, entry):
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    model, _, tokenizer = reference
    labels = ["coffee", "tea", "soup", "beer"]
    weights = build_zero_shot_classifier(model, tokenizer, labels, CM.TEMPLATES, num_classes_per_batch=None)  # (D, L)
    np.testing.assert_allclose(CM.text_embeddings(entry, labels, CM.TEMPLATES).numpy(), weights.T.numpy(), atol=1e-5)
    image = ref_images(reference, [COFFEE])
    expected = (model.logit_scale.exp() * image @ weights).softmax(dim=-1)[0].detach().numpy()
    scores = ZS.zero_shot(None, COFFEE, "coffee, tea, soup, beer", CM.ENSEMBLE)
    np.testing.assert_allclose(scores.probabilities, expected, atol=1e-5)


def test_few_shot_with_one_example_per_class_is_the_nearest_example_by_cosine(reference, entry):
    examples = [SHOTS["brick"][0], SHOTS["gravel"][0], SHOTS["grass"][0]]
    classes = [("dax", [examples[0]]), ("wug", [examples[1]]), ("blicket", [examples[2]])]
    result = CF.few_shot(None, TEST["gravel"], classes)
    cosine = (ref_images(reference, [TEST["gravel"]]) @ ref_images(reference, examples).T)[0]  # (3,)
    assert int(np.argmax(result.few_shot)) == int(cosine.argmax())
    expected = (reference[0].logit_scale.exp() * cosine).softmax(-1).detach().numpy()
    np.testing.assert_allclose(result.few_shot, expected, atol=1e-5)


def test_prototypes_are_the_renormalised_mean_of_normalised_embeddings(reference):
    classes = [("dax", SHOTS["brick"]), ("wug", SHOTS["gravel"]), ("blicket", SHOTS["grass"])]
    result = CF.few_shot(None, TEST["brick"], classes)
    prototypes = torch.stack([ref_images(reference, files).mean(dim=0) for _, files in classes])
    prototypes = prototypes / prototypes.norm(dim=-1, keepdim=True)
    cosine = ref_images(reference, [TEST["brick"]]) @ prototypes.T
    expected = (reference[0].logit_scale.exp() * cosine).softmax(-1)[0].detach().numpy()
    np.testing.assert_allclose(result.few_shot, expected, atol=1e-5)
    # Zero-shot in the same result is the plain zero-shot of the class names.
    names_only, _ = ref_zero_shot(reference, TEST["brick"], ["dax", "wug", "blicket"])
    np.testing.assert_allclose(result.zero_shot, names_only, atol=1e-5)


def test_logistic_regression_equals_scikit_learn_on_open_clip_embeddings(reference):
    from sklearn.linear_model import LogisticRegression

    classes = [("brick wall", SHOTS["brick"][:3]), ("gravel", SHOTS["gravel"][:3])]
    result = CF.few_shot(None, TEST["grass"], classes, CF.LOGISTIC)
    features = ref_images(reference, SHOTS["brick"][:3] + SHOTS["gravel"][:3]).numpy()
    classifier = LogisticRegression(C=CF.LOGISTIC_C, max_iter=1000).fit(features, [0, 0, 0, 1, 1, 1])
    expected = classifier.predict_proba(ref_images(reference, [TEST["grass"]]).numpy())[0]
    np.testing.assert_allclose(result.few_shot, expected, atol=1e-4)


# --- the caches ----------------------------------------------------------------------------------
def _count_image_batches(entry, monkeypatch) -> list[int]:
    """Spy on the loaded model's encode_image: -> the list of batch sizes it is called with."""
    clip, _, _ = models.load_clip(entry)
    sizes, encode_image = [], clip.encode_image

    def counting(pixels, normalize=False):
        sizes.append(len(pixels))
        return encode_image(pixels, normalize=normalize)

    monkeypatch.setattr(clip, "encode_image", counting)
    return sizes


def test_second_call_encodes_only_the_image(entry, monkeypatch):
    CM.TEXT_CACHE.clear()
    clip, preprocess, tokenizer = models.load_clip(entry)
    calls = {"tokenizer": 0, "texts": 0, "images": 0}

    def counting_tokenizer(texts, *args, **kwargs):
        calls["tokenizer"] += 1
        return tokenizer(texts, *args, **kwargs)

    encode_text, encode_image = clip.encode_text, clip.encode_image

    def counting_text(tokens, normalize=False):
        calls["texts"] += len(tokens)
        return encode_text(tokens, normalize=normalize)

    def counting_image(pixels, normalize=False):
        calls["images"] += len(pixels)
        return encode_image(pixels, normalize=normalize)

    monkeypatch.setattr(models, "load_clip", lambda model: (clip, preprocess, counting_tokenizer))
    monkeypatch.setattr(clip, "encode_text", counting_text)
    monkeypatch.setattr(clip, "encode_image", counting_image)

    first = ZS.zero_shot(None, CAT, "cat, dog, fox", CM.ENSEMBLE)
    assert calls == {"tokenizer": 1, "texts": 3 * 5, "images": 1}
    second = ZS.zero_shot(None, CAT, "cat, dog, fox", CM.ENSEMBLE)
    assert calls == {"tokenizer": 1, "texts": 15, "images": 2}  # only the picture again
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    np.testing.assert_array_equal(first.cosine, second.cosine)
    ZS.zero_shot(None, CAT, "cat, dog, fox, owl", CM.ENSEMBLE)  # one new label: its 5 sentences only
    assert calls == {"tokenizer": 2, "texts": 20, "images": 3}
    ZS.zero_shot(None, CAT, "dog, cat", "a photo of a {}.")  # a template that is in the ensemble
    assert calls["texts"] == 20


def test_few_shot_examples_are_encoded_once(entry, monkeypatch):
    encoded = _count_image_batches(entry, monkeypatch)
    CM.IMAGE_CACHE.clear()
    classes = [("dax", SHOTS["brick"]), ("wug", SHOTS["gravel"])]
    first = CF.few_shot(None, TEST["gravel"], classes)
    assert encoded == [9]  # the test picture and 8 examples, in one forward pass
    again = CF.few_shot(None, TEST["gravel"], classes)
    assert encoded == [9]  # all from the cache
    np.testing.assert_array_equal(first.few_shot, again.few_shot)
    third = CF.few_shot(None, TEST["gravel"], classes + [("blicket", SHOTS["grass"][0])])  # one picture, no list
    assert encoded == [9, 1] and third.classes == ["dax", "wug", "blicket"]  # only the new example


# --- batching --------------------------------------------------------------------------------------
REQUESTS = [
    (None, CAT, "cat, dog", CM.DEFAULT_TEMPLATE),
    (None, COFFEE, "coffee, tea, beer", CM.ENSEMBLE),
    (None, ROCKET, "rocket\nplane, bird", CM.BARE),
]


def test_batched_requests_share_one_forward_pass_and_equal_unbatched(entry, monkeypatch):
    alone = [ZS.zero_shot(*r) for r in REQUESTS]
    batches = _count_image_batches(entry, monkeypatch)
    together = ZS.zero_shot_many(REQUESTS)
    assert batches == [3]
    for a, t in zip(alone, together):
        assert a.labels == t.labels
        np.testing.assert_allclose(t.probabilities, a.probabilities, atol=1e-6)
        np.testing.assert_allclose(t.cosine, a.cosine, atol=1e-6)
    assert together[2].labels == ["rocket", "plane", "bird"]


def test_a_bad_request_in_a_batch_does_not_fail_the_others():
    probabilities, cosine, notes = ZS.on_classify_batch(
        [None, None, None], [CAT, None, COFFEE], ["cat, dog", "cat, dog", ""], [CM.DEFAULT_TEMPLATE] * 3
    )
    assert set(probabilities[0]) == {"cat", "dog"} and set(cosine[0]["label"]) == {"cat", "dog"}
    assert probabilities[1] is None and cosine[1].empty and "picture" in notes[1]
    assert probabilities[2] is None and "at least two" in notes[2]
    unreadable = inputs.Unreadable("That file could not be read as a picture (test).")
    probabilities, _, notes = ZS.on_classify_batch(
        [None, None], [unreadable, CAT], ["cat, dog"] * 2, [CM.DEFAULT_TEMPLATE] * 2
    )
    assert probabilities[0] is None and "could not be read" in notes[0] and set(probabilities[1]) == {"cat", "dog"}
    with pytest.raises(gr.Error, match="picture"):  # alone in its batch: a plain error
        ZS.on_classify_batch([None], [None], ["cat, dog"], [CM.DEFAULT_TEMPLATE])


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "labels, message",
    [
        ("", "at least two"),
        (None, "at least two"),
        (" , ,, \n ,", "at least two"),
        (", ".join(f"label {i}" for i in range(200)), "at most 50"),
        ("x" * 30_000, "under"),
        (12345, "must be text"),
    ],
)
def test_unusable_labels_get_a_clear_message(labels, message):
    with pytest.raises(InputError, match=message):
        ZS.zero_shot(None, CAT, labels)


def test_labels_are_cleaned_and_odd_ones_still_work():
    scores = ZS.zero_shot(None, CAT, "cat,, , Cat,  cat , dog")
    assert scores.labels == ["cat", "dog"] and "Repeated" in scores.notes[0]
    one = ZS.zero_shot(None, CAT, "cat")
    assert one.probabilities.tolist() == [pytest.approx(1.0)] and "single label" in one.notes[0]
    for text in ["🐱, 🐶, 🚀", "猫, كلب, собака", "\x00cat\x07, dog\t", "{0.__class__}, {}"]:
        odd = ZS.zero_shot(None, CAT, text)
        assert odd.probabilities.sum() == pytest.approx(1.0, abs=1e-5) and np.isfinite(odd.cosine).all()


def test_labels_past_77_tokens_are_flagged_and_shortened_on_the_bars():
    long_a, long_b = "x " * 2500, "x " * 2499 + "y"  # 5,000 characters each, alike for 77 tokens
    scores = ZS.zero_shot(None, CAT, f"{long_a}, {long_b}, cat")
    assert any("77 tokens" in n for n in scores.notes)
    assert scores.probabilities[0] == pytest.approx(scores.probabilities[1])  # the rest was not read
    names = CM.shown_names(scores.labels)
    assert all(len(n) <= CM.SHOWN_CHARS for n in names) and len(set(names)) == 3


def _odd_images(tmp_path):
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    cmyk = Image.new("CMYK", (50, 50), (0, 128, 128, 0))
    deep = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    palette = Image.new("P", (20, 20))
    palette.info["transparency"] = 0
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return {
        "1x1": Image.new("RGB", (1, 1)),
        "rgba": rgba,
        "cmyk": cmyk,
        "16-bit": deep,
        "palette": palette,
        "strip 3000x20": Image.new("L", (3000, 20), 200),
        "nan array": np.full((32, 32, 3), np.nan),
        "corrupt": str(corrupt),
        "none": None,
    }


def test_odd_pictures_are_classified_or_refused_plainly(tmp_path):
    for name, image in _odd_images(tmp_path).items():
        if name in ("corrupt", "none"):
            with pytest.raises(InputError):
                ZS.zero_shot(None, image, "cat, dog")
        else:
            scores = ZS.zero_shot(None, image, "cat, dog")
            assert scores.probabilities.sum() == pytest.approx(1.0, abs=1e-5), name


def test_unknown_template_or_model_is_refused():
    with pytest.raises(InputError, match="template"):
        ZS.zero_shot(None, CAT, "cat, dog", "{0.__class__}")
    with pytest.raises(InputError, match="model"):
        ZS.zero_shot("../../etc/passwd", CAT, "cat, dog")


@pytest.mark.parametrize(
    "classes, message",
    [
        ([("dax", SHOTS["brick"]), ("wug", [])], "“wug” has no example pictures"),
        ([("dax", SHOTS["brick"]), ("wug", None), ("", None)], "“wug” has no example pictures"),
        ([("dax", SHOTS["brick"]), ("", SHOTS["grass"])], "no name"),
        ([("dax", SHOTS["brick"]), ("", None)], "at least two classes"),
        ([("dax", SHOTS["brick"]), ("DAX", SHOTS["grass"])], "both called"),
        ([("dax", SHOTS["brick"] * 5), ("wug", SHOTS["grass"])], "at most 16"),
    ],
)
def test_few_shot_bad_classes_get_a_clear_message(classes, message):
    with pytest.raises(InputError, match=message):
        CF.few_shot(None, TEST["brick"], classes)


def test_few_shot_names_the_file_it_cannot_read(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    with pytest.raises(InputError, match="notes.png"):
        CF.few_shot(None, TEST["brick"], [("dax", SHOTS["brick"]), ("wug", [str(fake)])])
    with pytest.raises(InputError, match="test picture"):
        CF.few_shot(None, None, [("dax", SHOTS["brick"]), ("wug", SHOTS["grass"])])
    with pytest.raises(InputError, match="method"):
        CF.few_shot(None, TEST["brick"], [("dax", SHOTS["brick"]), ("wug", SHOTS["grass"])], "k-means")


# --- bias probe ------------------------------------------------------------------------------------
def test_bias_probe_scores_each_wording_like_open_clip(reference):
    wording_a, wording_b = "astronaut, pilot, flight attendant", "female astronaut, female pilot, flight attendant"
    a, b = CB.bias_probe(None, ASTRONAUT, wording_a, wording_b)
    np.testing.assert_allclose(a.probabilities, ref_zero_shot(reference, ASTRONAUT, a.labels)[0], atol=1e-5)
    np.testing.assert_allclose(b.probabilities, ref_zero_shot(reference, ASTRONAUT, b.labels)[0], atol=1e-5)
    _, _, table, note = CB.on_probe(None, ASTRONAUT, wording_a, wording_b, CM.DEFAULT_TEMPLATE)
    np.testing.assert_allclose(table["shift (points)"], np.round(100 * (b.probabilities - a.probabilities), 1),
                               atol=0.051)
    with pytest.raises(InputError, match="same number"):
        CB.bias_probe(None, ASTRONAUT, "a, b, c", "a, b")


def test_ready_examples_point_at_files_that_exist():
    from pathlib import Path

    for row in ZS.EXAMPLES + CB.BIAS_EXAMPLES:
        assert Path(row[0]).is_file()
        assert row[-1] in CM.TEMPLATE_CHOICES
    for row in CF.FEW_SHOT_EXAMPLES:
        assert Path(row[0]).is_file() and all(len(files) == 4 for files in row[2::2])


# --- through the launched gallery's API --------------------------------------------------------------
def _bars(plot) -> dict:
    """A BarPlot as gradio_client returns it (a value, or an update holding one) -> {label: y}."""
    value = plot["value"] if plot.get("__type__") == "update" else plot
    return {label: y for label, y in value["data"]}


def _confidences(label) -> dict:
    """A gr.Label as gradio_client returns it -> {label: confidence}."""
    return {c["label"]: c["confidence"] for c in label["confidences"]}


def test_api_zero_shot_batches_concurrent_clients_with_the_same_answers(client):
    from gradio_client import handle_file

    label = catalog.by_label("clip", None).label
    jobs = [
        client.submit(label, handle_file(CAT), f"cat, dog, label {i}", CM.DEFAULT_TEMPLATE, api_name="/clip_zero_shot")
        for i in range(6)
    ]
    for i, job in enumerate(jobs):
        probabilities, cosine, note = job.result(timeout=60)
        expected = ZS.zero_shot(None, CAT, f"cat, dog, label {i}")
        got = _confidences(probabilities)
        assert set(got) == {"cat", "dog", f"label {i}"}
        np.testing.assert_allclose([got[x] for x in expected.labels], expected.probabilities, atol=1e-5)
        np.testing.assert_allclose(list(_bars(cosine).values()), expected.cosine, atol=1e-5)
        assert "Softmax picks" in note


def test_api_bad_input_gets_a_plain_message(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="picture"):
        client.predict(None, None, "cat, dog", CM.DEFAULT_TEMPLATE, api_name="/clip_zero_shot")
    text_file = tmp_path / "notes.png"
    text_file.write_text("a text file wearing a .png name")
    with pytest.raises(AppError, match="could not be read as a picture"):
        client.predict(None, handle_file(str(text_file)), "cat, dog", CM.DEFAULT_TEMPLATE, api_name="/clip_zero_shot")
    with pytest.raises(AppError, match="at least two"):
        client.predict(None, handle_file(CAT), " , ", CM.DEFAULT_TEMPLATE, api_name="/clip_zero_shot")
    with pytest.raises(AppError, match="no example pictures"):
        client.predict(None, handle_file(TEST["brick"]), CF.PROTOTYPES, CM.DEFAULT_TEMPLATE,
                       "dax", [handle_file(SHOTS["brick"][0])], "wug", [], "", [], api_name="/clip_few_shot")


def test_api_few_shot_compare_templates_and_bias_probe(client):
    from gradio_client import handle_file

    files = {k: [handle_file(p) for p in v] for k, v in SHOTS.items()}
    zero, few, table, note = client.predict(
        None, handle_file(TEST["grass"]), CF.PROTOTYPES, CM.DEFAULT_TEMPLATE,
        "brick wall", files["brick"], "gravel", files["gravel"], "grass", files["grass"], api_name="/clip_few_shot",
    )
    assert table["headers"] == ["class", "zero-shot %", "few-shot %", "difference (points)"]
    assert "Leave-one-out" in note
    classes = [("brick wall", SHOTS["brick"]), ("gravel", SHOTS["gravel"]), ("grass", SHOTS["grass"])]
    expected = CF.few_shot(None, TEST["grass"], classes)
    np.testing.assert_allclose(list(_bars(few).values()), expected.few_shot, atol=1e-5)

    templates = client.predict(None, handle_file(COFFEE), "coffee, tea", api_name="/clip_compare_templates")
    assert templates["headers"] == ["label", *CM.TEMPLATES, CM.BARE, "ensemble"]
    assert [row[0] for row in templates["data"]] == ["coffee", "tea"]

    plot_a, plot_b, shifts, note = client.predict(
        None, handle_file(CAT), "cat, fox", "kitty, fox", CM.DEFAULT_TEMPLATE, api_name="/clip_bias_probe"
    )
    assert shifts["headers"][-1] == "shift (points)" and ("answer" in note)
