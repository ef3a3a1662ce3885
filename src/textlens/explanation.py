"""Explanation: attribution scores for one text, frozen, ready to render, export or evaluate."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

SCHEMA = "textlens.explanation/1"
Reduce = Literal["sum", "mean", "max", "l2"]
Unit = Literal["token", "word", "sentence", "paragraph", "document"]
_REDUCERS = ("sum", "mean", "max", "l2")
UNITS = ("token", "word", "sentence", "paragraph", "document")
_LEVEL = {"word": "word", "sentence": "sentence", "paragraph": "paragraph", "document": "document"}
# a paragraph ends at a blank line
_PARAGRAPH_END = re.compile(r"\n[ \t\r]*\n\s*")
# A sentence ends after . ! ? or an ellipsis (with closing quotes or brackets), before white
# space; a line break always ends one.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]]*(?=\s)|\n")


@dataclass(frozen=True)
class TargetInfo:
    """What was explained for one text: a description, class index and label, the model's score."""

    kind: str
    label: str | None = None
    index: int | None = None
    score: float | None = None
    probability: float | None = None
    probabilities: Mapping[str, float] | None = None
    """Every class's probability (classifiers), from the same forward pass as the explanation."""
    explained: str | None = None
    """What the scores explain when it is not this target (e.g. a layer's hidden states)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "label": self.label,
            "index": self.index,
            "score": self.score,
            "probability": self.probability,
            "probabilities": None if self.probabilities is None else dict(self.probabilities),
        }
        return out | ({"explained": self.explained} if self.explained else {})

    def prediction(self) -> tuple[str, dict[str, float]] | None:
        """The predicted class and every class's probability, when the target knows them."""
        if not self.probabilities:
            return None
        probs = dict(self.probabilities)
        return max(probs, key=lambda k: probs[k]), probs


def word_groups(
    text: str, offsets: Sequence[tuple[int, int]], special: Sequence[bool]
) -> list[list[int]]:
    """Token indices of each word of ``text``, from the tokens' character offsets.

    Touching pieces join when the characters on both sides are letters or digits; special
    tokens and tokens without characters belong to no word.
    """
    groups: list[list[int]] = []
    prev_end = -1
    for i, ((start, end), sp) in enumerate(zip(offsets, special, strict=True)):
        if sp or end <= start:
            prev_end = -1
            continue
        joins = (
            groups
            and start == prev_end
            and text[start - 1 : start].isalnum()
            and text[start : start + 1].isalnum()
        )
        if joins:
            groups[-1].append(i)
        else:
            groups.append([i])
        prev_end = end
    return groups


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character span of each sentence of ``text``, white space left out.

    A sentence ends after ``.``, ``!``, ``?`` or an ellipsis (and any closing quotes or
    brackets) that white space follows, and at every line break. The spans are in order and do
    not overlap, so the text between them is white space only.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    return _trimmed(text, spans)


def _trimmed(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans without their leading and trailing white space; blank ones left out."""
    out = []
    for a, b in spans:
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if b - trail > a + lead:
            out.append((a + lead, b - trail))
    return out


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character span of each paragraph of ``text`` (blank lines between
    them), white space left out."""
    spans, start = [], 0
    for match in _PARAGRAPH_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return _trimmed(text, spans)


def unit_groups(
    text: str,
    offsets: Sequence[tuple[int, int]],
    special: Sequence[bool],
    unit: Unit,
    documents: Sequence[tuple[int, int]] = (),
) -> list[list[int]]:
    """Token indices of each unit (``"token"``, ``"word"``, ``"sentence"``, ``"paragraph"``
    or ``"document"``) of ``text``.

    Special tokens and tokens without characters belong to no unit; a token belongs to the
    sentence (paragraph) its first character is in; with ``documents``, sentences and
    paragraphs are also cut where a document starts and ends. Documents are the character
    spans given in ``documents`` (the user's documents in a prompt); tokens outside every
    document (the question, the template's words) belong to no document. Units without tokens
    are left out.
    """
    if unit == "word":
        return word_groups(text, offsets, special)
    pairs = zip(offsets, special, strict=True)
    real = [i for i, ((a, b), sp) in enumerate(pairs) if not sp and b > a]
    if unit == "token":
        return [[i] for i in real]
    if unit == "document":
        if not documents:
            raise ValueError("this explanation has no documents: give them with documents=")
        found = [[i for i in real if a <= offsets[i][0] < b] for a, b in documents]
        return [g for g in found if g]
    if unit not in ("sentence", "paragraph"):
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")
    spans = sentence_spans(text) if unit == "sentence" else paragraph_spans(text)
    if documents:  # a unit never crosses a document's edge ("Document 1: It rained." is two)
        cuts = sorted({c for span in documents for c in span})
        cut = []
        for a, b in spans:
            inner = [c for c in cuts if a < c < b]
            cut += list(zip([a, *inner], [*inner, b], strict=True))
        spans = cut
    ends = [b for _, b in spans]
    groups: dict[int, list[int]] = {}
    for i in real:
        s = int(np.searchsorted(ends, offsets[i][0], side="right"))
        groups.setdefault(min(s, len(spans) - 1), []).append(i)
    return [groups[k] for k in sorted(groups)]


def _frozen(values: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor: bring it to the CPU without importing torch
        values = values.detach()
        if str(values.dtype) in ("torch.bfloat16", "torch.float16"):  # numpy has no bfloat16
            values = values.float()
        values = values.cpu().numpy()
    array = np.array(values, dtype=dtype, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attribution scores for one text.

    Attributes:
        text: The explained text.
        tokens: Token strings (sub-words, or words after ``to_words``).
        offsets: ``(start, end)`` character span of each token in ``text``; ``(0, 0)`` for
            special tokens.
        scores: Read-only, ``(n_tokens,)`` or ``(n_layers, n_tokens)``. For signed methods
            positive means evidence for the target; for unsigned ones larger means more important.
        axes: ``("token",)`` or ``("layer", "token")``.
        method: Registry name of the method.
        signed: Whether scores carry a sign (diverging colours) or not (sequential colours).
        params: The method's settings.
        target: What was explained (label, class index, the model's score and probability).
        model: The model's name.
        special: True for special tokens ([CLS], [SEP], ...).
        layers: Layer numbers of the rows of a layered ``scores`` (hidden-state indices).
        level: ``"subword"``, or ``"word"`` / ``"sentence"`` after ``to_units``.
        extras: Method outputs besides the scores (e.g. ``convergence_delta``, ``sigma``).
        extra_axes: The axes of each extra, as the method declared them, e.g.
            ``{"sigma": ("layer", "token"), "steps": ("layer",)}``: ``to_words`` and ``select``
            cut exactly these axes. An extra not named here is left as it is.
        elapsed: Seconds spent on this text (its share of a batch).
        score_label: What a score means, as the method describes it (for legends and axes).
        parts: Names of extras that add up to the scores (e.g. one per sub-embedding).
        unit_reduce: How the method's sub-word scores combine into words and sentences unless
            told otherwise: ``sum`` for additive scores, ``max`` where a sum means nothing.
        layer_totals: What every layer's scores add up to, when the method promises a total
            (pictures say so when the totals differ).
        diagnostics: ``(extra, label)`` pairs a front end prints after the scores.
        documents: Character spans of the user's documents in ``text`` (a prompt built from
            documents and a question), for ``to_units("document")``.
    """

    text: str
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    scores: np.ndarray
    method: str
    target: TargetInfo
    signed: bool = True
    axes: tuple[str, ...] = ("token",)
    params: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    special: tuple[bool, ...] = ()
    layers: tuple[int, ...] | None = None
    level: Literal["subword", "word", "sentence", "paragraph", "document"] = "subword"
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    extra_axes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    elapsed: float = 0.0
    score_label: str = ""
    parts: tuple[str, ...] = ()
    unit_reduce: Reduce = "sum"
    layer_totals: str = ""
    diagnostics: tuple[tuple[str, str], ...] = ()
    documents: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tokens", tuple(str(t) for t in self.tokens))
        set_(self, "offsets", tuple((int(a), int(b)) for a, b in self.offsets))
        set_(self, "scores", _frozen(self.scores))
        set_(self, "axes", tuple(self.axes))
        set_(self, "special", tuple(bool(s) for s in self.special) or (False,) * len(self.tokens))
        set_(self, "params", dict(self.params))
        set_(self, "extras", {k: _frozen(v) for k, v in dict(self.extras).items()})
        set_(self, "extra_axes", {k: tuple(v) for k, v in dict(self.extra_axes).items()})
        set_(self, "parts", tuple(p for p in self.parts if p in self.extras))
        if self.layers is not None:
            set_(self, "layers", tuple(int(v) for v in self.layers))
        n = len(self.tokens)
        if len(self.offsets) != n or len(self.special) != n:
            raise ValueError(
                f"{n} tokens but {len(self.offsets)} offsets and {len(self.special)} special flags"
            )
        expected = {("token",): 1, ("layer", "token"): 2}.get(self.axes)
        if expected is None:
            raise ValueError(f"axes must be ('token',) or ('layer', 'token'), got {self.axes}")
        if self.scores.ndim != expected or self.scores.shape[-1] != n:
            raise ValueError(
                f"scores of shape {self.scores.shape} do not fit {n} tokens {self.axes}"
            )
        if self.layers is not None and expected == 2 and len(self.layers) != self.scores.shape[0]:
            raise ValueError(f"{len(self.layers)} layer numbers for {self.scores.shape[0]} rows")
        set_(self, "extra_axes", self._fitting_axes())

    def _fitting_axes(self) -> dict[str, tuple[str, ...]]:
        """The declared extra axes that fit their extras.

        A declaration whose extra is gone or no longer fits (after ``dataclasses.replace`` of
        the extras or the tokens) is dropped: that extra is then left as it is.
        """
        sizes = {"token": len(self.tokens)}
        if self.layered:
            sizes["layer"] = self.scores.shape[0]
        kept = {}
        for name, axes in self.extra_axes.items():
            value = self.extras.get(name)
            if value is None or value.ndim != len(axes):
                continue
            if all(sizes.get(a, n) == n for a, n in zip(axes, value.shape, strict=True)):
                kept[name] = axes
        return kept

    # -- views -------------------------------------------------------------------------------
    @property
    def layered(self) -> bool:
        return self.axes == ("layer", "token")

    def __len__(self) -> int:
        return len(self.tokens)

    def to_frame(self) -> Any:
        """A pandas DataFrame: a row per token (and per layer of a layered explanation), with
        the columns of the CSV export (``textlens.render.export.COLUMNS``)."""
        import pandas as pd

        from textlens.render.export import COLUMNS, to_records

        return pd.DataFrame(to_records(self), columns=list(COLUMNS))

    def top(self, k: int = 5, layer: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` highest-scoring non-special tokens as ``(token, score)``.

        For a layered explanation, ``layer`` picks the row (default: the last one).
        """
        row = self.row(layer)
        order = [i for i in np.argsort(-row, kind="stable") if not self.special[i]]
        return [(self.tokens[i], float(row[i])) for i in order[:k]]

    @property
    def saturated(self) -> np.ndarray | None:
        """True where a token's information is all lost to what was explained, shaped like
        ``scores`` (the information method's tokens whose sigma reached its bound; a word when
        all its pieces did), or None when the method reports no such tokens."""
        flags = self.extras.get("saturated")
        if flags is not None and self.extra_axes.get("saturated") in (("layer", "token"),):
            return np.asarray(flags, bool).reshape(self.scores.shape)
        pieces = self.extras.get("subword_saturated")
        index = self.extras.get("subword_word_index")
        if pieces is None or index is None:
            return None
        pieces = np.asarray(pieces, bool).reshape(*self.scores.shape[:-1], -1)
        index = np.asarray(index, int)
        out = np.zeros(self.scores.shape, bool)
        for w in np.unique(index[index >= 0]):
            out[..., w] = pieces[..., index == w].all(-1)
        return out

    def row(self, layer: int | None = None) -> np.ndarray:
        """The scores of one layer (by layer number; default the last), or the flat scores."""
        if not self.layered:
            return self.scores
        if layer is None:
            return self.scores[-1]
        if self.layers is None or layer not in self.layers:
            raise ValueError(f"layer {layer} is not in this explanation; it has {self.layers}")
        return self.scores[self.layers.index(layer)]

    def select(self, layers: Sequence[int]) -> Explanation:
        """Keep the given layers (by layer number) of a layered explanation."""
        if not self.layered or self.layers is None:
            raise ValueError("select(layers=...) needs a layered explanation")
        missing = [v for v in layers if v not in self.layers]
        if missing:
            raise ValueError(f"layers {missing} are not in this explanation; it has {self.layers}")
        rows = [self.layers.index(v) for v in layers]
        extras = {}
        for k, v in self.extras.items():
            axes = self.extra_axes.get(k, ())
            extras[k] = np.take(v, rows, axis=axes.index("layer")) if "layer" in axes else v
        return dataclasses.replace(
            self, scores=self.scores[rows], layers=tuple(layers), extras=extras
        )

    def normalized(self, kind: Literal["l1", "max"] = "max") -> Explanation:
        """Scores divided by their L1 norm or largest magnitude (per layer row)."""
        scale = (
            np.abs(self.scores).sum(axis=-1, keepdims=True)
            if kind == "l1"
            else np.abs(self.scores).max(axis=-1, keepdims=True)
        )
        scale = np.where(scale > 0, scale, 1.0)
        return dataclasses.replace(self, scores=self.scores / scale)

    # -- words and sentences -----------------------------------------------------------------
    def word_groups(self) -> list[list[int]]:
        """Token indices of each word: touching pieces join when both sides are letters/digits."""
        return word_groups(self.text, self.offsets, self.special)

    def to_words(self, reduce: Reduce | None = None) -> Explanation:
        """Merge sub-word scores into word scores (``to_units("word", reduce)``)."""
        return self.to_units("word", reduce)

    def to_sentences(self, reduce: Reduce | None = None) -> Explanation:
        """Merge sub-word scores into sentence scores (``to_units("sentence", reduce)``)."""
        return self.to_units("sentence", reduce)

    def to_units(self, unit: Unit = "word", reduce: Reduce | None = None) -> Explanation:
        """Merge sub-word scores into words or sentences using the tokens' character offsets.

        Special tokens are dropped; the original scores stay in ``extras["subword_scores"]``
        and each sub-word's unit number in ``extras["subword_word_index"]`` (-1 for specials).
        Each unit's offsets span its first to its last piece, so the text between two units is
        what the tokenizer left out (white space, characters it drops).

        Args:
            unit: ``"token"`` (returns ``self``), ``"word"``, ``"sentence"``,
                ``"paragraph"`` or ``"document"`` (the spans in ``documents``).
            reduce: How the pieces of one unit combine: ``sum``, ``mean``, ``max`` or ``l2``
                (the root of the sum of squares; the result is unsigned). Default: the
                method's own (``unit_reduce``: a sum for additive scores).

        Returns:
            A new Explanation whose tokens are the units. ``self`` is unchanged.
        """
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")
        reduce = self.unit_reduce if reduce is None else reduce
        if reduce not in _REDUCERS:
            raise ValueError(f"unknown reduce {reduce!r}; use one of {', '.join(_REDUCERS)}")
        if unit == "token" or self.level == unit:
            return self
        if self.level != "subword":
            raise ValueError(
                f"this explanation is already at {self.level} level; start from sub-words"
            )
        plain = [o for o, s in zip(self.offsets, self.special, strict=True) if not s]
        if plain and all(a == b == 0 for a, b in plain) and self.text.strip():
            raise ValueError("this explanation has no character offsets (a slow tokenizer?)")
        groups = unit_groups(self.text, self.offsets, self.special, unit, self.documents)
        n = len(self.tokens)

        def merge(values: np.ndarray) -> np.ndarray:
            parts = [values[..., g] for g in groups]
            if reduce == "sum":
                out = [p.sum(axis=-1) for p in parts]
            elif reduce == "mean":
                out = [p.mean(axis=-1) for p in parts]
            elif reduce == "max":
                out = [p.max(axis=-1) for p in parts]
            else:
                out = [np.sqrt((p**2).sum(axis=-1)) for p in parts]
            if not out:
                return np.zeros((*values.shape[:-1], 0))
            return np.stack(out, axis=-1)

        word_index = np.full(n, -1)
        for w, g in enumerate(groups):
            word_index[g] = w
        extras: dict[str, np.ndarray] = {}
        extra_axes: dict[str, tuple[str, ...]] = {}
        for k, v in self.extras.items():
            axes = self.extra_axes.get(k)
            if axes is not None and "token" in axes:  # kept per sub-word, under a new name
                k, axes = f"subword_{k}", tuple("subword" if a == "token" else a for a in axes)
            extras[k] = v
            if axes is not None:
                extra_axes[k] = axes
        extras["subword_scores"] = self.scores
        extra_axes["subword_scores"] = ("layer", "subword") if self.layered else ("subword",)
        extras["subword_word_index"] = word_index
        extra_axes["subword_word_index"] = ("subword",)
        spans = [(self.offsets[g[0]][0], max(self.offsets[i][1] for i in g)) for g in groups]
        return dataclasses.replace(
            self,
            tokens=tuple(self.text[a:b] for a, b in spans),
            offsets=tuple(spans),
            special=(False,) * len(groups),
            scores=merge(self.scores),
            signed=self.signed and reduce != "l2",
            level=_LEVEL[unit],  # type: ignore[arg-type]
            extras=extras,
            extra_axes=extra_axes,
            parts=(),
            params={**self.params, "word_reduce": reduce},
            unit_reduce=reduce,
        )

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``"schema": "textlens.explanation/1"``."""
        return {
            "schema": SCHEMA,
            "text": self.text,
            "tokens": list(self.tokens),
            "offsets": [list(o) for o in self.offsets],
            "special": list(self.special),
            "scores": _to_list(self.scores),
            "axes": list(self.axes),
            "layers": None if self.layers is None else list(self.layers),
            "level": self.level,
            "method": self.method,
            "signed": self.signed,
            "params": _jsonable(self.params),
            "target": self.target.to_dict(),
            "model": self.model,
            "extras": {k: self._extra_dict(k, v) for k, v in self.extras.items()},
            "score_label": self.score_label,
            "parts": list(self.parts),
            "unit_reduce": self.unit_reduce,
            "elapsed": self.elapsed,
            **({"layer_totals": self.layer_totals} if self.layer_totals else {}),
            **({"diagnostics": [list(d) for d in self.diagnostics]} if self.diagnostics else {}),
            **({"documents": [list(d) for d in self.documents]} if self.documents else {}),
        }

    def _extra_dict(self, name: str, value: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": value.dtype.name, "values": _to_list(value)}
        if name in self.extra_axes:
            out["axes"] = list(self.extra_axes[name])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        """Rebuild an Explanation from ``to_dict`` output; refuses other schemas."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={data.get('schema')!r})")
        extras = {
            k: np.array(_from_list(v["values"]), dtype=v["dtype"])
            for k, v in data.get("extras", {}).items()
        }
        extra_axes = {k: tuple(v["axes"]) for k, v in data.get("extras", {}).items() if "axes" in v}
        return cls(
            text=data["text"],
            tokens=tuple(data["tokens"]),
            offsets=tuple(tuple(o) for o in data["offsets"]),
            special=tuple(data["special"]),
            scores=np.array(_from_list(data["scores"]), dtype=np.float64),
            axes=tuple(data["axes"]),
            layers=None if data.get("layers") is None else tuple(data["layers"]),
            level=data.get("level", "subword"),
            method=data["method"],
            signed=bool(data["signed"]),
            params=data.get("params", {}),
            target=TargetInfo(**data["target"]),
            model=data.get("model", ""),
            extras=extras,
            extra_axes=extra_axes,
            elapsed=float(data.get("elapsed", 0.0)),
            score_label=str(data.get("score_label", "")),
            parts=tuple(data.get("parts", ())),
            unit_reduce=data.get("unit_reduce", "sum"),
            layer_totals=str(data.get("layer_totals", "")),
            diagnostics=tuple((str(a), str(b)) for a, b in data.get("diagnostics", ())),
            documents=tuple((int(a), int(b)) for a, b in data.get("documents", ())),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        return cls.from_dict(json.loads(text))

    def _repr_html_(self) -> str:
        """Notebooks show the highlighted text (``textlens.render.render_html``)."""
        from textlens.render.html import render_html

        return render_html([self], standalone=False, show_special=False)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.scores.shape)
        label = self.target.label if self.target.label is not None else self.target.kind
        return (
            f"Explanation(method={self.method!r}, target={label!r}, tokens={len(self.tokens)}, "
            f"scores={shape}, level={self.level!r})"
        )


def load_json(path: str | Path) -> list[Explanation]:
    """Read a file written by ``render.save_json`` (or one ``Explanation.to_json`` document)."""
    from textlens.render.export import LIST_SCHEMA

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("schema") == LIST_SCHEMA:
        return [Explanation.from_dict(d) for d in data["items"]]
    return [Explanation.from_dict(data)]


def settings_of(method: Any) -> dict[str, Any]:
    """A method's settings as plain values (nested methods by name and settings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(method):
        value = getattr(method, f.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "name"):
            value = {"name": value.name, **settings_of(value)}
        out[f.name] = value
    return out


def _to_list(array: np.ndarray) -> Any:
    """Nested lists with non-finite floats written as null (strict JSON)."""
    if array.dtype.kind == "f":
        obj = array.astype(object)
        obj[~np.isfinite(array)] = None
        return obj.tolist()
    return array.tolist()


def _from_list(values: Any) -> Any:
    if isinstance(values, list):
        return [_from_list(v) for v in values]
    return math.nan if values is None else values


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def from_scores(
    batch: Any,
    scores: Any,
    infos: Sequence[TargetInfo],
    method: Any,
    model: str,
    elapsed: float = 0.0,
) -> list[Explanation]:
    """One Explanation per text of a batch: where tokens, offsets and provenance are joined.

    Args:
        batch: The TokenBatch the method saw.
        scores: The method's Scores for it.
        infos: The bound target's per-text info.
        method: The method instance (its name, sign and settings are recorded).
        model: The model's name.
        elapsed: Seconds for the whole batch, shared evenly among its texts.
    """
    values = _frozen(scores.values, np.float64)
    special = _frozen(batch.special_mask, bool)
    extras = {k: _frozen(v) for k, v in scores.extras.items()}
    out = []
    for b, tokens in enumerate(batch.tokens):
        n = len(tokens)
        own = {
            k: (v[b, ..., :n] if "token" in scores.extra_axes.get(k, ()) else v[b])
            for k, v in extras.items()
        }
        out.append(
            Explanation(
                text=batch.texts[b],
                tokens=tokens,
                offsets=batch.offsets[b],
                special=tuple(special[b, :n].tolist()),
                scores=values[b, ..., :n],
                axes=("layer", "token") if values.ndim == 3 else ("token",),
                layers=scores.layers,
                method=method.name,
                signed=bool(method.signed),
                params=settings_of(method),
                target=(
                    dataclasses.replace(infos[b], explained=scores.explains)
                    if scores.explains
                    else infos[b]
                ),
                model=model,
                extras=own,
                extra_axes=dict(scores.extra_axes),
                elapsed=elapsed / max(1, len(batch.tokens)),
                score_label=str(getattr(method, "score_label", "") or ""),
                unit_reduce=getattr(method, "unit_reduce", "sum"),
                parts=scores.parts,
                layer_totals=str(getattr(method, "layer_totals", "") or ""),
                diagnostics=tuple(getattr(method, "diagnostics", ()) or ()),
                documents=batch.documents[b] if getattr(batch, "documents", ()) else (),
            )
        )
    return out
