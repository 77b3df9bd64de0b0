"""ZeroGPU, simulated: small text models stay on the CPU, GPU calls ask for short durations, and a
used-up quota reaches the visitor as one plain sentence while the text tabs fall back to the CPU.

The quota errors here are the installed `spaces` package's own: its `schedule` function builds
them from what the ZeroGPU device API answers (spaces/zero/client.py), so the tests read the
same exception class, title and message a visitor on a Space would get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from gallery import catalog, device, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Expected from the models' published sizes (<= 0.5 B parameters: CPU), not from the catalogue.
CPU_ON_ZERO_GPU = {
    "HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-360M", "HuggingFaceTB/SmolLM2-135M-Instruct",
    "openai-community/gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct",
    "distilbert/distilbert-base-uncased",  # 66 M: the masked LM of the next-word tab
    catalog.EMBEDDED_LM_ID,
}


def _every_hub_model() -> list[catalog.Model]:
    return [m for role in catalog.ROLES.values() for m in role.hub] + [catalog.EMBEDDED_LM]


def test_on_zero_gpu_the_small_text_models_are_placed_on_the_cpu(monkeypatch):
    monkeypatch.setattr(settings, "ZERO_GPU", True)
    monkeypatch.setattr(device, "device", lambda: "cuda")  # what torch says on ZeroGPU
    on_cpu = {m.model_id for m in _every_hub_model() if device.placement(m) == "cpu"}
    assert on_cpu == CPU_ON_ZERO_GPU
    # The setting moves the line: 0 puts every model on the GPU, 2000 (M) every text model on the CPU.
    monkeypatch.setattr(settings, "CPU_MAX_PARAMS_M", 0)
    assert not [m for m in _every_hub_model() if device.placement(m) == "cpu"]
    monkeypatch.setattr(settings, "CPU_MAX_PARAMS_M", 2000)
    on_cpu = {m.family for m in _every_hub_model() if device.placement(m) == "cpu"}
    assert on_cpu == {"causal_lm", "masked_lm"}  # image models never


def test_off_zero_gpu_every_model_uses_the_machine_s_device(monkeypatch):
    monkeypatch.setattr(settings, "ZERO_GPU", False)  # e.g. the organiser's own GPU: no quota
    assert {device.placement(m) for m in _every_hub_model()} == {device.device()}


def _real_quota_error(left_s: int, wait_s: int, requested_s: int):
    """The error `spaces` raises when the device API answers that the quota is used up, for a
    visitor whose browser sent ZeroGPU's IP token (a page on the Space does)."""
    from spaces.zero import client
    from spaces.zero.api import QuotaInfos, ScheduleMetadata

    class QuotaUsedUp:
        def schedule(self, **_):
            return QuotaInfos(left=left_s, wait=timedelta(seconds=wait_s)), ScheduleMetadata(auth="regular")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client, "api_client", lambda: QuotaUsedUp())
        patch.setattr(client, "_get_token_and_payload", lambda headers: ("ip-token", {}))
        patch.setattr(client, "_is_api_call", lambda request: False)
        patch.setattr(client.utils, "self_cgroup_device_path", lambda: "/")
        with pytest.raises(Exception) as caught:
            client.schedule(task_id=1, duration=timedelta(seconds=requested_s))
    return caught.value


def test_the_quota_error_becomes_one_plain_sentence_with_the_reset_time():
    import gradio as gr

    from gallery import ui

    error = _real_quota_error(left_s=12, wait_s=192, requested_s=60)
    assert type(error) is gr.Error and error.title == "ZeroGPU quota exceeded"
    assert "Try again in 0:03:12" in error.message  # the installed package's own words
    assert device.gpu_refusal(error) == "quota" and device.retry_after_s(error.message) == 192

    shown = ui.as_user_error(error)
    sentence = shown.message
    assert "run out" in sentence and "in about 4 minutes" in sentence  # 3 min 12 s, rounded up
    assert "text tabs keep working" in sentence
    assert "signing in" in sentence and "own GPU" in sentence
    assert sentence.endswith(".") and sentence.count(". ") == 0  # one sentence
    assert "Traceback" not in sentence and "ZeroGPU quota exceeded" not in sentence


def test_other_errors_are_not_taken_for_a_quota_error():
    import gradio as gr

    assert device.gpu_refusal(gr.Error("Type a few words first.")) is None
    assert device.gpu_refusal(RuntimeError("ZeroGPU quota exceeded")) is None  # only spaces' titled error


def test_a_refused_gpu_call_of_a_text_model_is_answered_on_the_cpu(monkeypatch):
    """The decorated call raises the real quota error; the visitor's answer comes from the role's
    CPU model, with a warning saying what happened."""
    from demos.next_word import reveal as NWR
    from demos.next_word import distribution as NWD

    llama, gpt2 = (m.label for m in catalog.all_models("next_word")[:2])
    monkeypatch.setattr(settings, "ZERO_GPU", True)
    small = catalog.runs_on_cpu
    monkeypatch.setattr(catalog, "runs_on_cpu", lambda m: m.label != gpt2 and small(m))  # as if 1.7 B
    asked: list = []

    def zero_gpu_refuses(*args, **kwargs):
        asked.append(NWD.distributions_for.gpu_duration(*args, **kwargs))
        raise _real_quota_error(left_s=3, wait_s=3600, requested_s=asked[-1])

    monkeypatch.setattr(NWD.distributions_for, "gpu_call", zero_gpu_refuses)
    with pytest.warns(UserWarning) as warned:
        outputs = NWR.on_reveal("The cat sat on the", gpt2, 1.0, 0, 1.0)
    assert len(asked) == 1 and asked[0] <= 10  # one short call was asked for
    assert outputs[4].startswith(f"**{llama}**")  # answered by the CPU model, and it says so
    lm, tokenizer, _ = NWD.load(llama)
    expected = NWD.next_token_distribution(lm, tokenizer, "The cat sat on the")
    assert list(outputs[2]["token"]) == expected.tokens  # the same answer the CPU model gives
    [sentence] = [str(w.message) for w in warned if "GPU" in str(w.message)]
    assert f"this answer comes from {llama}" in sentence and "in about 60 minutes" in sentence

    # A small model never asks: the same request on the CPU model makes no GPU call.
    NWR.on_reveal("The cat sat on the", llama, 1.0, 0, 1.0)
    assert len(asked) == 1


def test_scoring_a_set_asks_for_one_short_gpu_call_per_question(monkeypatch):
    from demos.prompting import compare as PC, prompts as PP, run as PR

    chat = catalog.all_models("instruct")[0].label
    monkeypatch.setattr(settings, "ZERO_GPU", True)
    monkeypatch.setattr(catalog, "runs_on_cpu", lambda m: False)  # every model on the GPU
    durations: list[int] = []
    raw = PR.run_compare.__wrapped__

    def on_gpu(*args, **kwargs):  # what spaces.GPU would do, minus the GPU: ask, then run
        durations.append(PR.run_compare.gpu_duration(*args, **kwargs))
        yield from raw(*args, **kwargs)

    monkeypatch.setattr(PR.run_compare, "gpu_call", on_gpu)
    max_new_tokens = 32
    updates = list(PC.on_score(chat, None, 3, [PP.ZERO_SHOT, PP.COT], None, 1, 3, 0.0,
                                      0.7, 1, max_new_tokens, progress=lambda *a, **k: None))
    assert "3 of 3 questions scored" in updates[-1][0]
    assert len(durations) == 3  # one call per question, not one for the set
    # Sized to the call: the estimate for max_new_tokens steps, far below the old 240 s.
    assert durations == [device.gpu_seconds(PR.GPU_STEP_S * max_new_tokens)] * 3
    assert max(durations) <= 10


@pytest.mark.slow  # a subprocess importing the whole app under `spaces`
def test_under_the_real_spaces_package_in_zero_gpu_mode(tiny_dir):
    """A subprocess in ZeroGPU mode (the `spaces` package patches torch as on a Space) against a
    local device API that refuses every GPU call: the text tabs make no GPU call, a GPU model's
    refused call is answered on the CPU, an image tab shows the plain sentence."""
    env = dict(os.environ, GALLERY_TINY_MODELS=str(tiny_dir), SPACES_ZERO_GPU="true", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "tests.support.zerogpu_probe"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE-RESULT ")), None)
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(line.split(" ", 1)[1])
    assert result["zero_gpu"] is True
    assert result["tiny_llama_weights_on"] == "cpu"
    for tab in ("next_token", "your_word", "generate", "prompting_compare", "prompting_score"):
        assert result[tab]["schedules"] == 0, (tab, result[tab])
    assert "read 5 tokens" in result["next_token"]["note"]
    assert "Your word" in result["your_word"]["text"]
    assert result["generate"]["text"].startswith("Added 4 tokens")
    assert "2 of 2 questions scored" in result["prompting_score"]["last"]

    refused = result["refused_next_token"]
    assert len(refused["schedules"]) == 1 and int(refused["schedules"][0]["durationSeconds"]) <= 10
    assert refused["note"].startswith("**Tiny Llama (test)**")
    [sentence] = refused["warnings"]
    assert "run out" in sentence and "text tabs keep working" in sentence

    clip = result["refused_clip"]
    assert len(clip["schedules"]) == 1 and int(clip["schedules"][0]["durationSeconds"]) <= 10
    assert clip["result"]["title"] == "No GPU time left"
    assert "run out" in clip["result"]["error"] and "signing in" in clip["result"]["error"]


def test_with_the_quota_used_up_an_example_still_shows_its_kept_answer():
    """An example's answer, once made, is served without calling the handler again: after the
    quota runs out it still shows, while a new request gets the plain sentence, which says so."""
    import gradio as gr

    from gallery import ui

    quota_left = {"s": 60}

    @ui.user_errors
    def paint(prompt):  # an image tab's handler, its GPU call refused once the quota is gone
        if quota_left["s"] <= 0:
            raise _real_quota_error(left_s=0, wait_s=600, requested_s=20)
        return f"a picture of {prompt}"

    with gr.Blocks():
        prompt, picture = gr.Textbox(), gr.Textbox()
        examples = gr.Examples([["a lighthouse"], ["a corgi"]], [prompt])
        on_example = ui.answer_examples(examples, paint, [prompt], [picture])
    assert list(on_example((0, ["a lighthouse"]), "a lighthouse")) == ["a picture of a lighthouse"]

    quota_left["s"] = 0
    assert list(on_example((0, ["a lighthouse"]), "a lighthouse")) == ["a picture of a lighthouse"]
    with pytest.raises(gr.Error) as refused:
        list(on_example((1, ["a corgi"]), "a corgi"))  # never made before: it needs the GPU
    assert "examples still show the answers already made" in refused.value.message
    assert "run out" in refused.value.message and "in about 10 minutes" in refused.value.message
