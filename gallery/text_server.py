"""The text tabs on a serving engine: an OpenAI-compatible HTTP server as the third text engine.

A workshop that outgrows one process points its text tabs at a server that batches many visitors
and scales on its own (llama.cpp's `llama-server`, vLLM...):

    GALLERY_TEXT_SERVER=http://host:port/v1      the server's OpenAI-compatible API
    GALLERY_TEXT_SERVER_MODEL=<name>             the model it serves (optional when it serves one)
    GALLERY_TEXT_SERVER_KEY=<key>                optional; sent as a bearer token, never logged

The served model must be one of the catalogue's (`catalog.py`, the allow-list): its model id, or
for a bundled model also its GGUF file name (llama-server lists a model started without an alias
by its file's path); it is checked against `/v1/models` at start (`start`).
`ServerEngine` then answers the tabs' three questions for that model, in token ids as the other
engines do (the tokenizer stays transformers'):

- next-token rows (`logits`, `logits_batch`, `logits_at`): one `/v1/completions` request per
  prompt with `max_tokens=1` and `logprobs=N` (`top_n`: as many as the server accepts, up to
  TOP_N), concurrent. A row holds the server's own log-probabilities of its top N next tokens and
  -inf for the rest (the server sends nothing about them), so `probabilities` gives the server's
  figures for the top N, and the tabs' temperature / top-k / top-p, applied to the row, reshape the
  top N renormalised. The one token the request generates is forced to the end-of-text token
  (`logit_bias`): llama-server sends no log-probabilities at all for a generated token that ends
  in the middle of a UTF-8 character (a piece of an emoji, most CJK), and the forced one never does.
- `generate(ids, n, pick, ...)` (the next-word tab's tokens): one token at a time, each step such
  a request on the text so far (the server keeps the prompt in its cache, so each step reads one
  new token): `pick` chooses from the step's row, as with the in-process engine, so a token is
  drawn from exactly the bars the page shows, and the history keeps every step's top N. Not a
  stream: llama-server streams no log-probabilities for a token that ends inside a character.
- `generate_batch(...)` (the prompting strategies): every row one streamed request (`stream=True`),
  all at once, so the server's own continuous batching does the work; the server samples with
  each row's `Draw`.

Faults, in plain words (`ModelUnavailable`): a server down at start, or failing in the middle of a
request (cut connection, no answer within GALLERY_TEXT_SERVER_TIMEOUT_S), is set aside: the
request that met the failure says so, and the next requests run on the in-process engine
(`engines.load_text_engine` falls back) until the server answers again (asked every RECHECK_S).
A server whose model is not on the allow-list, or that refuses the key, is refused at start, in
words (`status_line`, and a note on the text tabs' pages), and never used.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

import torch

from gallery import catalog, settings
from gallery.catalog import Model
from gallery.errors import ModelUnavailable
from gallery.text_engine import Draw

log = logging.getLogger("gallery")

TOP_N = 200  # log-probabilities asked per next token (the next-word tab's top-k slider ends at 200)
FALLBACK_TOP_N = (20, 5)  # what OpenAI-style servers accept when TOP_N is refused
CONNECT_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 5.0  # asking /v1/models, at start and when a set-aside server is asked again
RETRIES = 2  # a connection that cannot be made is tried again this many times (httpx's transport)
RECHECK_S = 30.0  # a server set aside is asked again after this long
MAX_CONNECTIONS = 64  # open connections to the server, all visitors together
ROW_LOGPROBS = 1  # a streamed row asks for one log-probability per token: it carries the token's id


# --- the connection, checked at start ----------------------------------------------------------
@dataclass
class _Server:
    url: str  # ".../v1"
    model_name: str | None  # the served model as GALLERY_TEXT_SERVER_MODEL (or the page) names it
    entry: Model | None  # the catalogue model it serves
    key: str = ""
    model_id: str | None = None  # what requests name: its id in /v1/models
    refused: str | None = None  # why it is never used (not allowed, misconfigured)
    down: str | None = None  # why it is set aside now (unreachable, failed mid-request)
    down_since: float = 0.0
    owner: str = ""  # /v1/models "owned_by", e.g. "llamacpp"
    n_vocab: int | None = None  # /v1/models "meta", where the server says it
    top_n: int = TOP_N
    client: object | None = None  # httpx.Client
    engine: "ServerEngine | None" = None
    probing: bool = False  # one request asks a set-aside server again; the others go on in-process


_server: _Server | None = None
_lock = threading.Lock()


def _client(url: str, key: str, timeout_s: float):
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    return httpx.Client(  # (a client given a transport takes its limits from the transport)
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
        transport=httpx.HTTPTransport(retries=RETRIES, limits=limits),
    )


def _where(url: str) -> str:
    """The server as the page names it: host and port (not a link a visitor would follow; never
    a key written into a URL)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def catalogue_entry(name: str) -> Model | None:
    """The catalogue's text model a server's model name stands for: its model id, or for a
    bundled model its name without the 'embedded:' prefix or its GGUF file name."""
    for role, spec in catalog.ROLES.items():
        if not spec.text:
            continue
        for model in catalog.all_models(role):
            if model.family != "causal_lm":
                continue
            names = {model.model_id}
            if model.model_id in catalog.BUNDLED_FILES:
                names |= {model.model_id.removeprefix(catalog.EMBEDDED_PREFIX), catalog.bundled_file(model).file_name}
            if name in names:
                return model
    return None


def _short(served_id: str) -> str:
    """A served model's name as the page says it: llama-server lists a model it was started
    without an alias by its file's path on the server; the file name is enough (and no path of
    that machine reaches the page)."""
    return PurePosixPath(served_id).name if "/" in served_id else served_id


def _refusal(server: _Server, served: list[dict]) -> str | None:
    """Why this server must not be used (None: it may), from its /v1/models list; sets the
    model's id (what requests name) and name (what the page says)."""
    ids = [str(m.get("id")) for m in served]
    wanted = server.model_name
    if wanted is None:
        if len(ids) != 1:
            return (f"it serves {len(ids)} models ({', '.join(map(_short, ids)) or 'none'}); set "
                    "GALLERY_TEXT_SERVER_MODEL to the one the gallery should use")
        chosen = ids[0]
    else:
        chosen = next((i for i in ids if wanted in (i, _short(i))), None)
        if chosen is None:
            return f"it does not serve {wanted!r} (it serves: {', '.join(map(_short, ids)) or 'nothing'})"
    name = wanted or _short(chosen)
    entry = catalogue_entry(name)
    if entry is None:
        return (f"its model {name!r} is not on the gallery's list of text models (gallery/catalog.py), "
                "and the gallery only runs models from that list")
    served_entry = served[ids.index(chosen)]
    server.model_id, server.model_name, server.entry = chosen, name, entry
    server.owner = str(served_entry.get("owned_by") or "")
    meta = served_entry.get("meta") or {}
    server.n_vocab = int(meta["n_vocab"]) if isinstance(meta, dict) and meta.get("n_vocab") else None
    return None


class _Refused(Exception):
    """The server answers, and says no to the gallery as configured (a wrong key, say)."""


def _checked(answer):
    if answer.status_code in (401, 403):
        raise _Refused(f"it refused the API key (HTTP {answer.status_code}); check GALLERY_TEXT_SERVER_KEY")
    if answer.status_code >= 500:
        answer.raise_for_status()
    return answer


def _largest_top_n(server: _Server) -> int:
    """TOP_N when the server accepts it, else the most it does (OpenAI's own API: 20, or 5)."""
    for n in (TOP_N, *FALLBACK_TOP_N):
        answer = _checked(server.client.post("/completions", timeout=PROBE_TIMEOUT_S, json={
            "model": server.model_id, "prompt": "Hello", "max_tokens": 1, "logprobs": n, "temperature": 0}))
        if answer.status_code < 400:
            return n
    raise _Refused(f"it gives no next-token log-probabilities (HTTP {answer.status_code}: {answer.text[:200]})")


def _connect(server: _Server) -> None:
    """Ask /v1/models (and how many log-probabilities it gives); sets `refused` or `down`."""
    import httpx

    try:
        answer = _checked(server.client.get("/models", timeout=PROBE_TIMEOUT_S))
        answer.raise_for_status()
        served = answer.json().get("data") or []
        server.refused = _refusal(server, served)
        if server.refused is None:
            server.top_n = _largest_top_n(server)
        server.down = None
    except _Refused as refusal:
        server.refused, server.down = str(refusal), None
    except (httpx.HTTPError, ValueError) as error:
        server.down = _plain(error)
        server.down_since = time.monotonic()


def start(url: str | None = None, model: str | None = None, key: str | None = None) -> str:
    """Connect the text tabs to the server GALLERY_TEXT_SERVER names (or `url`), once, at start;
    -> one line on what happened (also logged). An empty URL means: no server (the default)."""
    global _server
    url = (settings.TEXT_SERVER if url is None else url).strip()
    model = (settings.TEXT_SERVER_MODEL if model is None else model).strip() or None
    key = settings.TEXT_SERVER_KEY if key is None else key
    with _lock:
        if _server is not None and _server.client is not None:
            _server.client.close()
        _server = None
        if not url:
            return "text tabs: in-process engine (no GALLERY_TEXT_SERVER)"
        server = _Server(url=url.rstrip("/"), model_name=model, entry=catalogue_entry(model) if model else None,
                         key=key)
        server.client = _client(server.url, key, settings.TEXT_SERVER_TIMEOUT_S)
        if model and server.entry is None:
            server.refused = (f"its model {model!r} is not on the gallery's list of text models (gallery/catalog.py), "
                              "and the gallery only runs models from that list")
        else:
            _connect(server)
        _server = server
    line = status_line()
    (log.warning if server.refused or server.down else log.info)("%s", line)
    return line


def status_line() -> str:
    server = _server
    if server is None:
        return "text tabs: in-process engine (no GALLERY_TEXT_SERVER)"
    where = _where(server.url)
    if server.refused:
        return f"text tabs: the text server at {where} is not used: {server.refused}"
    if server.down:
        return f"text tabs: the text server at {where} is set aside ({server.down}); in-process engine instead"
    return f"text tabs: {server.model_name} on the text server at {where} (top {server.top_n} log-probabilities)"


def _set_aside(server: _Server, why: str) -> None:
    with _lock:
        if server.down is None:
            server.down, server.down_since = why, time.monotonic()
            log.warning("the text server at %s is set aside: %s", _where(server.url), why)


def _usable(server: _Server) -> bool:
    """Whether the server answers now; one that was set aside is asked again every RECHECK_S."""
    if server.refused:
        return False
    if server.down is None:
        return True
    with _lock:
        due = not server.probing and time.monotonic() - server.down_since >= RECHECK_S
        server.probing = server.probing or due
    if due:  # outside the lock: a server that hangs must not hold up the others' requests
        try:
            _connect(server)
        finally:
            server.probing = False
        if server.down is None and server.refused is None:
            log.info("the text server at %s answers again", _where(server.url))
    return server.down is None and server.refused is None


def engine_for(model: Model):
    """The server's engine when it serves `model` and answers now; else None (in-process engine)."""
    server = _server
    if server is None or server.entry != model or not _usable(server):
        return None
    with _lock:
        if server.engine is None:
            try:
                server.engine = ServerEngine(server)
            except ModelUnavailable as error:  # not the catalogue's model after all: never used
                server.refused = str(error).rstrip(".")
                log.warning("the text server at %s is not used: %s", _where(server.url), server.refused)
                return None
        return server.engine


def notice(model: Model | None) -> str | None:
    """A sentence for the page when a text server is set for `model` (or for no model in
    particular) but its requests run in-process; None when nothing is to be said."""
    server = _server
    if server is None or (server.entry is not None and model is not None and server.entry != model):
        return None
    where = _where(server.url)
    if server.refused:
        return f"The text server at {where} is not used: {server.refused}. The text tabs run in this process."
    if server.down and not _usable(server):
        return (f"The text server at {where} is not answering ({server.down}), so this ran on the gallery's "
                f"own engine; the server is asked again every {RECHECK_S:g} s.")
    return None


# --- plain words for what can go wrong ---------------------------------------------------------
def _plain(error: BaseException) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {settings.TEXT_SERVER_TIMEOUT_S:g} s"
    if isinstance(error, httpx.ConnectError):
        return "it cannot be reached: connection refused or no such host"
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "the connection was cut in the middle of the answer"
    if isinstance(error, httpx.HTTPStatusError):
        return f"it answered HTTP {error.response.status_code}"
    if isinstance(error, ModelUnavailable):
        return str(error)
    return f"{type(error).__name__}: {str(error)[:200]}"


def _failed(server: _Server, error: BaseException) -> ModelUnavailable:
    """A failure in the middle of a request: set the server aside and say so in one sentence."""
    why = _plain(error)
    _set_aside(server, why)
    return ModelUnavailable(
        f"The text server at {_where(server.url)} failed during this request ({why}). Your next request "
        "runs on the gallery's own engine; please try again."
    )


# --- the engine ---------------------------------------------------------------------------------
_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="text-server")


class ServerEngine:
    """The text tabs' engine interface (see `text_engine.py`) on an OpenAI-compatible server."""

    def __init__(self, server: _Server):
        from gallery import models

        lm, tokenizer = models.load_causal_lm(server.entry)  # the same tokenizer and vocabulary as the tab's
        self._server = server
        self.vocab_size = int(lm.get_output_embeddings().weight.shape[0])
        if server.n_vocab is not None and server.n_vocab != self.vocab_size:
            raise ModelUnavailable(
                f"The text server's model has {server.n_vocab:,} tokens, the gallery's {server.entry.label} "
                f"{self.vocab_size:,}: they are not the same model.")
        self.top_n = server.top_n  # rows list this many tokens; the rest is -inf
        self.model_name, self.model_id = server.model_name, server.model_id
        kind = "llama.cpp server" if server.owner == "llamacpp" else "OpenAI-compatible server"
        self.name = f"{kind} at {_where(server.url)}, serving {server.model_name}"
        if tokenizer.eos_token_id is None:
            raise ModelUnavailable(f"{server.entry.label} has no end-of-text token, which the text server needs.")
        self._end_id = int(tokenizer.eos_token_id)
        self._bytes_of = _token_bytes(tokenizer)
        self._token_of: dict[bytes, int] = {}
        for token, piece in enumerate(self._bytes_of):
            if piece:
                self._token_of.setdefault(piece, token)

    # -- next-token rows ------------------------------------------------------------------------
    def _row(self, listed: list[tuple[int, float]]) -> torch.Tensor:
        row = torch.full((self.vocab_size,), float("-inf"))
        for token, logprob in listed:
            if 0 <= token < self.vocab_size:
                row[token] = logprob  # (llama.cpp writes the lowest float for p = 0: exp gives 0)
        return row

    def _next_token_row(self, ids: Sequence[int], deadline: float) -> torch.Tensor:
        body = {
            "model": self.model_id, "prompt": [int(i) for i in ids], "max_tokens": 1, "logprobs": self.top_n,
            "temperature": 0, "logit_bias": {str(self._end_id): 100}, "cache_prompt": True,
            "return_tokens_as_token_ids": True,  # vLLM: "token_id:<id>" keys (llama.cpp sends ids anyway)
        }
        answer = _post(self._server, "/completions", body, deadline)
        steps = logprob_steps(answer)
        if not steps or not steps[0].listed:
            raise ModelUnavailable("The text server sent no log-probabilities for the next token.")
        return self._row(steps[0].listed)  # (the forced end token is not one of them, unless listed)

    def logits_batch(self, id_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """-> (B, V): each id list's next-token row, the requests sent at once."""
        deadline = time.monotonic() + settings.TEXT_SERVER_TIMEOUT_S
        futures = [_pool.submit(self._next_token_row, ids, deadline) for ids in id_lists]
        return torch.stack([future.result() for future in futures])

    def logits(self, ids: Sequence[int]) -> torch.Tensor:
        return self.logits_batch([ids])[0]

    def logits_at(self, ids: Sequence[int], last: int) -> torch.Tensor:
        """-> (last, V): row i predicts the token after ids[:len(ids) - last + i + 1]."""
        ids = list(ids)
        return self.logits_batch([ids[: len(ids) - last + i + 1] for i in range(last)])

    # -- generation -----------------------------------------------------------------------------
    def generate(self, ids: Sequence[int], max_new_tokens: int, pick: Callable[[int, torch.Tensor], int],
                 eos_ids: set[int], max_time: float | None = None,
                 stop: threading.Event | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (token, its step's row) per step, `pick` choosing from each row, one next-token
        request per step; ends after an end token, max_new_tokens, max_time seconds, or `stop`."""
        started = time.monotonic()
        ids = [int(i) for i in ids]
        for step in range(max_new_tokens):
            row = self.logits(ids)
            token = int(pick(step, row))
            yield token, row
            ids.append(token)
            out_of_time = max_time is not None and time.monotonic() - started > max_time
            if token in eos_ids or out_of_time or (stop is not None and stop.is_set()):
                return

    def generate_batch(self, id_lists: Sequence[Sequence[int]], max_new_tokens: int,
                       pick: Callable[[int, int, torch.Tensor], int], eos_ids: set[int],
                       max_time: float | None = None, stop: threading.Event | None = None,
                       ended: Callable[[int], bool] | None = None, draws: Sequence[Draw] | None = None,
                       ) -> Iterator[tuple[list[int | None], list[torch.Tensor | None]]]:
        """Every row one streamed request, all at once; the server samples each row with its
        `draws[row]` (`pick` is not asked: the server chooses). Yields a step once every row
        still running has its next token: (tokens, rows), None for a row that has ended; a row
        lists the server's log-probability of the chosen token (and of its top one) only, and
        nothing for a token the server held back (see `_RowStream._tokens`). The end of a row
        (an end token, `ended(row)`, max_time, `stop`) closes its stream. A row that its token
        budget ends inside a character lacks that character's first bytes: llama-server never
        sends them (the in-process engine's reply ends in '�' there)."""
        draws = list(draws) if draws is not None else [Draw() for _ in id_lists]
        streams = [_RowStream(self, list(ids), max_new_tokens, draw) for ids, draw in zip(id_lists, draws)]
        started = time.monotonic()
        alive = [True] * len(streams)
        try:
            for step in range(max_new_tokens):
                tokens: list[int | None] = []
                rows: list[torch.Tensor | None] = []
                for r, stream in enumerate(streams):
                    got = stream.next(started, max_time, stop) if alive[r] else None
                    if got is None:
                        alive[r] = False
                        tokens.append(None)
                        rows.append(None)
                        continue
                    token, listed = got
                    tokens.append(token)
                    rows.append(self._row(listed))
                    if token in eos_ids:
                        alive[r] = False
                if not any(t is not None for t in tokens):
                    return
                yield tokens, rows
                if ended is not None:
                    for r in range(len(streams)):
                        if alive[r] and ended(r):
                            alive[r] = False
                            streams[r].close()
                if not any(alive) or (stop is not None and stop.is_set()):
                    return
                if max_time is not None and time.monotonic() - started > max_time:
                    return
        finally:
            for stream in streams:
                stream.close()


class _RowStream:
    """One row's streamed request, read in a thread of its own into a queue of (token, listed)."""

    def __init__(self, engine: ServerEngine, ids: list[int], max_new_tokens: int, draw: Draw):
        import queue

        self._engine, self._server = engine, engine._server
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._response = None
        body = {
            "model": engine.model_id, "prompt": ids, "max_tokens": max_new_tokens, "stream": True,
            "logprobs": ROW_LOGPROBS, "temperature": draw.temperature, "top_p": draw.top_p,
            "top_k": draw.top_k, "seed": draw.seed, "cache_prompt": True, "return_tokens_as_token_ids": True,
            # transformers' order and nothing else (llama.cpp's default chain adds min-p, typical-p...)
            "samplers": ["top_k", "temperature", "top_p"], "min_p": 0.0,
        }
        self._thread = threading.Thread(target=self._read, args=(body,), name="text-server-row", daemon=True)
        self._thread.start()

    def _read(self, body: dict) -> None:
        import httpx

        try:
            with self._server.client.stream("POST", "/completions", json=body) as response:
                self._response = response
                if response.status_code >= 400:
                    content = response.read()
                    if response.status_code >= 500:
                        raise httpx.HTTPStatusError("server error", request=response.request, response=response)
                    self._queue.put(_refused_request(response.status_code, content))
                    return
                for line in response.iter_lines():
                    if self._closed.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    for token, listed in self._tokens(json.loads(data)):
                        self._queue.put((token, listed))
            self._queue.put(None)  # the row ended (an end token, or its token budget)
        except (httpx.HTTPError, ValueError) as error:
            self._queue.put(error if not self._closed.is_set() else None)

    def _tokens(self, chunk: dict) -> list[tuple[int, list[tuple[int, float]]]]:
        """The tokens one streamed chunk carries. llama-server holds back a token that ends inside
        a UTF-8 character and sends its bytes with the next one, under that one's id: those bytes
        come first, as the vocabulary's longest pieces (`_pieces`), with no figures (the server
        sent none)."""
        out = []
        choice = (chunk.get("choices") or [{}])[0]
        engine = self._engine
        for step in logprob_steps(chunk):
            own = engine._bytes_of[step.token] if 0 <= step.token < len(engine._bytes_of) else None
            if step.raw is not None and own and len(step.raw) > len(own) and step.raw.endswith(own):
                out += [(held, []) for held in _pieces(step.raw[: len(step.raw) - len(own)], engine._token_of)]
            listed = dict(step.listed)
            if step.logprob is not None:
                listed[step.token] = step.logprob
            out.append((step.token, list(listed.items())))
        if not out and choice.get("text"):
            raise ValueError("the text server's streamed chunk carries text but no token ids")
        return out

    def next(self, started: float, max_time: float | None, stop: threading.Event | None):
        """-> (token, listed), or None once the row has ended (its end, max_time, `stop`);
        raises the server's failure, or a silence longer than GALLERY_TEXT_SERVER_TIMEOUT_S."""
        import queue

        import httpx

        waiting_since = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                if stop is not None and stop.is_set():
                    return None
                if max_time is not None and time.monotonic() - started > max_time:
                    return None  # the time limit holds: the row ends here, as in-process
                if time.monotonic() - waiting_since > settings.TEXT_SERVER_TIMEOUT_S:
                    raise _failed(self._server, httpx.ReadTimeout("no token in time")) from None
                continue
            if isinstance(item, ModelUnavailable):
                raise item
            if isinstance(item, BaseException):
                raise _failed(self._server, item)
            return item

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            try:
                response.close()  # the server sees the connection go and stops the row
            except Exception:  # noqa: BLE001 - closing from another thread is best effort
                pass


def _token_bytes(tokenizer) -> list[bytes | None]:
    """token id -> the bytes it stands for (None: a special token): GPT-2 style byte-level
    pieces through their printable stand-in characters; SentencePiece pieces with '▁' for a
    space and '<0xNN>' for one byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    back = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab = tokenizer.get_vocab()
    byte_level = any(piece.startswith("Ġ") for piece in vocab)
    special = set(tokenizer.all_special_ids)
    out: list[bytes | None] = [None] * (max(vocab.values()) + 1)
    for piece, token in vocab.items():
        if token in special:
            continue
        if byte_level and all(c in back for c in piece):
            out[token] = bytes(back[c] for c in piece)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out[token] = bytes([int(piece[3:5], 16)])
        else:
            out[token] = piece.replace("▁", " ").encode()
    return out


def _pieces(held: bytes, by_bytes: dict[bytes, int]) -> list[int]:
    """Token ids for bytes the server held back: the longest vocabulary piece first, as BPE's
    merges mostly give (the text is the same either way)."""
    out, start = [], 0
    while start < len(held):
        for end in range(min(len(held), start + 16), start, -1):
            if held[start:end] in by_bytes:
                out.append(by_bytes[held[start:end]])
                start = end
                break
        else:
            raise ValueError(f"the text server sent bytes no token stands for: {held[start:start + 4]!r}")
    return out


# --- HTTP helpers ------------------------------------------------------------------------------
def _refused_request(status: int, content: bytes) -> ModelUnavailable:
    """A 4xx answer in words (the server's own message, where it gives one). The server is
    fine; this request is not (too long a prompt, say), so it is not set aside."""
    try:
        detail = json.loads(content).get("error", {})
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
    except (ValueError, AttributeError):
        message = content.decode(errors="replace")[:200]
    return ModelUnavailable(f"The text server refused this request (HTTP {status}): {message}")


def _post(server: _Server, path: str, body: dict, deadline: float) -> dict:
    """POST and read the JSON answer, all of it within `deadline` (time.monotonic): a server that
    trickles its answer cannot stretch the request's time limit either."""
    import httpx

    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.ReadTimeout("out of time")
        timeout = httpx.Timeout(remaining, connect=min(CONNECT_TIMEOUT_S, remaining))
        with server.client.stream("POST", path, json=body, timeout=timeout) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("out of time")
            content = b"".join(chunks)
            if response.status_code >= 500:
                raise httpx.HTTPStatusError("server error", request=response.request, response=response)
            if response.status_code >= 400:
                raise _refused_request(response.status_code, content)
            return json.loads(content)
    except ModelUnavailable:
        raise
    except (httpx.HTTPError, ValueError) as error:
        raise _failed(server, error) from None


@dataclass
class _Step:
    """One generated token as `/v1/completions` describes it."""

    token: int
    logprob: float | None  # the chosen token's own log-probability (None: not sent)
    listed: list[tuple[int, float]]  # (token, log-probability) of the top list
    raw: bytes | None  # the bytes sent with it (llama.cpp), held-back ones first


def logprob_steps(answer: dict) -> list[_Step]:
    """One `_Step` per generated token, from either shape of `/v1/completions` log-probabilities:
    llama.cpp's (`logprobs.content[i]`, with ids) or OpenAI's (`logprobs.tokens[i]` and
    `logprobs.top_logprobs[i]` as {token: lp}, whose tokens a vLLM server writes as
    'token_id:<id>' when asked)."""
    choice = (answer.get("choices") or [{}])[0]
    logprobs = choice.get("logprobs") or {}
    if isinstance(logprobs.get("content"), list):
        return [_Step(int(entry["id"]), float(entry["logprob"]),
                      [(int(t["id"]), float(t["logprob"])) for t in entry.get("top_logprobs") or []],
                      bytes(entry["bytes"]) if entry.get("bytes") is not None else None)
                for entry in logprobs["content"]]
    chosen = logprobs.get("token_logprobs") or [None] * len(logprobs.get("tokens") or [])
    return [_Step(_token_id(token), lp, [(_token_id(t), float(v)) for t, v in (top or {}).items()], None)
            for token, lp, top in zip(logprobs.get("tokens") or [], chosen, logprobs.get("top_logprobs") or [])]


def _token_id(text: str) -> int:
    if isinstance(text, str) and text.startswith("token_id:"):
        return int(text.split(":", 1)[1])
    raise ModelUnavailable(
        "The text server names its tokens by text, not by id (a vLLM server does so with "
        "return_tokens_as_token_ids); the gallery needs the ids."
    )
