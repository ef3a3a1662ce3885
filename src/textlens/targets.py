"""Targets: which scalar of the model's output an explanation is about.

A target is a frozen dataclass. ``bind`` looks at the clean outputs of a batch once (e.g. to take
the predicted class) and returns a ``BoundTarget`` whose ``select(outputs, rows)`` gives one scalar
per row, where ``rows[n]`` names the text that row ``n`` belongs to. Methods that expand a batch
(integrated gradients, layer conductance, occlusion) pass their own ``rows``; SmoothGrad
runs its base method on the batch as it is.

Every kind of target is registered by name in ``TARGETS`` (``@register_target``), like the
methods, and describes itself as data, so that no front end names one:

- ``kind``: the registry name (``--target-kind``, the server's ``target_kind``).
- ``tasks``: the model tasks it applies to.
- ``options``: the request fields it reads besides ``target`` (``contrast``, ``pair``...).
- ``from_request(target, **options)``: the target from what a user typed.
- ``infer(target)``: whether a plain ``target`` means this kind for a model of its tasks (a
  class name for a classifier, a token for a causal LM), when no kind is named.
- ``needs_hidden_states``: whether binding and reading it needs every layer's hidden states.
- ``follow()``: what the faithfulness metrics follow for it (a probability over the
  variants of a text), or None when they cannot follow it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from textlens.adapters.base import TASKS
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.explanation import TargetInfo
from textlens.lazy import torch


@dataclass(frozen=True, eq=False)
class BoundTarget:
    """A target fixed for one batch: ``select(outputs, rows) -> (N,)`` and one info per text."""

    select: Callable[[Any, torch.Tensor], torch.Tensor]
    infos: tuple[TargetInfo, ...]
    needs_hidden_states: bool = False
    distribution: Callable[[Any, torch.Tensor], torch.Tensor] | None = None
    """``distribution(outputs, rows) -> (N, C)``: the probabilities over the outcomes the target
    picks one of (classes, answer positions, vocabulary), for targets that have them; padding
    positions get 0. Used to say what another input (e.g. a baseline) predicts."""
    index: torch.Tensor | None = None
    """The target's outcome (column of ``distribution``) for each text."""
    outcome: Callable[[int, int], str] | None = None
    """``outcome(text, k)``: the name of outcome ``k`` for a text (a class name, a token)."""
    select_from: Callable[..., torch.Tensor] | None = None
    """``select_from(outputs, rows, source, at=None) -> (N,)``: as ``select``, with row ``m``'s
    output in row ``source[m]`` of ``outputs`` and, for targets read at ``positions``, at column
    ``at[m]`` of logits computed at some positions only; targets that have it let rows with the
    same input share one forward pass (the positions of one generated sequence)."""
    positions: torch.Tensor | None = None
    """The position of a causal LM's logits each text's value is read at, when it is one."""


TARGETS: dict[str, Any] = {}
"""Every kind of target by its name (``register_target``)."""


def register_target(cls: type) -> type:
    """Class decorator: add a target dataclass to ``TARGETS`` under its ``kind``."""
    kind = str(vars(cls)["kind"])
    if kind in TARGETS and TARGETS[kind] is not cls:
        raise ValueError(f"two targets are called {kind!r}")
    for item in ("tasks", "bind", "from_request"):
        if not hasattr(cls, item):
            raise TypeError(f"target {kind!r} declares no {item}")
    TARGETS[kind] = cls
    return cls


def target_options() -> tuple[str, ...]:
    """Every request field some target reads besides ``target`` (``contrast``, ``pair``...)."""
    return tuple(sorted({o for cls in TARGETS.values() for o in getattr(cls, "options", ())}))


class _Kind:
    """Defaults of a target kind's self-description (see the module docstring)."""

    options: ClassVar[tuple[str, ...]] = ()
    needs_hidden_states: ClassVar[bool] = False

    @classmethod
    def infer(cls, target: Any) -> bool:
        return False

    def follow(self) -> Any:
        return None

    def split(self, adapter: Any) -> tuple[Any, ...] | None:
        """Several targets to explain one after the other for each text, or None (one)."""
        return None


def _classes(adapter: Any) -> tuple[str, ...]:
    return adapter.labels or ()


def _class_index(adapter: Any, label: int | str, n_classes: int) -> int:
    names = _classes(adapter)
    if isinstance(label, str):
        if label in names:
            return names.index(label)
        if label.lstrip("-").isdigit():
            label = int(label)
        else:
            raise TextlensError(
                f"unknown label {label!r}; valid labels: {', '.join(names) or 'class indices'}"
            )
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_classes:
        raise TextlensError(
            f"class index {label} is out of range; valid: 0..{n_classes - 1} ({', '.join(names)})"
        )
    return label


def _class_probs(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """A classifier's class probabilities: softmax over the classes, or for a multi-label
    classifier each label's own sigmoid."""
    return logits.sigmoid() if multi_label else logits.softmax(-1)


@register_target
@dataclass(frozen=True)
class ClassTarget(_Kind):
    """A sequence classifier's class: the predicted one by default; several at once.

    Args:
        label: Class name or index; None = the predicted class of each text. Several labels
            (a tuple or list, ``"toxic,insult"`` as typed, or ``"all"``) explain each text once
            per label, in that order (``split``): for a multi-label classifier, each label's own
            sigmoid.
        output: ``"logit"`` (default) or ``"probability"`` of that class (a multi-label
            classifier's logit is the log-odds of its label's sigmoid probability).
    """

    kind: ClassVar[str] = "class"
    tasks: ClassVar[tuple[str, ...]] = ("sequence-classification",)
    label: int | str | tuple[int | str, ...] | None = None
    output: Literal["logit", "probability"] = "logit"

    def __post_init__(self) -> None:
        if isinstance(self.label, list):
            object.__setattr__(self, "label", tuple(self.label))
        if isinstance(self.label, tuple) and not self.label:
            raise TextlensError("no labels given: name at least one class")

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> ClassTarget:
        return cls(label=target)

    @classmethod
    def infer(cls, target: Any) -> bool:
        if isinstance(target, tuple | list):
            return bool(target) and all(isinstance(t, int | str) for t in target)
        return isinstance(target, int | str)

    def split(self, adapter: Any) -> tuple[ClassTarget, ...] | None:
        """One target per label when several are asked for (None for one label): ``"all"``
        (unless a class is called so) is every class; a text with commas that is no class name
        is a list of them."""
        label = self.label
        names = _classes(adapter)
        if isinstance(label, str) and label not in names:
            if label.strip() == "all":
                n = len(names) or int(getattr(adapter.config, "num_labels", 0) or 0)
                label = tuple(range(n))
            elif "," in label:
                label = tuple(part.strip() for part in label.split(",") if part.strip())
        if not isinstance(label, tuple):
            return None
        return tuple(dataclasses.replace(self, label=one) for one in label)

    def follow(self) -> Any:
        return ClassProbability()

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = outputs.logits
        if logits.dim() != 2:
            raise TextlensError("a class target needs a sequence classifier (logits per text)")
        if self.split(adapter) is not None:
            raise TextlensError(
                "several labels are explained one at a time: pass them to explain or "
                "explain_many, which split them (ClassTarget.split)"
            )
        multi = bool(getattr(adapter, "multi_label", False))
        probs = _class_probs(logits, multi)
        if self.label is None:
            index = logits.argmax(-1)
        else:
            assert not isinstance(self.label, tuple)  # split above
            i = _class_index(adapter, self.label, logits.shape[-1])
            index = torch.full((len(batch),), i, dtype=torch.long, device=logits.device)
        names = _classes(adapter)
        every = [names[i] if i < len(names) else str(i) for i in range(logits.shape[-1])]
        table = probs.tolist()
        infos = tuple(
            TargetInfo(
                kind=f"class-{self.output}",
                label=names[int(k)] if int(k) < len(names) else str(int(k)),
                index=int(k),
                score=float(logits[b, k]),
                probability=float(probs[b, k]),
                probabilities=dict(zip(every, table[b], strict=True)),
            )
            for b, k in enumerate(index.tolist())
        )
        use_prob = self.output == "probability"

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            values = _class_probs(out.logits, multi) if use_prob else out.logits
            return values.gather(1, index[rows].unsqueeze(1)).squeeze(1)

        def distribution(out: Any, rows: torch.Tensor) -> torch.Tensor:
            return _class_probs(out.logits.float(), multi)

        return BoundTarget(
            select, infos, distribution=distribution, index=index, outcome=lambda b, k: every[k]
        )


@register_target
@dataclass(frozen=True)
class SpanTarget(_Kind):
    """Question answering: the start or end logit of the answer span.

    Args:
        which: ``"start"`` or ``"end"``.
        position: Token position; None = the model's most likely position per text.
    """

    kind: ClassVar[str] = "answer-span"
    tasks: ClassVar[tuple[str, ...]] = ("question-answering",)
    which: Literal["start", "end"] = "start"
    position: int | None = None

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> SpanTarget:
        if target not in (None, "start", "end"):
            raise TextlensError(f"an answer-span target is 'start' or 'end', not {target!r}")
        return cls(target or "start")

    @classmethod
    def infer(cls, target: Any) -> bool:
        return target in ("start", "end")

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = getattr(outputs, f"{self.which}_logits", None)
        if logits is None:
            raise TextlensError("a span target needs a question-answering model")
        # the answer lies in the context (the pair's second text), as HF's pipeline has it
        inside = batch.in_second()[:, : logits.shape[1]].to(logits.device)
        masked = logits.masked_fill(~inside, float("-inf"))
        if self.position is None:
            index = masked.argmax(-1)
        else:
            _check_position(self.position, batch)
            index = torch.full((len(batch),), self.position, device=logits.device)
        probs = masked.float().softmax(-1)
        infos = tuple(
            TargetInfo(
                kind=f"answer-{self.which}",
                label=batch.tokens[b][k],
                index=k,
                score=float(logits[b, k]),
                probability=float(probs[b, k]),
            )
            for b, k in enumerate(index.tolist())
        )
        attr = f"{self.which}_logits"
        real = batch.real_mask

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            return getattr(out, attr).gather(1, index[rows].unsqueeze(1)).squeeze(1)

        def distribution(out: Any, rows: torch.Tensor) -> torch.Tensor:
            values = getattr(out, attr).float()
            keep = real[rows, : values.shape[1]]
            return values.masked_fill(~keep, float("-inf")).softmax(-1)

        tokens = batch.tokens
        return BoundTarget(
            select,
            infos,
            distribution=distribution,
            index=index,
            outcome=lambda b, k: f"{tokens[b][k]} (token {k})",
        )


def _check_position(position: int, batch: TokenBatch) -> None:
    shortest = int(batch.lengths.min())
    if not 0 <= position < shortest:
        raise TextlensError(f"token position {position} is out of range; valid: 0..{shortest - 1}")


@register_target
@dataclass(frozen=True)
class TokenTarget(_Kind):
    """Token classification: one token's label (the predicted one by default).

    Args:
        position: Index of the token (in model tokens, specials included).
        label: Label name or index; None = the predicted label of that token.
    """

    kind: ClassVar[str] = "token-label"
    tasks: ClassVar[tuple[str, ...]] = ("token-classification",)
    position: int = 1
    label: int | str | None = None

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> TokenTarget:
        if target is None:
            return cls()
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target)
        if not isinstance(target, int) or isinstance(target, bool):
            raise TextlensError(
                f"a token-label target is a token position (a whole number), not {target!r}"
            )
        return cls(position=target)

    @classmethod
    def infer(cls, target: Any) -> bool:
        return isinstance(target, int) and not isinstance(target, bool)

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = outputs.logits
        if logits.dim() != 3:
            raise TextlensError("a token target needs a token-classification model")
        _check_position(self.position, batch)
        at = logits[:, self.position]
        if self.label is None:
            index = at.argmax(-1)
        else:
            i = _class_index(adapter, self.label, at.shape[-1])
            index = torch.full((len(batch),), i, dtype=torch.long, device=at.device)
        names = _classes(adapter)
        probs = at.float().softmax(-1)
        every = [names[i] if i < len(names) else str(i) for i in range(at.shape[-1])]
        table = probs.tolist()
        infos = tuple(
            TargetInfo(
                kind=f"token-{self.position}-label",
                label=every[k],
                index=k,
                score=float(at[b, k]),
                probability=float(probs[b, k]),
                probabilities=dict(zip(every, table[b], strict=True)),
            )
            for b, k in enumerate(index.tolist())
        )
        position = self.position

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            return out.logits[:, position].gather(1, index[rows].unsqueeze(1)).squeeze(1)

        def distribution(out: Any, rows: torch.Tensor) -> torch.Tensor:
            return out.logits[:, position].float().softmax(-1)

        return BoundTarget(
            select, infos, distribution=distribution, index=index, outcome=lambda b, k: every[k]
        )


@register_target
@dataclass(frozen=True)
class NextTokenTarget(_Kind):
    """Causal LM: log-probability of the token that follows the text.

    Args:
        token: The next token: a string the tokenizer maps to one id (``" Paris"``), an id, or a
            string of digits, read as an id (``"7042"``, as the command line passes it; to
            follow the text of a number, give it with its leading space, ``" 42"``); None = the
            most likely next token.
        contrast: A foil, given like ``token``: the target becomes log p(token) - log p(foil),
            "why this token rather than that one" (the foil must be a single token too).
    """

    kind: ClassVar[str] = "next-token"
    tasks: ClassVar[tuple[str, ...]] = ("causal-lm",)
    options: ClassVar[tuple[str, ...]] = ("contrast",)
    token: int | str | None = None
    contrast: int | str | None = None

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> NextTokenTarget:
        return cls(token=target, contrast=options.get("contrast"))

    @classmethod
    def infer(cls, target: Any) -> bool:
        return isinstance(target, int | str)

    def follow(self) -> Any:
        return NextTokenProbability()

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = outputs.logits
        if logits.dim() != 3:
            raise TextlensError("a next-token target needs a causal language model")
        last = batch.lengths - 1
        arange = torch.arange(len(batch), device=logits.device)
        logp = logits[arange, last].float().log_softmax(-1)
        if self.token is None:
            index = logp.argmax(-1)
        else:
            i = self._token_id(adapter, logp.shape[-1], self.token)
            index = torch.full((len(batch),), i, dtype=torch.long, device=logits.device)
        foil = None
        if self.contrast is not None:
            f = self._token_id(adapter, logp.shape[-1], self.contrast)
            if self.token is not None and f == int(index[0]):
                raise TextlensError(
                    f"the contrast {self.contrast!r} is the target token itself; give another token"
                )
            foil = torch.full((len(batch),), f, dtype=torch.long, device=logits.device)
        return _next_token_bound(adapter, last, logp, index, foil)

    @staticmethod
    def _info(tokenizer: Any, logp: torch.Tensor, k: int, foil: torch.Tensor | None) -> TargetInfo:
        label = readable_piece(tokenizer, k)
        if foil is None:
            return TargetInfo(
                kind="next-token-log-probability",
                label=label,
                index=k,
                score=float(logp[k]),
                probability=float(logp[k].exp()),
            )
        f = int(foil[0])
        return TargetInfo(
            kind="next-token-log-probability-difference",
            label=f"{label!r} rather than {readable_piece(tokenizer, f)!r}",
            index=k,
            score=float(logp[k] - logp[f]),
            probability=float(logp[k].exp()),
            explained=(
                f"log p({label!r}) - log p({readable_piece(tokenizer, f)!r}) of the next token "
                f"(p = {float(logp[k].exp()):.3g} against {float(logp[f].exp()):.3g})"
            ),
        )

    @staticmethod
    def _token_id(adapter: Any, vocabulary: int, token: int | str) -> int:
        if isinstance(token, str) and token.isdigit():  # "7042": an id, as the CLI passes it
            token = int(token)
        if isinstance(token, int):
            if not 0 <= token < vocabulary:
                raise TextlensError(
                    f"token id {token} is outside this model's vocabulary (0-{vocabulary - 1}); "
                    "give an id in range or the token's text"
                )
            return token
        tokenizer = adapter.tokenizer
        fast = bool(getattr(tokenizer, "is_fast", False))
        enc = tokenizer(token, add_special_tokens=False, return_offsets_mapping=fast)
        ids = enc["input_ids"]
        if len(ids) != 1:
            pieces = (
                [
                    token[a:b] if b > a else readable_piece(tokenizer, i)
                    for i, (a, b) in zip(ids, enc["offset_mapping"], strict=True)
                ]
                if fast
                else [readable_piece(tokenizer, i) for i in ids]
            )
            raise TextlensError(
                f"the token {token!r} is {len(ids)} tokens for this tokenizer ({pieces}); "
                "give one token (often with its leading space, as in ' Paris') or its id"
            )
        return int(ids[0])


def _column(outputs: Any, positions: torch.Tensor) -> torch.Tensor:
    """Where positions of the sequence are in ``outputs.logits``: themselves, or, for logits
    computed at some positions only (``outputs.logits_at``, sorted), their index among those."""
    computed = getattr(outputs, "logits_at", None)
    return positions if computed is None else torch.searchsorted(computed, positions)


def _next_token_bound(
    adapter: Any,
    last: torch.Tensor,
    logp: torch.Tensor,
    index: torch.Tensor,
    foil: torch.Tensor | None,
) -> BoundTarget:
    """log p(index[b]) (minus log p(foil[b])) at position ``last[b]`` of each text ``b``."""
    tokenizer = adapter.tokenizer
    infos = tuple(
        NextTokenTarget._info(tokenizer, logp[b], k, foil) for b, k in enumerate(index.tolist())
    )

    def select_from(
        out: Any, rows: torch.Tensor, source: torch.Tensor, at: torch.Tensor | None = None
    ) -> torch.Tensor:
        step = out.logits[source, _column(out, last[rows]) if at is None else at].log_softmax(-1)
        value = step.gather(1, index[rows].unsqueeze(1)).squeeze(1)
        if foil is not None:
            value = value - step.gather(1, foil[rows].unsqueeze(1)).squeeze(1)
        return value

    def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
        return select_from(out, rows, torch.arange(len(rows), device=rows.device))

    def distribution(out: Any, rows: torch.Tensor) -> torch.Tensor:
        n = torch.arange(len(rows), device=rows.device)
        return out.logits[n, _column(out, last[rows])].float().softmax(-1)

    return BoundTarget(
        select,
        infos,
        distribution=distribution,
        index=index,
        outcome=lambda b, k: readable_piece(tokenizer, k),
        select_from=select_from,
        positions=last,
    )


@register_target
@dataclass(frozen=True)
class ForcedTokens(_Kind):
    """Causal LM, a token of its own for each text: text ``b`` of the batch is followed by
    ``ids[b]`` (the rows of a generated answer, each text the prefix before its token).

    Args:
        ids: One token id per text, in the batch's order.
        positions: The position each text's token follows (default: its last token). A causal
            LM's output at a position depends on the tokens up to it only, so the texts can all
            be the whole sequence, each read at its own position, and share their passes.
    """

    kind: ClassVar[str] = "forced-tokens"
    tasks: ClassVar[tuple[str, ...]] = ("causal-lm", "seq2seq-lm")
    ids: tuple[int, ...]
    positions: tuple[int, ...] | None = None

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> ForcedTokens:
        raise TextlensError(
            "forced tokens are the rows of a generated answer: give the answer with "
            "--continuation (continuation=...) instead"
        )

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = outputs.logits
        if logits.dim() != 3:
            raise TextlensError("a next-token target needs a causal language model")
        if len(self.ids) != len(batch):
            raise TextlensError(f"{len(self.ids)} forced tokens for {len(batch)} texts")
        last = batch.lengths - 1
        if self.positions is not None:
            last = torch.tensor(self.positions, dtype=torch.long, device=logits.device)
            if len(last) != len(batch) or bool((last >= batch.lengths.to(last.device)).any()):
                raise TextlensError("each forced token's position must lie inside its text")
        arange = torch.arange(len(batch), device=logits.device)
        logp = logits[arange, _column(outputs, last)].float().log_softmax(-1)
        index = torch.tensor(self.ids, dtype=torch.long, device=logits.device)
        return _next_token_bound(adapter, last, logp, index, None)


def readable_piece(tokenizer: Any, token_id: int) -> str:
    """The text one token id stands for (``' Paris'``, not ``'ĠParis'``)."""
    try:
        text = tokenizer.decode([int(token_id)])
    except (TypeError, ValueError, KeyError, IndexError):
        text = ""
    return text if text else str(tokenizer.convert_ids_to_tokens(int(token_id)))


@register_target
@dataclass(frozen=True)
class HiddenStateTarget(_Kind):
    """A hidden state: the norm of a token's vector at a layer, or one unit of it.

    Args:
        layer: Hidden-state index (0 = embedding output, ``n_layers`` = last; negative counts
            from the end).
        token: Token position; None = mean over the text's real tokens.
        unit: Hidden unit; None = the L2 norm of the vector.
    """

    kind: ClassVar[str] = "hidden-state"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    needs_hidden_states: ClassVar[bool] = True
    layer: int = -1
    token: int | None = 0
    unit: int | None = None

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> HiddenStateTarget:
        """``target``: ``LAYER`` or ``LAYER:TOKEN`` or ``LAYER:TOKEN:UNIT`` (``mean`` for the
        token: the mean over the text's real tokens); None: the last layer's first token."""
        if target is None:
            return cls()
        parts = str(target).split(":")
        try:
            values = [None if p.strip() == "mean" else int(p) for p in parts]
        except ValueError:
            raise TextlensError(
                f"a hidden-state target is LAYER, LAYER:TOKEN or LAYER:TOKEN:UNIT (TOKEN may be "
                f"'mean'), not {target!r}"
            ) from None
        if len(values) > 3 or values[0] is None:
            raise TextlensError(f"a hidden-state target is LAYER[:TOKEN[:UNIT]], not {target!r}")
        return cls(*values)  # type: ignore[arg-type]

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        states = getattr(outputs, "hidden_states", None)
        if not states:
            raise TextlensError("this model returns no hidden states to explain")
        n = len(states)
        if not -n <= self.layer < n:  # -1 is the last layer (the default for encoders)
            raise TextlensError(
                f"layer {self.layer} is out of range; valid: 0..{n - 1}, or -{n}..-1 from the last"
            )
        if self.token is not None:
            _check_position(self.token, batch)
        width = states[self.layer].shape[-1]
        if self.unit is not None and not 0 <= self.unit < width:
            raise TextlensError(f"unit {self.unit} is out of range; valid: 0..{width - 1}")
        mask = batch.real_mask.to(states[0].dtype)
        layer, token, unit = self.layer, self.token, self.unit

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            h = out.hidden_states[layer].float()
            if token is None:
                m = mask[rows, : h.shape[1]].unsqueeze(-1)
                vec = (h * m).sum(1) / m.sum(1)
            else:
                vec = h[:, token]
            return vec.norm(dim=-1) if unit is None else vec[:, unit]

        values = select(outputs, torch.arange(len(batch), device=batch.device))
        where = "mean" if token is None else f"token {token}"
        what = "norm" if unit is None else f"unit {unit}"
        infos = tuple(
            TargetInfo(kind=f"hidden-state layer {layer} {where} {what}", score=float(v))
            for v in values.tolist()
        )
        return BoundTarget(select, infos, needs_hidden_states=True)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """One vector per row from token vectors ``(N, T, H)``: the mean over the real tokens
    (``mask`` ``(N, T)``; how sentence encoders such as all-MiniLM-L6-v2 are used) or the
    first token's vector (``"cls"``)."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask[:, : hidden.shape[1]].to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def similarity(a: torch.Tensor, b: torch.Tensor, measure: str = "cosine") -> torch.Tensor:
    """Row-wise cosine similarity or dot product of ``(N, H)`` vectors (``b`` may be ``(H,)``)."""
    if measure == "dot":
        return (a * b).sum(-1)
    return torch.nn.functional.cosine_similarity(a, b.expand_as(a), dim=-1, eps=1e-12)


@register_target
@dataclass(frozen=True)
class Similarity(_Kind):
    """The similarity of a text to another text (or a fixed vector) under an encoder's pooled
    output: explains which words make two texts alike.

    The other side is held fixed, so the scores of a text say how each of its words moves the
    similarity; ``textlens.explain_pair`` explains both sides (each against the other).

    Args:
        other: The second text, or its pooled vector (``(hidden,)``).
        pooling: ``"mean"`` over the real tokens (default; how sentence encoders are used) or
            ``"cls"`` (the first token's vector).
        measure: ``"cosine"`` (default) or ``"dot"``.
        layer: Hidden-state index pooled (default the last).
    """

    kind: ClassVar[str] = "similarity"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    options: ClassVar[tuple[str, ...]] = ("pair", "pooling")
    needs_hidden_states: ClassVar[bool] = True
    other: Any = field(repr=False)
    pooling: Literal["mean", "cls"] = "mean"
    measure: Literal["cosine", "dot"] = "cosine"
    layer: int = -1

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> Similarity:
        other = options.get("pair")
        if other is None:
            raise TextlensError("a similarity target needs a second text: give a pair (--pair)")
        if target not in (None, "similarity"):
            raise TextlensError(f"a similarity target takes no target value, not {target!r}")
        return cls(other, options.get("pooling") or "mean")

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise TextlensError(f"unknown pooling {self.pooling!r}; use 'mean' or 'cls'")
        if self.measure not in ("cosine", "dot"):
            raise TextlensError(f"unknown measure {self.measure!r}; use 'cosine' or 'dot'")
        if isinstance(self.other, str) and not self.other.strip():
            raise TextlensError("the other text is empty: give a text to compare with")

    def vector(self, adapter: Any) -> torch.Tensor:
        """The other side's pooled vector, on the adapter's device."""
        if not isinstance(self.other, str):
            return torch.as_tensor(self.other, dtype=torch.float32, device=adapter.device)
        batch = adapter.encode([self.other], warn=False)
        with torch.no_grad():
            out = adapter.forward(adapter.embed(batch), batch, hidden_states=True)
        return pool(out.hidden_states[self.layer].float(), batch.attention_mask, self.pooling)[0]

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        states = getattr(outputs, "hidden_states", None)
        if not states:
            raise TextlensError("a similarity target needs a model that returns hidden states")
        other = self.vector(adapter).to(states[self.layer].dtype)
        mask = batch.attention_mask
        layer, pooling, measure = self.layer, self.pooling, self.measure

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            h = out.hidden_states[layer].float()
            return similarity(pool(h, mask[rows], pooling), other, measure)

        values = select(outputs, torch.arange(len(batch), device=batch.device))
        label = self.other if isinstance(self.other, str) else "a fixed vector"
        infos = tuple(
            TargetInfo(
                kind=f"similarity ({measure}, {pooling} pooling)", label=label, score=float(v)
            )
            for v in values.tolist()
        )
        return BoundTarget(select, infos, needs_hidden_states=True)


@register_target
@dataclass(frozen=True)
class CallableTarget(_Kind):
    """A user function of the model outputs: ``fn(outputs) -> (N,)`` tensor, one value per row."""

    kind: ClassVar[str] = "function"
    tasks: ClassVar[tuple[str, ...]] = TASKS
    fn: Callable[[Any], torch.Tensor] = field(repr=False)
    needs_hidden_states: bool = False  # type: ignore[misc]
    description: str = "custom"

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> CallableTarget:
        raise TextlensError("a function target is given in Python (target=fn), not as text")

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        values = self.fn(outputs)
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (len(batch),):
            raise TextlensError(
                "a target function must return a tensor with one value per text, shape (batch,)"
            )
        fn = self.fn

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            return fn(out)

        infos = tuple(TargetInfo(kind=self.description, score=float(v)) for v in values.tolist())
        return BoundTarget(select, infos, needs_hidden_states=self.needs_hidden_states)


@register_target
@dataclass(frozen=True)
class TokenSetTarget(_Kind):
    """Causal LM: log of the probability that the next token is any of a set (" yes| Yes").

    Args:
        tokens: The set, each one token (a text the tokenizer maps to one id, or an id).
    """

    kind: ClassVar[str] = "token-set"
    tasks: ClassVar[tuple[str, ...]] = ("causal-lm",)
    tokens: tuple[int | str, ...] = ()

    @classmethod
    def from_request(cls, target: Any = None, **options: Any) -> TokenSetTarget:
        """``target``: the tokens separated by ``|`` (``" Paris| Lyon"``)."""
        if target is None or not str(target).strip("| "):
            raise TextlensError("a token-set target needs its tokens, separated by |: ' yes| Yes'")
        return cls(tuple(t for t in str(target).split("|") if t))

    def follow(self) -> Any:
        return TokenSetProbability(self.tokens)

    def bind(self, adapter: Any, batch: TokenBatch, outputs: Any) -> BoundTarget:
        logits = outputs.logits
        if logits.dim() != 3:
            raise TextlensError("a token-set target needs a causal language model")
        ids = token_ids(adapter, self.tokens, logits.shape[-1])
        last = batch.lengths - 1
        arange = torch.arange(len(batch), device=logits.device)
        mass = logits[arange, last].float().log_softmax(-1)[:, ids].logsumexp(-1)
        label = " or ".join(repr(readable_piece(adapter.tokenizer, i)) for i in ids.tolist())
        infos = tuple(
            TargetInfo(
                kind="next-token-set-log-probability",
                label=label,
                score=float(v),
                probability=float(v.exp()),
            )
            for v in mass
        )

        def select(out: Any, rows: torch.Tensor) -> torch.Tensor:
            n = torch.arange(len(rows), device=rows.device)
            step = out.logits[n, last[rows]].log_softmax(-1)
            return step[:, ids].logsumexp(-1)

        return BoundTarget(select, infos)


def token_ids(adapter: Any, tokens: Any, vocabulary: int) -> torch.Tensor:
    """The ids of one-token texts (or ids), each checked against the vocabulary."""
    ids = [NextTokenTarget._token_id(adapter, vocabulary, t) for t in tokens]
    return torch.tensor(sorted(set(ids)), dtype=torch.long)


@dataclass(frozen=True)
class TokenSetProbability:
    """The probability that a causal LM's next token is any of a set of tokens."""

    tokens: tuple[int | str, ...]
    description: str = "probability of the followed set of next tokens"
    needs_hidden_states: bool = False

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return owners

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        logits = _last_logits(batch, outputs).float()
        ids = token_ids(adapter, self.tokens, logits.shape[-1]).to(logits.device)
        return logits.softmax(-1)[:, ids].sum(-1)


Target = Any
"""Any registered target (``TARGETS``): a frozen dataclass with ``bind``."""


def several(goal: Any, adapter: Any) -> tuple[Any, ...] | None:
    """The targets ``goal`` stands for, to explain one after the other (several labels), or
    None when it is one target (any target without ``split``: a callable, an adapter's own)."""
    split = getattr(goal, "split", None)
    return split(adapter) if split is not None else None


def default_target(adapter: Any) -> Any:
    """The natural target of a model's task (the predicted class for classifiers)."""
    task = adapter.task
    if task == "sequence-classification":
        return ClassTarget()
    if task == "question-answering":
        return SpanTarget("start")
    if task == "token-classification":
        return TokenTarget()
    if task == "causal-lm":
        return NextTokenTarget()
    return HiddenStateTarget()


def is_target(value: Any) -> bool:
    """Whether ``value`` is an instance of a registered target."""
    return isinstance(value, tuple(TARGETS.values()))


def as_target(
    adapter: Any, target: Any, kind: str | None = None, options: Mapping[str, Any] | None = None
) -> Any:
    """Turn what a user passed as ``target`` into a Target.

    Accepts a Target, None (the task's default), a callable of the model outputs, or a value
    read by the kind named in ``kind`` or, without one, by the first registered kind for the
    model's task that takes it (a class name or index for classifiers, ``"start"`` / ``"end"``
    for question answering, a next-token text or id for causal LMs). ``options``: the kind's
    other request fields (``contrast``, ``pair``, ``pooling``).
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if kind is not None:
        cls = known_target(kind)
        if adapter.task not in cls.tasks:
            raise TextlensError(
                f"a {kind} target is for {', '.join(cls.tasks)} models; this is a "
                f"{adapter.task} model"
            )
        _check_options(cls, options)
        return cls.from_request(target, **options)
    if is_target(target):
        return target
    if callable(target):
        return CallableTarget(target)
    for cls in TARGETS.values():
        if set(options) & set(cls.options) and adapter.task in cls.tasks:
            _check_options(cls, options)
            return cls.from_request(target, **options)
    if options:
        raise TextlensError(
            f"{', '.join(sorted(options))} does not go with this {adapter.task} model's targets"
        )
    if target is None:
        return default_target(adapter)
    for cls in TARGETS.values():
        if adapter.task in cls.tasks and cls.infer(target):
            return cls.from_request(target)
    raise TextlensError(
        f"cannot use {target!r} as a target for a {adapter.task} model; name its kind "
        f"({', '.join(k for k, c in TARGETS.items() if adapter.task in c.tasks)}) or pass a "
        "textlens.targets Target"
    )


def known_target(kind: str) -> Any:
    """The class of a registered target kind; one line naming them otherwise."""
    cls = TARGETS.get(kind)
    if cls is None:
        raise TextlensError(f"unknown target kind {kind!r}; available: {', '.join(TARGETS)}")
    return cls


def _check_options(cls: Any, options: Mapping[str, Any]) -> None:
    extra = sorted(set(options) - set(cls.options))
    if extra:
        raise TextlensError(
            f"{', '.join(extra)} does not go with a {cls.kind} target"
            + (f" (it takes {', '.join(cls.options)})" if cls.options else "")
        )


def describe_targets() -> list[dict[str, Any]]:
    """Every registered target kind: name, tasks, options and summary (for front ends)."""
    out = []
    for kind, cls in TARGETS.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(
            {
                "kind": kind,
                "tasks": list(cls.tasks),
                "options": list(getattr(cls, "options", ())),
                "summary": doc[0] if doc else "",
            }
        )
    return out


def default_follow(adapter: Any) -> Any:
    """What the metrics follow for a model's task: its class or next-token probability."""
    follow = default_target(adapter).follow()
    if follow is None:
        raise TextlensError(
            f"faithfulness metrics need a sequence classifier or a causal LM (this model is "
            f"{adapter.task}); for a sentence encoder, follow a similarity "
            "(textlens.targets.Similarity)"
        )
    return follow


# -- what the faithfulness metrics follow ---------------------------------------------------------
# Each has ``outcome(adapter, batch, outputs, owners)``: the outcome it follows, fixed on the full
# texts (``owners[n]``: the text row ``n`` is), and ``value(adapter, batch, outputs, outcome)``:
# its value for every row of any batch (rows of variants: texts with tokens removed), where
# ``outcome[n]`` belongs to the text row ``n`` came from.


def _last_logits(batch: Any, outputs: Any) -> torch.Tensor:
    last = batch.attention_mask.sum(1) - 1
    return outputs.logits[torch.arange(len(last), device=last.device), last]


@dataclass(frozen=True)
class ClassProbability:
    """The probability of a class of a sequence classifier."""

    description: str = "probability of the followed class"
    needs_hidden_states: bool = False

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return outputs.logits.argmax(-1)

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        multi = bool(getattr(adapter, "multi_label", False))
        probs = _class_probs(outputs.logits.float(), multi)
        return probs.gather(1, outcome.unsqueeze(1)).squeeze(1)


@dataclass(frozen=True)
class NextTokenProbability:
    """The probability of a next token of a causal language model (after the last real token)."""

    description: str = "probability of the followed next token"
    needs_hidden_states: bool = False

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return _last_logits(batch, outputs).argmax(-1)

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        probs = _last_logits(batch, outputs).float().softmax(-1)
        return probs.gather(1, outcome.unsqueeze(1)).squeeze(1)


@dataclass(frozen=True)
class SimilarityValue:
    """The similarity of each text's pooled encoding to its own fixed vector (one per text)."""

    vectors: Any = field(repr=False)
    pooling: str = "mean"
    measure: str = "cosine"
    description: str = "similarity to the other text"
    needs_hidden_states: bool = True

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return owners

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        pooled = pool(outputs.hidden_states[-1].float(), batch.attention_mask, self.pooling)
        other = torch.as_tensor(self.vectors, dtype=pooled.dtype, device=pooled.device)
        return similarity(pooled, other[outcome], self.measure)


Follow = ClassProbability | NextTokenProbability | SimilarityValue
