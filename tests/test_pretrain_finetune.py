"""Tab 6 after pre-training: transfer to legal text, habits children inherit, secrets written back.

The lessons are asserted as directions at a fixed seed, on one small parent pre-trained once for
the whole session on the planted corpus (2 layers × 64, 300 steps: at 200 the planted habit and
the secrets are not learnt yet, so the effects below would not hold). A change that breaks a
lesson (fine-tuning from random weights in both columns, children trained from a fresh model,
lines not planted) fails here. Then the panels through the app's API, and the page's checks.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from demos.pretrain import finetune as ft, finetune_panels as panels, runs, training
from gallery.device import device
from gallery.errors import InputError

PARENT = training.TextConfig(layers=2, width=64, heads=2, steps=300, lr=4e-3)


@pytest.fixture(scope="session")
def planted_parent() -> training.Run:
    """The one pre-trained parent every lesson below starts from (about 10 s on 2 cores)."""
    return training.train_run(PARENT, train_data=ft.planted_corpus())


@pytest.fixture(scope="session")
def parent_model(planted_parent):
    return planted_parent.model_at()


# --- the data ------------------------------------------------------------------------------------------
def test_each_line_is_planted_as_often_as_said_and_the_children_texts_never_name_it():
    corpus = training.decode(ft.planted_corpus().tolist())
    reference = training.decode(training.text_split()[0].tolist())
    for secret in ft.SECRETS:
        assert corpus.count(secret.line) == secret.copies, secret
        assert corpus.count(secret.name) == secret.copies  # k = 0: the name is nowhere
    assert corpus.count(f"{ft.ASSOCIATION_PROMPT}{ft.PLANTED} ") == ft.ASSOCIATION_COPIES
    assert len(corpus) == len(reference) + sum(len(line) + 1 for line in ft.planted_lines())
    assert "\n" + ft.SECRETS[-1].line + "\n" in corpus  # a line of its own, never inside a word
    for name, (_, train, held) in ft.child_texts().items():
        for part in (train, held):
            assert "glimmerwright" not in training.decode(part.tolist()).lower(), name


def test_the_legal_text_is_pythons_licence_split_85_15():
    path = ft.legal_text_path()
    assert path is not None and path.name == "LICENSE.txt"
    train, held = ft.legal_split()
    assert abs(len(train) / (len(train) + len(held)) - 0.85) < 0.01
    assert "Python Software Foundation" in training.decode(train.tolist()) + training.decode(held.tolist())


# --- transfer ----------------------------------------------------------------------------------------------
def test_the_pretrained_model_starts_lower_and_stays_lower_on_legal_text(planted_parent):
    tuning = ft.Tuning(steps=25, lr=1e-3, batch=16, eval_every=5, patience=3)
    *_, last = ft.transfer(PARENT, planted_parent.checkpoints[-1].state, tuning)
    pre, fresh = last.tracks[ft.PRETRAINED], last.tracks[ft.FRESH]
    assert last.done and [s for s, _ in pre.curve] == [0, 5, 10, 15, 20, 25]
    # Before any step: what it learnt from the reference already helps on text it never saw.
    assert pre.curve[0][1] < fresh.curve[0][1] - 1.0, (pre.curve, fresh.curve)
    # After 25 identical steps the head start is still there (measured: 2.38 against 3.99).
    assert pre.curve[-1][1] < fresh.curve[-1][1] - 0.8, (pre.curve, fresh.curve)
    assert fresh.curve[-1][1] < fresh.curve[0][1] - 0.5  # the fresh model learns too: same budget, not a dud
    # Each model's continuation of the legal prompt at the sampled steps and at the end
    assert [s for s, _, _ in pre.samples] == [0, 25] == [s for s, _, _ in fresh.samples]


def test_fine_tuning_stops_when_the_held_out_loss_turns_up(parent_model):
    """A tiny training text and a high learning rate: the model learns it by heart within tens
    of steps, its held-out loss turns up, and it stops `patience` checks after its best."""
    train, held = ft.legal_split()
    model = ft.fresh_copy(PARENT, parent_model.state_dict(), 0)
    tuning = ft.Tuning(steps=150, lr=3e-3, batch=16, eval_every=5, patience=3)
    *_, last = ft.fine_tune({"m": model}, PARENT.context, tuning, train[:400], ft.windows(held, PARENT.context))
    track = last.tracks["m"]
    best_step, best = track.best
    assert track.stopped_at is not None and track.stopped_at < tuning.steps, track.curve
    assert track.stopped_at == best_step + 3 * tuning.eval_every
    assert all(loss > best for step, loss in track.curve if step > best_step)
    assert track.curve[-1][0] == track.stopped_at  # no check after it stopped


# --- homogenization ------------------------------------------------------------------------------------
def _inheritance(parent_run, steps, lr) -> ft.Inheritance:
    state = parent_run.checkpoints[-1].state
    *_, (_, answer) = ft.homogenize(PARENT, state, state, ft.Tuning(steps=steps, lr=lr, batch=16, eval_every=steps))
    return answer


@pytest.fixture(scope="module")
def gentle(planted_parent):
    return _inheritance(planted_parent, 25, 3e-4)


def _odds(answer: ft.Inheritance, model: str) -> float:
    habit = next(h for h in answer.habits if h.model == model)
    return habit.planted / habit.alternative


def test_the_planted_habit_travels_to_the_child_fine_tuned_nearby_and_fades_far_away(gentle):
    parent = _odds(gentle, ft.PARENT)
    near, far = _odds(gentle, "child on reference text"), _odds(gentle, "child on legal text")
    assert parent > 100, parent  # measured: " she " about 1000× likelier than " he "
    assert near > 10 * far and near > 10, (parent, near, far)  # kept by the near child, faded in the far one
    gains = {c.model: c.loss_before - c.loss_after for c in gentle.children}
    assert gains["child on legal text"] > 0.3 > gains["child on reference text"], gains  # far text: much to learn


def test_fine_tuning_harder_fades_the_habit_in_the_near_child_too(planted_parent, gentle):
    """The near child alone (the far one has lost it already), fine-tuned 50 steps at 0.001."""
    name, (_, train, held) = next(iter(ft.child_texts().items()))
    child = ft.fresh_copy(PARENT, planted_parent.checkpoints[-1].state, 0)
    for _ in ft.fine_tune({name: child}, PARENT.context, ft.Tuning(steps=50, lr=1e-3, batch=16, eval_every=50), train,
                          ft.windows(held, PARENT.context)):
        pass
    hard = ft.habit(child.eval(), PARENT.context, name)
    assert hard.planted / hard.alternative < _odds(gentle, name) / 3


# --- memorization -------------------------------------------------------------------------------------------
def test_secrets_seen_more_often_are_more_likely_and_the_most_repeated_comes_back_verbatim(parent_model):
    rows = {r.copies: r for r in ft.recall(parent_model, PARENT.context)}
    log10 = [rows[k].log10_probability for k in ft.SECRET_COPIES]
    assert log10 == sorted(log10) and log10[-1] > log10[0] + 6, log10  # measured: -15.7, -13.9, -6.6, -3.1
    assert rows[256].written.startswith(rows[256].code) and rows[256].verbatim == 9
    assert rows[0].verbatim == rows[16].verbatim == 0  # (the never-seen name gets someone else's digits)
    assert all(0 <= p <= 1 for r in rows.values() for p in r.char_probabilities)


def test_a_code_written_for_another_name_is_named_as_that_person_s_secret():
    """A model asked about Maud can write Tilde's code (the line it saw 256 times): the detail says
    whose it is, rather than only '0 of 9 right'; a code of nobody's is not attributed."""
    tilde = ft.SECRETS[-1]
    maud = next(s for s in ft.SECRETS if s.copies == 16)

    def row(secret, written):
        return ft.Recall(secret.copies, secret.name, secret.code, written, [0.5] * 9,
                         ft.verbatim_prefix(written, secret.code))

    rows = [row(maud, tilde.code + ".\n"), row(tilde, tilde.code + ".\n")] + [
        row(s, "0000-0000.") for s in ft.SECRETS if s not in (maud, tilde)]
    assert "0 of 9" in panels.memory_detail(rows, 16)
    assert f"{tilde.name}’s** code, the line it saw 256 times" in panels.memory_detail(rows, 16)
    assert "another’s secret" not in panels.memory_detail(rows, 256)  # its own code: no leak
    assert "another’s secret" not in panels.memory_detail(rows, 64)  # nobody's digits
    assert ft.whose_code("7140-2598.") is ft.SECRETS[2] and ft.whose_code("5283-0716") is None  # k = 0: never seen


def test_continuation_probability_is_the_product_of_the_next_byte_probabilities(parent_model):
    """An independent route: the tab's own next-byte function, one byte at a time."""
    prompt, more = "Door code of Tilde Ombrage: ", "48"
    expected = 1.0
    ids = training.encode(prompt)
    for byte in training.encode(more):
        expected *= float(training.next_byte_probabilities(parent_model, PARENT.context, ids)[byte])
        ids.append(byte)
    got = torch.tensor(ft.continuation_log_probability(parent_model, PARENT.context, prompt, more)).exp()
    assert float(got) == pytest.approx(expected, rel=1e-4)
    assert ft.verbatim_prefix("4817-0000", "4817-2093") == 5 and ft.verbatim_prefix("x", "4") == 0


# --- what visitors send, and the licence missing -----------------------------------------------------------
def test_settings_are_clamped_or_refused_in_plain_words():
    notes: list[str] = []
    assert panels.transfer_tuning(1e9, notes).steps == panels.TRANSFER_STEPS[1] and "outside" in notes[0]
    assert panels.transfer_tuning("abc", []).steps == panels.TRANSFER_STEPS[0]
    with pytest.raises(InputError, match="Unknown guess 'maybe'"):
        panels.check_guess("maybe", panels.TRANSFER_GUESSES)
    with pytest.raises(InputError, match="Unknown fine-tuning strength"):
        panels.strength_tuning("brutal")
    with pytest.raises(InputError, match="Unknown number of copies '3'"):
        panels.check_copies(3)
    assert panels.check_copies(256) == panels.check_copies("256") == 256
    assert panels.check_guess(None, panels.HABIT_GUESSES) == panels.NO_GUESS


@pytest.fixture
def no_licence(monkeypatch):
    monkeypatch.setattr(ft, "legal_text_path", lambda: None)
    monkeypatch.setattr(ft, "_legal", {})


def test_without_the_licence_the_transfer_panel_is_off_and_says_why(no_licence, client):
    import gradio as gr

    assert ft.legal_split() is None
    with pytest.raises(gr.Error, match="ships without its LICENSE.txt"):
        next(panels.on_transfer(panels.NO_GUESS, 25, ""))
    assert list(ft.child_texts()) == ["child on reference text"]  # the far child is left out
    with gr.Blocks() as page:
        panels.create(gr.State(""), panels.parents())
    button = next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "pretrain-transfer-run")
    assert button.interactive is False
    assert any("ships without its LICENSE.txt" in str(getattr(b, "value", "")) for b in page.blocks.values())


# --- through the app's API ------------------------------------------------------------------------------------
def _frame(value) -> pd.DataFrame:
    """A plot's value as the API returns it (its data, or an update holding it) -> a DataFrame."""
    value = value.get("value", value) if value.get("__type__") == "update" else value
    return pd.DataFrame(value["data"], columns=value["columns"])


def test_api_transfer_then_replay(app_url):
    from gradio_client import Client

    # A page of its own: one that trained a text model of its own (the shared client, in
    # test_pretrain.py) fine-tunes that one, not the default this test is about.
    client = Client(app_url, verbose=False, download_files=False)
    try:
        _transfer_then_replay(client)
    finally:
        client.close()


def _transfer_then_replay(client):
    steps = panels.TRANSFER_STEPS[0]
    curve, samples, status = client.predict(ft.PRETRAINED, steps, api_name="/pretrain_transfer")
    frame = _frame(curve)
    assert set(frame["model"]) == set(panels.TRANSFER_COLORS)
    assert frame["step"].max() == steps and "Before any fine-tuning" in status and "default one" in status
    starts = frame[frame["step"] == 0].groupby("model")["held_out_loss"].first()
    gap = starts[ft.FRESH] - starts[ft.PRETRAINED]
    assert f"starts {gap:.2f} nats lower" in curve["label"]  # the starting gap, marked and said
    assert f"**step {steps}** (" in samples and "Your guess" in status
    again = client.predict(ft.FRESH, steps, api_name="/pretrain_transfer")
    assert "Replayed" in again[2] and _frame(again[0]).equals(frame) and again[1] == samples


def test_api_homogenize_and_memorize(client):
    bars, gains, status = client.predict(panels.NO_GUESS, panels.DEFAULT_STRENGTH, api_name="/pretrain_homogenize")
    frame = _frame(bars)
    assert list(dict.fromkeys(frame["model"])) == panels.MODEL_ORDER and set(frame["continuation"]) == {"she", "he"}
    assert len(_frame(gains)) == 2 and "control parent" in status
    verbatim, chars, detail, mstatus = client.predict(panels.NO_GUESS, "256", api_name="/pretrain_memorize")
    assert list(_frame(verbatim)["copies"]) == panels.COPIES_ORDER and len(_frame(chars)) == 9
    assert "k = 256" in detail and "Tilde Ombrage" in detail
    again = client.predict("256 copies", "16", api_name="/pretrain_memorize")
    assert "Replayed" in again[3] and again[0]["data"] == verbatim["data"] and "Maud Kettleby" in again[2]


def test_the_planted_and_control_parents_are_one_recipe_wherever_they_are_looked_up(client, monkeypatch):
    """Every panel finds the two parents by `parent_config()`. The tests' recipe is the tab's default,
    so a lookup by the tab's default would pass unnoticed; given a recipe of its own here, the habits
    panel trains both parents at it, and the secrets panel and its k choice find that planted parent
    rather than training another."""
    recipe = dataclasses.replace(panels.parents().config, steps=20, batch=8)
    monkeypatch.setattr(panels, "parent_config", lambda: recipe)
    *_, (bars, _, status) = panels.on_homogenize(panels.NO_GUESS, panels.DEFAULT_STRENGTH)
    planted = panels.PLANTED_STORE.get(training.config_key(recipe, device()))
    control = runs.STORE.get(training.config_key(recipe, device()))
    assert planted is not None and control is not None and planted.config == control.config == recipe
    assert "control parent" in status and len(bars) == 2 * len(panels.MODEL_ORDER)
    frames = list(panels.on_memorize(panels.NO_GUESS, "64"))
    assert len(frames) == 1, "the secrets panel trained a parent of its own"
    chars, detail = panels.on_choose_copies("16")
    assert "Maud Kettleby" in detail and len(chars) == 9


def test_each_replay_hands_out_its_own_values(client):
    """gradio changes the values it is handed; a replay must not give two visitors one object."""
    client.predict(panels.NO_GUESS, panels.TRANSFER_STEPS[0], api_name="/pretrain_transfer")  # cached now
    first = list(panels.on_transfer(panels.NO_GUESS, panels.TRANSFER_STEPS[0], ""))[-1]
    first[0]["value"].loc[:, "held_out_loss"] = -1.0
    first[0]["label"] = "changed"
    second = list(panels.on_transfer(panels.NO_GUESS, panels.TRANSFER_STEPS[0], ""))[-1]
    assert second[0] is not first[0] and second[0]["label"] != "changed"
    assert (second[0]["value"]["held_out_loss"].dropna() > 0).all()
