"""Explain what a causal language model generated: one row of scores per output token.

For a prompt and its continuation (generated here, or given and decoded by force), output token
``j`` is explained as the next token after everything before it: the prompt and the output
tokens ``0..j-1``. Every output token's prefix is one text of a batch, so every method works
here as it does on one text, layered ones included. A causal LM's output at a position depends on
the tokens up to it only, so for methods that read positions (gradients, integrated gradients,
occlusion) every row is the whole sequence, read at its own output token's position: the rows
share each forward pass, and a gradient method gets all their gradients from one backward pass
batched over the rows. The rows form a matrix, output tokens x input tokens, with NaN where an
input comes after the output it would explain.

Before the work starts, a ``Plan`` says how many output tokens run in how many batches, the model
passes and the estimated peak memory (``on_plan``; the command line prints it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textlens import progress
from textlens.errors import TextlensError
from textlens.explanation import Explanation
from textlens.memory import HEADROOM, available_bytes, budget_bytes, fits, plan_checkpointing
from textlens.methods.registry import DEFAULT_METHOD
from textlens.progress import duration
from textlens.text import check_unicode

SCHEMA = "textlens.generation/1"
GENERATING_TASKS = ("causal-lm", "seq2seq-lm")
"""The tasks of models that write text: their answers are explained token by token."""
GIB = 2**30


@dataclass(frozen=True)
class Plan:
    """The work for a generated answer, known before it starts.

    Attributes:
        method: The method's name.
        output_tokens: Output tokens to explain.
        length: Tokens in the longest row (the prompt and all output tokens but the last).
        batch_size: Output tokens per batch (it may still halve on running out of memory).
        batches: How many batches.
        shared: True when the rows of a batch share their passes (one sequence read at each
            output token's position).
        passes: Rows the model runs in all (each with a backward pass for gradient methods), or
            None when the method does not say.
        memory_bytes: Estimated peak memory of the largest batch, or None when the method does
            not say.
        free_bytes: Memory free on the device when planned.
        budget_bytes: What the run may use: ``max_memory`` when given, else a share of the
            free memory.
        checkpointing: True when the batches run with gradient checkpointing (only that fits).
        seconds: Expected seconds of the run (from the time of one forward pass over the whole
            sequence, the passes and whether they go backward too), or None when the method
            does not count its passes.
    """

    method: str
    output_tokens: int
    length: int
    batch_size: int
    batches: int
    shared: bool
    passes: int | None
    memory_bytes: int | None
    free_bytes: int
    budget_bytes: int = 0
    checkpointing: bool = False
    seconds: float | None = None

    def describe(self) -> str:
        """The plan as one line."""
        rows = "one sequence shared by all rows" if self.shared else "a prefix per row"
        tokens = "token" if self.output_tokens == 1 else "tokens"
        batches = "batch" if self.batches == 1 else "batches"
        parts = [
            f"{self.method} on {self.output_tokens} output {tokens} ({self.length} tokens at "
            f"most, {rows}) in {self.batches} {batches} of {self.batch_size}"
        ]
        if self.passes is not None:
            passes = "pass" if self.passes == 1 else "passes"
            parts.append(f"about {self.passes} model {passes} of one row")
        if self.memory_bytes is not None:
            room = (
                f"{self.free_bytes / GIB:.1f} GiB free"
                if self.budget_bytes in (0, int(HEADROOM * self.free_bytes))
                else f"max_memory {self.budget_bytes / GIB:.1f} GiB"
            )
            kept = ", with gradient checkpointing" if self.checkpointing else ""
            parts.append(f"peak memory about {self.memory_bytes / GIB:.2f} GiB of {room}{kept}")
        if self.seconds is not None:
            parts.append(f"about {duration(self.seconds)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Generation:
    """A generated (or forced) continuation and its explanation, output token by output token.

    Attributes:
        prompt: The prompt as given.
        text: The prompt followed by the continuation.
        tokens: Every token, the prompt's then the output's, as the text they cover.
        offsets: Each token's ``(start, end)`` in ``text``.
        special: True for special tokens (left out of colour scales).
        token_ids: The ids the model read and wrote, prompt then output.
        n_prompt: How many of ``tokens`` are the prompt's.
        probabilities: The model's probability of each output token at its step.
        entropies: The entropy (nats) of the model's next-token distribution at each step.
        explanations: One Explanation per output token, over the tokens before it.
        method: The method's registry name.
        model: The model's name.
        roles: Each token's part: ``prompt`` / ``output``, or with a chat template ``system``,
            ``user``, ``template`` (the template's own text and special tokens, also flagged in
            ``special``, so colour scales and removal metrics leave them out) and ``assistant``.
    """

    prompt: str
    text: str
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    special: tuple[bool, ...]
    token_ids: tuple[int, ...]
    n_prompt: int
    probabilities: np.ndarray
    entropies: np.ndarray
    explanations: tuple[Explanation, ...]
    method: str
    model: str = ""
    roles: tuple[str, ...] = ()
    batch_size: int = 0
    """Output tokens per batch in the end (after any halving)."""
    plan: Plan | None = None
    """The plan announced before the work."""
    documents: tuple[tuple[int, int], ...] = ()
    """The character spans of the prompt's documents in ``text`` (document units)."""
    n_source: int = 0
    """An encoder-decoder model's source tokens: the first ``n_source`` of ``tokens`` are the
    encoder's input (the prompt), then come the decoder's start token and the output. 0 for a
    causal LM."""
    separator: str = ""
    """What ``text`` puts between the prompt and the output (a line break after an
    encoder-decoder's source; nothing after a causal LM's prompt, which the output continues)."""

    @property
    def continuation(self) -> str:
        """The generated (or forced) text after the prompt."""
        return self.text[len(self.prompt) + len(self.separator) :]

    @property
    def encoder_decoder(self) -> bool:
        """Whether the model was an encoder-decoder (its source and output are two matrices)."""
        return self.n_source > 0

    def source_matrix(self, layer: int | None = None) -> np.ndarray:
        """An encoder-decoder's scores of the source tokens ``(output tokens, n_source)``: what
        each output token owes the text it translates or summarises."""
        if not self.encoder_decoder:
            raise TextlensError("a causal LM has no source: read matrix() for the prompt")
        return self.matrix(layer)[:, : self.n_source]

    def target_matrix(self, layer: int | None = None) -> np.ndarray:
        """An encoder-decoder's scores of the decoder's tokens ``(output tokens, 1 + output
        tokens)``: the start token, then the earlier output tokens (NaN from each row's own
        token on)."""
        if not self.encoder_decoder:
            raise TextlensError("a causal LM has no source: read matrix() for the prompt")
        return self.matrix(layer)[:, self.n_source :]

    @property
    def output_tokens(self) -> tuple[str, ...]:
        return self.tokens[self.n_prompt :]

    @property
    def layered(self) -> bool:
        return bool(self.explanations) and self.explanations[0].layered

    def matrix(self, layer: int | None = None) -> np.ndarray:
        """Scores ``(output tokens, all tokens)``; row ``j`` covers the ``n_prompt + j`` tokens
        before output token ``j`` and is NaN from there on. ``layer`` picks a layered method's
        layer (default: its last)."""
        out = np.full((len(self.explanations), len(self.tokens)), np.nan)
        for j, exp in enumerate(self.explanations):
            row = exp.row(layer)
            out[j, : len(row)] = row
        return out

    def to_dict(self) -> dict[str, Any]:
        first = self.explanations[0] if self.explanations else None
        layers = list(first.layers) if first is not None and first.layers else None
        return {
            "schema": SCHEMA,
            "prompt": self.prompt,
            "text": self.text,
            "continuation": self.continuation,
            "tokens": list(self.tokens),
            "offsets": [list(o) for o in self.offsets],
            "special": list(self.special),
            "roles": list(self.roles),
            "token_ids": list(self.token_ids),
            "n_prompt": self.n_prompt,
            "probabilities": self.probabilities.tolist(),
            "entropies": self.entropies.tolist(),
            "method": self.method,
            "params": dict(first.params) if first is not None else {},
            "model": self.model,
            "layers": layers,
            "matrix": _nan_to_none(self.matrix()),
            "layer_matrices": (
                {str(n): _nan_to_none(self.matrix(n)) for n in layers} if layers else None
            ),
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "documents": [list(d) for d in self.documents],
            "n_source": self.n_source,
            "separator": self.separator,
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_frame(self, layer: int | None = None) -> Any:
        """The output x input matrix as a pandas DataFrame: a row per output token, a column
        per token (NaN after each output token's prefix)."""
        import pandas as pd

        rows = [f"{j}:{t}" for j, t in enumerate(self.output_tokens)]
        columns = [f"{i}:{t}" for i, t in enumerate(self.tokens)]
        return pd.DataFrame(self.matrix(layer), index=rows, columns=columns)

    def _repr_html_(self) -> str:
        """The interactive view in a notebook: hover an output token to colour its inputs."""
        from textlens.render.generation import generation_html

        page = _attribute(generation_html(self))
        return f'<iframe srcdoc="{page}" style="width:100%;height:22em;border:0"></iframe>'


def _attribute(text: str) -> str:
    """Text escaped for an HTML attribute value in double quotes."""
    import html

    return html.escape(text, quote=True)


def _nan_to_none(values: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


def explain_generation(
    prompt: str,
    model: Any = "demo-lm",
    method: Any = DEFAULT_METHOD,
    *,
    generate: int | None = None,
    continuation: str | None = None,
    sample_seed: int | None = None,
    chat: bool = False,
    documents: Sequence[str] = (),
    truncate: str | None = None,
    system: str | None = None,
    attribute_to: str = "all",
    batch_size: int | str = "auto",
    device: str | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    max_memory: int | str | None = None,
    **params: Any,
) -> Generation:
    """Explain each token a causal LM generates (``generate=N``) or a given answer
    (``continuation=TEXT``, decoded by force) by the tokens before it.

    Args:
        prompt: The prompt.
        model: A causal LM: a folder, an adapter, or ``"demo-lm"`` (the packaged SmolLM2).
        method: Any method (a registry name or instance).
        generate: How many tokens to generate (greedy unless ``sample_seed``); stops early at
            the end-of-sequence token.
        continuation: The answer to explain instead of generating one.
        sample_seed: Sample the generated tokens, seeded by this number, instead of greedy
            decoding (a method's own ``seed`` setting goes with ``params``).
        chat: ``prompt`` is a user message: put it (after ``system``, if given) into the
            tokenizer's chat template, with the assistant's turn opened.
        system: A system message (with ``chat``).
        documents: The documents ``prompt`` holds (``textlens.prompt.build_prompt`` made it of
            them): each output token's scores can then be read per document.
        truncate: ``"left"`` keeps the end of a prompt too long for the model's context (and
            leaves the answer its room), ``"right"`` its start; None refuses such a prompt.
        attribute_to: ``"all"``: every token before an output token gets a score, the earlier
            output tokens too; ``"prompt"``: only the prompt's, the earlier output tokens are
            fixed context (kept in baselines, never removed), as Captum's ``LLMAttribution``
            does.
        batch_size: Output tokens explained per batch (each its own prefix); ``"auto"``
            starts with all of them and halves while the method's memory estimate exceeds
            what the device has free. Either way a batch that runs out of memory is halved and
            run again, down to one output token.
        device: ``"cpu"`` or ``"cuda"``; None keeps the adapter's.
        on_plan: Called with the ``Plan`` (batches, model passes, estimated peak memory and
            time) once the answer is known and before the method runs.
        max_memory: The memory the run may plan to use, as bytes or text such as ``"16GiB"``
            (None: a share of the memory free on the device): batches shrink, and gradient
            checkpointing is used, to stay within it; what cannot fit is refused before any
            work on it.
        params: The method's settings.

    Example:
        >>> gen = explain_generation("The capital of France is", generate=3)
        >>> gen.matrix().shape  # 3 output tokens x (prompt + output tokens)
    """
    from textlens.memory import memory_limit

    with memory_limit(max_memory):
        return _explain_generation(
            prompt, model, method, generate=generate, continuation=continuation,
            sample_seed=sample_seed, chat=chat, documents=documents, truncate=truncate,
            system=system, attribute_to=attribute_to, batch_size=batch_size, device=device,
            on_plan=on_plan, **params,
        )  # fmt: skip


def _explain_generation(
    prompt: str,
    model: Any,
    method: Any,
    *,
    generate: int | None,
    continuation: str | None,
    sample_seed: int | None,
    chat: bool,
    documents: Sequence[str],
    truncate: str | None,
    system: str | None,
    attribute_to: str,
    batch_size: int | str,
    device: str | None,
    on_plan: Callable[[Plan], None] | None,
    **params: Any,
) -> Generation:
    import torch

    from textlens.methods import get_method
    from textlens.methods.base import describe, forward_unique
    from textlens.pipeline import resolve_adapter, run_batch

    if attribute_to not in ("all", "prompt"):
        raise TextlensError(f"attribute_to={attribute_to!r}: use 'all' or 'prompt'")
    if (generate is None) == (continuation is None):
        raise TextlensError("give either generate=N (tokens to generate) or continuation=TEXT")
    adapter = resolve_adapter(model, device)
    if adapter.task not in GENERATING_TASKS:
        raise TextlensError(
            f"explaining a generated answer needs a causal or encoder-decoder language model; "
            f"this is a {adapter.task} model (give one with --model, e.g. demo-lm)"
        )
    encoder_decoder = bool(getattr(adapter, "encoder_decoder", False))
    chosen = get_method(method, **params)  # settings checked before any work
    if encoder_decoder and not describe(type(chosen), "encoder_decoder"):
        from textlens.methods import METHODS

        usable = sorted(n for n, c in METHODS.items() if describe(c, "encoder_decoder"))
        raise TextlensError(
            f"{chosen.name} does not explain encoder-decoder models; use one of: "
            f"{', '.join(usable)}"
        )
    if batch_size != "auto" and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise TextlensError(
            f"batch_size={batch_size!r} is not valid: use 'auto' or a whole number >= 1"
        )
    batch_sizes: list[int] = []
    tokenizer = adapter.tokenizer
    spans: dict[str, tuple[int, int]] = {}
    for what, value in (("the continuation", continuation), ("the system message", system)):
        if value is not None and not isinstance(value, str):
            raise TextlensError(f"{what} must be a string, not {type(value).__name__}")
        if value is not None:
            check_unicode(value, what)
    if sample_seed is not None and (
        isinstance(sample_seed, bool) or not isinstance(sample_seed, int)
    ):
        raise TextlensError(f"sample_seed={sample_seed!r} is not valid: use a whole number or None")
    if chat:
        prompt, spans = chat_prompt(tokenizer, prompt, system)
    elif system is not None:
        raise TextlensError("a system message goes with chat=True (--chat)")
    doc_spans: tuple[tuple[int, int], ...] = ()
    if documents:
        from textlens.prompt import locate

        doc_spans = locate(prompt, documents)
    given = None
    if continuation is not None:
        if not continuation.strip():
            raise TextlensError("the continuation is empty: give the answer to explain")
        given = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    answer = len(given) if given is not None else generate if isinstance(generate, int) else 0
    # truncation, when asked for, leaves the answer its room in the model's context (an
    # encoder-decoder's answer has the decoder's own)
    limit = max(1, adapter.max_length - answer) if truncate is not None else None
    if encoder_decoder and truncate is not None:
        limit = adapter.max_length
    first = adapter.encode([prompt], max_length=limit, warn=False, truncate=truncate)
    prompt_ids = first.input_ids[0, : int(first.lengths[0])].tolist()
    source_special = first.special_mask[0, : len(prompt_ids)].tolist()
    prompt_tokens, prompt_offsets = list(first.tokens[0]), list(first.offsets[0])
    n_source, separator = 0, ""
    if encoder_decoder:  # the decoder starts from its start token, after the source
        n_source, separator = len(prompt_ids), "\n"
        start = int(getattr(adapter, "start_token_id", adapter.pad_token_id))
        prompt_ids.append(start)
        source_special.append(True)
        prompt_tokens.append(str(tokenizer.convert_ids_to_tokens(start)))
        prompt_offsets.append((0, 0))
    room = adapter.max_length - (1 if encoder_decoder else len(prompt_ids))
    if given is not None:
        out_ids = given
        if len(out_ids) > room:
            raise TextlensError(
                f"the continuation is {len(out_ids)} tokens but the model's context leaves "
                f"{room} after the prompt; shorten it"
            )
    else:
        if isinstance(generate, bool) or not isinstance(generate, int) or generate < 1:
            raise TextlensError(f"generate={generate!r} is not valid: generate at least 1 token")
        if generate > room:
            raise TextlensError(
                f"cannot generate {generate} tokens: the model's context leaves {room} after "
                f"the prompt's {len(prompt_ids)}; ask for fewer"
            )
        source_ids = prompt_ids[:n_source] if encoder_decoder else prompt_ids
        out_ids = _generate(adapter, source_ids, generate, sample_seed)
        if not out_ids:
            raise TextlensError("the model ended the answer at once (end-of-sequence first)")
    ids = prompt_ids + out_ids
    n_prompt = len(prompt_ids)
    text, offsets = _texts(tokenizer, prompt + separator, prompt_offsets, out_ids, continuation)
    tokens = tuple(prompt_tokens) + _output_tokens(tokenizer, text, offsets[n_prompt:], out_ids)
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    roles = _roles(offsets[:n_prompt], prompt_ids, specials, spans)
    if encoder_decoder:
        roles = ("source",) * n_source + ("template",)
    roles += ("assistant" if chat else "output",) * len(out_ids)
    special = tuple(
        bool(flag) or i in specials or role == "template"
        for flag, i, role in zip(source_special + [False] * len(out_ids), ids, roles, strict=True)
    )
    clock = time.perf_counter()
    probabilities, entropies = _steps(adapter, ids, n_prompt, n_source)
    pass_seconds = time.perf_counter() - clock
    fixed = special if attribute_to == "all" else special[:n_prompt] + (True,) * len(out_ids)

    shares = bool(describe(type(chosen), "reads_positions"))

    def batch_for(rows: range) -> Any:
        """The rows' prefixes; for a method that reads positions, each row is the longest
        prefix (read at its own position), so that the rows share their passes."""
        return _prefix_batch(
            adapter, text, ids, tokens, offsets, fixed, n_prompt, rows, whole=shares,
            documents=doc_spans, n_source=n_source,
        )  # fmt: skip

    def run(rows: range) -> list[Explanation]:
        began = time.perf_counter()
        batch = batch_for(rows)
        positions = tuple(n_prompt + j - 1 for j in rows)
        goal = _forced(tuple(out_ids[j] for j in rows), positions if shares else None)
        read = None  # a causal LM's logits where the rows read them only: not T x vocabulary
        if getattr(adapter, "keeps_logits", False):
            ends = torch.tensor(positions) if shares else batch.lengths.cpu() - 1
            read = torch.unique(ends).to(batch.input_ids.device)
        clean = forward_unique(adapter, batch, adapter.embed(batch), logits_at=read)
        # a method that reads positions ran the longest prefix for every row: each Explanation
        # keeps its own prefix's tokens
        shown = _prefix_batch(
            adapter, text, ids, tokens, offsets, fixed, n_prompt, rows, documents=doc_spans,
            n_source=n_source,
        )  # fmt: skip
        return run_batch(adapter, batch, chosen, goal, clean=clean, shown=shown, began=began)

    def fit(rows: range) -> bool:
        # fewer rows a batch first (the same work); checkpointing (a pass more) at one row
        return fits(chosen, adapter, batch_for(rows), checkpointing=False)

    size = len(out_ids) if isinstance(batch_size, str) else min(batch_size, len(out_ids))
    while batch_size == "auto" and size > 1 and not fit(range(size)):
        size = max(1, size // 2)
    plan = _plan(chosen, adapter, batch_for, len(out_ids), size, shares, pass_seconds)
    if on_plan is not None:
        on_plan(plan)
    explanations: list[Explanation] = []
    start = 0
    began = time.perf_counter()
    while start < len(out_ids):
        rows = range(start, min(start + size, len(out_ids)))
        if batch_size == "auto" and size > 1 and not fit(rows):
            size = max(1, size // 2)
            continue
        try:
            explanations += run(rows)
        except (MemoryError, torch.OutOfMemoryError):
            if size == 1:
                raise TextlensError(
                    f"{chosen.name} runs out of memory on one output token of a "
                    f"{n_prompt + rows[0]}-token prefix: use a shorter prompt or answer, or "
                    "smaller settings"
                ) from None
            size = max(1, size // 2)  # the same rows again, fewer at a time
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start = rows.stop
        progress.bar(start, len(out_ids), "output tokens", began)
    batch_sizes.append(size)
    return Generation(
        prompt=prompt,
        text=text,
        tokens=tuple(tokens),
        offsets=tuple(offsets),
        special=special,
        token_ids=tuple(ids),
        n_prompt=n_prompt,
        probabilities=probabilities,
        entropies=entropies,
        explanations=tuple(explanations),
        method=chosen.name,
        model=adapter.name,
        roles=roles,
        batch_size=batch_sizes[-1],
        plan=plan,
        documents=doc_spans,
        n_source=n_source,
        separator=separator,
    )


def _plan(
    method: Any,
    adapter: Any,
    batch_for: Callable[[range], Any],
    n_out: int,
    size: int,
    shared: bool,
    pass_seconds: float = 0.0,
) -> Plan:
    """The batches, model passes, estimated peak memory and time of a run; refuses one whose
    first batch cannot fit (``textlens.memory``), before it starts."""
    from textlens.methods.base import describe

    starts = range(0, n_out, size)
    batches = [batch_for(range(a, min(a + size, n_out))) for a in starts]
    largest = max(batches, key=lambda b: b.input_ids.numel())  # the longest prefixes
    checkpoint = plan_checkpointing(method, adapter, largest)
    passes = None
    count = getattr(method, "passes", None)
    if count is not None:
        passes = sum(int(count(adapter, b.select([0]) if shared else b)) for b in batches)
    seconds = None
    if passes is not None and pass_seconds > 0:
        # a backward pass costs about two forward passes, checkpointing one more
        per_pass = 3.0 + checkpoint if describe(type(method), "backward") else 1.0
        seconds = passes * pass_seconds * per_pass
    estimate = getattr(method, "memory_bytes", None)
    memory = None
    if estimate is not None:
        if checkpoint:
            with adapter.checkpointed():
                memory = int(estimate(adapter, largest))
        else:
            memory = int(estimate(adapter, largest))
    return Plan(
        method=method.name,
        output_tokens=n_out,
        length=int(batches[-1].input_ids.shape[1]),
        batch_size=size,
        batches=len(batches),
        shared=shared,
        passes=passes,
        memory_bytes=memory,
        free_bytes=int(available_bytes(adapter.device)),
        budget_bytes=budget_bytes(adapter.device),
        checkpointing=checkpoint,
        seconds=seconds,
    )


def chat_prompt(
    tokenizer: Any, user: str, system: str | None = None
) -> tuple[str, dict[str, tuple[int, int]]]:
    """The tokenizer's chat template around a user message (and a system message), with the
    assistant's turn opened, and where each message lies in it."""
    if not getattr(tokenizer, "chat_template", None):
        raise TextlensError(
            "this model's tokenizer has no chat template: leave out --chat and write the "
            "prompt the way the model expects it"
        )
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    spans, at = {}, 0
    for message in messages:
        start = text.find(message["content"], at)
        if start < 0:
            raise TextlensError(
                f"the chat template rewrote the {message['role']} message, so its tokens cannot "
                "be told from the template's; leave out --chat and give the prompt as it is"
            )
        at = start + len(message["content"])
        spans[message["role"]] = (start, at)
    return text, spans


def _roles(
    offsets: Sequence[tuple[int, int]],
    ids: Sequence[int],
    specials: set[int],
    spans: dict[str, tuple[int, int]],
) -> tuple[str, ...]:
    """Each prompt token's part: the message its characters lie in, else the template's."""
    if not spans:
        return ("prompt",) * len(offsets)
    roles = []
    for (a, b), i in zip(offsets, ids, strict=True):
        inside = [r for r, (s, e) in spans.items() if s <= a and b <= e and b > a]
        roles.append(inside[0] if inside and i not in specials else "template")
    return tuple(roles)


def _forced(ids: tuple[int, ...], positions: tuple[int, ...] | None = None) -> Any:
    from textlens.targets import ForcedTokens

    return ForcedTokens(ids, positions)


def _generate(adapter: Any, prompt_ids: list[int], n: int, sample_seed: int | None) -> list[int]:
    """Greedy (or seeded sampled) continuation ids, cut before the end-of-sequence token;
    cancelled work stops at the next token."""
    return adapter.generate_ids(prompt_ids, n, sample_seed, _cancel_criteria())


def _cancel_criteria() -> Any:
    """A stopping criterion that checks, at every generated token, whether the front end that
    asked for the work has cancelled it (``textlens.cancel``: it raises ``Cancelled``)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from textlens.cancel import check

    class Cancellable(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            check()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancellable()])


def _texts(
    tokenizer: Any,
    prompt: str,
    prompt_offsets: Sequence[tuple[int, int]],
    out_ids: list[int],
    continuation: str | None,
) -> tuple[str, list[tuple[int, int]]]:
    """The full text and every token's span in it; output tokens are spanned by decoding the
    output one more token at a time. ``prompt`` ends with the separator, if any, between it
    and the output."""
    offsets = list(prompt_offsets)
    decoded = ""
    for j in range(len(out_ids)):
        upto = tokenizer.decode(out_ids[: j + 1])
        offsets.append((len(prompt) + len(decoded), len(prompt) + len(upto)))
        decoded = upto
    text = prompt + (continuation if continuation is not None else decoded)
    if continuation is not None and decoded != continuation:  # the decoder normalised it
        offsets[len(prompt_offsets) :] = [(0, 0)] * len(out_ids)
    return text, offsets


def _output_tokens(
    tokenizer: Any, text: str, offsets: Sequence[tuple[int, int]], out_ids: list[int]
) -> tuple[str, ...]:
    from textlens.adapters.encoding import readable_token
    from textlens.targets import readable_piece

    shown = []
    for i, (a, b) in zip(out_ids, offsets, strict=True):
        raw = str(tokenizer.convert_ids_to_tokens(i))
        covered = text[a:b] if b > a else readable_piece(tokenizer, i)
        shown.append(readable_token(raw, covered))
    return tuple(shown)


def _steps(
    adapter: Any, ids: list[int], n_prompt: int, n_source: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each output token's probability and the entropy of its step, from one forward pass."""
    import torch

    n = len(ids)
    batch = _prefix_batch(
        adapter, "", ids, ("",) * n, [(0, 0)] * n, (False,) * n, n, [0], n_source=n_source
    )
    read = torch.arange(n_prompt - 1, len(ids) - 1, device=batch.input_ids.device)
    with torch.no_grad():
        if getattr(adapter, "keeps_logits", False):  # only the rows read: not T x vocabulary
            logits = adapter.forward(adapter.embed(batch), batch, logits_at=read).logits[0]
        else:
            logits = adapter.forward(adapter.embed(batch), batch).logits[0][read]
    logp = logits.float().log_softmax(-1)
    chosen = torch.tensor(ids[n_prompt:], device=logp.device)
    probability = logp.gather(1, chosen.unsqueeze(1)).squeeze(1).exp()
    entropy = -(logp.exp() * logp).sum(-1)
    return probability.cpu().numpy(), entropy.cpu().numpy()


def _prefix_batch(
    adapter: Any,
    text: str,
    ids: list[int],
    tokens: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    special: Sequence[bool],
    n_prompt: int,
    rows: Sequence[int] | range,
    whole: bool = False,
    documents: tuple[tuple[int, int], ...] = (),
    n_source: int = 0,
) -> Any:
    """A right-padded batch of the prefixes before output tokens ``rows``; ``whole``: every
    row is the longest of them. ``documents``: the spans of the prompt's documents;
    ``n_source``: an encoder-decoder's source tokens at the start of every row."""
    import torch

    from textlens.batch import TokenBatch

    lengths = [n_prompt + j for j in rows]
    if whole:
        lengths = [max(lengths)] * len(lengths)
    width = max(lengths)
    n = len(lengths)
    input_ids = torch.full((n, width), adapter.pad_token_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    special_mask = torch.zeros((n, width), dtype=torch.bool)
    for b, k in enumerate(lengths):
        input_ids[b, :k] = torch.tensor(ids[:k])
        attention[b, :k] = 1
        special_mask[b, :k] = torch.tensor(list(special[:k]), dtype=torch.bool)
    types = torch.zeros((n, width), dtype=torch.long) if adapter.takes_token_types else None
    ends = [offsets[k - 1][1] if k else 0 for k in lengths]
    return TokenBatch(
        texts=tuple(text[: max(e, 0)] if text else "" for e in ends),
        input_ids=input_ids,
        attention_mask=attention,
        special_mask=special_mask,
        token_type_ids=types,
        tokens=tuple(tuple(tokens[:k]) for k in lengths),
        offsets=tuple(tuple(offsets[:k]) for k in lengths),
        n_truncated=(0,) * n,
        documents=(documents,) * n if documents else (),
        n_source=n_source,
    ).to(adapter.device)


__all__ = ["SCHEMA", "Generation", "explain_generation"]
