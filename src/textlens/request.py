"""One home for what a user asks for: the text, the answer, the target, the method and its
settings, the unit.

Every front end (the command line, the server, a job's row, a Ray worker's payload) builds a
``Request`` from its own fields; every rule between fields is checked here once (``check``,
without the model; ``bind``, with it), the methods and the target are built once, and ``run``
dispatches to the one pipeline: a text, a pair of texts, or a language model's answer. A front
end then only reads its input and writes what ``run`` returns.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from textlens.errors import TextlensError
from textlens.methods.registry import DEFAULT_METHOD, METHODS, build_method, parse_layers
from textlens.text import check_unicode

UNITS = ("token", "word", "sentence", "paragraph", "document")
FLAGS = {"methods": "--method", "settings": "settings"}
"""Command-line spellings that are not ``--`` plus the field's name with dashes."""


class RequestError(TextlensError):
    """A mistake between a request's fields. The message names fields as ``{name}``; each front
    end shows them in its own words (``flagged``: as command-line flags)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(template.format_map(_Names(lambda name: name)))

    def flagged(self) -> str:
        """The message with every field named as the command line's flag."""
        return self.template.format_map(_Names(flag))


class _Names(dict[str, str]):
    def __init__(self, spell: Callable[[str], str]) -> None:
        super().__init__()
        self.spell = spell

    def __missing__(self, key: str) -> str:
        return self.spell(key)


def flag(name: str) -> str:
    """A request field's command-line flag (``max_length`` -> ``--max-length``)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


ANSWER_OPTIONS = ("chat", "system", "prompt_only")
"""Fields that only mean something with a generated or given answer."""


@dataclass(frozen=True)
class Request:
    """What a user asks for, checked and ready to run on a model.

    Attributes:
        text: The text (a ``(question, context)`` pair for question answering); None in a job's
            template, whose rows give the texts.
        methods: Registry names, explained one after the other.
        settings: Method settings by name, typed or as text (a command line's flags, a form's
            fields); each goes to the methods that have it.
        layers: ``"all"`` or layer numbers like ``"1,3,6"``, for layered methods.
        target: What to explain, as the user gave it (a class, a token, ``"start"``...).
        target_kind: A registered target kind (``textlens.targets.TARGETS``) that reads
            ``target``; None: the model's task decides.
        contrast: A causal LM's foil token (why ``target`` rather than this).
        pair: A second text: explain the similarity of the two, both sides.
        pooling: How the pair's texts become one vector (``mean``, ``cls``).
        unit: Scores per ``token`` (None), ``word`` or ``sentence``.
        generate: A causal LM generates this many tokens; each is explained.
        continuation: A given answer, each token explained (forced decoding).
        sample: Sample the generated tokens with this seed (greedy when None).
        chat: The text is a user message for the model's chat template.
        system: A system message (with ``chat``).
        prompt_only: Score the prompt's tokens only (the earlier answer tokens fixed context).
        max_length: Keep at most this many tokens of the text.
        truncate: Which end of a text longer than the limit is cut, ``left`` (keep its end)
            or ``right``; None: an encoder's end, and a causal LM's text is refused.
        documents: Texts the question (``text``) is asked over: the prompt is built from them
            by ``template``, and each document can be scored as a unit (``unit="document"``).
        template: How documents and the question become the prompt (``{documents}``,
            ``{question}``; default ``textlens.prompt.DEFAULT_TEMPLATE``).
        max_memory: The memory a run may plan to use (bytes, or text such as ``"16GiB"``);
            None: a share of what the device has free (``textlens.memory``).
    """

    text: str | tuple[str, str] | None = None
    methods: tuple[str, ...] = (DEFAULT_METHOD,)
    settings: Mapping[str, Any] = field(default_factory=dict)
    layers: str | None = None
    target: Any = None
    target_kind: str | None = None
    contrast: str | None = None
    pair: str | None = None
    pooling: str | None = None
    unit: str | None = None
    generate: int | None = None
    continuation: str | None = None
    sample: int | None = None
    chat: bool = False
    system: str | None = None
    prompt_only: bool = False
    max_length: int | None = None
    truncate: str | None = None
    documents: tuple[str, ...] | None = None
    template: str | None = None
    max_memory: int | str | None = None

    def __post_init__(self) -> None:
        methods = self.methods
        if isinstance(methods, str):
            methods = tuple(m.strip() for m in methods.split(",") if m.strip())
        object.__setattr__(self, "methods", tuple(methods))
        object.__setattr__(self, "settings", dict(self.settings or {}))
        if isinstance(self.documents, list):
            object.__setattr__(self, "documents", tuple(self.documents))
        if self.unit == "token":
            object.__setattr__(self, "unit", None)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Request:
        """A request from named fields (a JSON body, a job's sidecar, a Ray payload); a field
        that is not a request field is refused in one line."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known - {"method"})
        if unknown:
            raise TextlensError(
                f"unknown request field {unknown[0]!r}; the fields are {', '.join(sorted(known))}"
            )
        values = dict(fields)
        if "method" in values:
            values["methods"] = values.pop("method")
        if isinstance(values.get("text"), list):
            values["text"] = tuple(values["text"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-able fields (``from_fields`` reads them back)."""
        out = dataclasses.asdict(self)
        out["methods"] = list(self.methods)
        out["settings"] = {k: _plain(v) for k, v in self.settings.items()}
        if isinstance(self.text, tuple):
            out["text"] = list(self.text)
        if self.documents is not None:
            out["documents"] = list(self.documents)
        return out

    def with_text(self, text: str | tuple[str, str]) -> Request:
        """The same request for another text (a job's row)."""
        return dataclasses.replace(self, text=text)

    @property
    def answer(self) -> bool:
        """Whether a language model's answer is explained (generated or given)."""
        return self.generate is not None or self.continuation is not None

    @property
    def target_options(self) -> dict[str, Any]:
        """The target's other fields that were given (``contrast``, ``pair``, ``pooling``)."""
        given = {"contrast": self.contrast, "pair": self.pair, "pooling": self.pooling}
        return {k: v for k, v in given.items() if v is not None}

    @functools.cached_property
    def built(self) -> tuple[Any, ...]:
        """The method instances, built once (every setting checked against its range)."""
        return tuple(self._build())

    def _build(self) -> list[Any]:
        if not self.methods:
            raise TextlensError(f"give a method; available: {', '.join(sorted(METHODS))}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise TextlensError(
                f"unknown method {unknown[0]!r}; available: {', '.join(sorted(METHODS))}"
            )
        owned = {m: {f.name for f in dataclasses.fields(METHODS[m])} for m in self.methods}
        given = {k: v for k, v in self.settings.items() if v is not None}
        if len(self.methods) == 1:
            return [build_method(self.methods[0], given, self.layers)]
        for name in given:
            if not any(name in fields for fields in owned.values()):
                flag = "--" + name.replace("_", "-")
                raise TextlensError(f"{flag} is not a setting of {', '.join(self.methods)}")
        if self.layers is not None and not any("layers" in f for f in owned.values()):
            parse_layers(self.methods[0], self.layers)  # raises the usual message
        return [
            build_method(
                m,
                {k: v for k, v in given.items() if k in owned[m]},
                self.layers if "layers" in owned[m] else None,
            )
            for m in self.methods
        ]

    # -- checking ------------------------------------------------------------------------------
    def check(self) -> None:
        """Every rule between the fields that needs no model; raises ``TextlensError``."""
        self._check_text()
        if self.unit is not None and self.unit not in UNITS:
            raise RequestError(f"{{unit}} {self.unit!r} is not one of: {', '.join(UNITS)}")
        if self.max_length is not None and (
            isinstance(self.max_length, bool)
            or not isinstance(self.max_length, int)
            or self.max_length < 1
        ):
            raise RequestError(f"{{max_length}} must be at least 1 token, not {self.max_length}")
        if self.sample is not None and self.generate is None:
            raise RequestError(
                "{sample} goes with {generate} (a given continuation is not sampled)"
            )
        if self.max_memory is not None:
            from textlens.memory import parse_memory

            try:
                parse_memory(self.max_memory)
            except TextlensError as error:
                raise RequestError(str(error).replace("max_memory", "{max_memory}", 1)) from None
        if self.truncate is not None and self.truncate not in ("left", "right"):
            raise RequestError(f"{{truncate}} {self.truncate!r} is not one of: left, right")
        if self.documents is not None:
            from textlens.prompt import check_documents

            check_documents(self.documents, self.template)
            if isinstance(self.text, tuple):
                raise RequestError("{documents} go with a question, not a (question, context) pair")
        elif self.template is not None:
            raise RequestError("{template} says how {documents} and the question become a prompt")
        if self.pooling is not None and self.pair is None:
            raise RequestError("{pooling} says how {pair} texts become one vector: add {pair}")
        if self.pair is not None:
            self._check_pair()
        elif self.target == "similarity" and self.target_kind is None:
            raise RequestError("a similarity target needs a second text: add {pair}")
        if self.answer:
            self._check_answer()
        else:
            given = [n for n in ANSWER_OPTIONS if getattr(self, n) not in (None, False)]
            if given:
                names = ", ".join("{" + n + "}" for n in given)
                raise RequestError(f"{names} go with {{generate}} or {{continuation}} (an answer)")
        if self.target_kind is not None:
            from textlens.targets import known_target

            cls = known_target(self.target_kind)
            extra = sorted(set(self.target_options) - set(getattr(cls, "options", ())))
            if extra:
                names = ", ".join("{" + n + "}" for n in extra)
                raise RequestError(f"{names} does not go with a {self.target_kind} target")
        self.built  # noqa: B018 - every method and setting, before any model loads

    def _check_text(self) -> None:
        if self.text is None:
            return
        parts = self.text if isinstance(self.text, tuple) else (self.text,)
        if not all(isinstance(p, str) for p in parts) or len(parts) not in (1, 2):
            raise TextlensError("the text must be a string or a (question, context) pair")
        if not "".join(parts).strip():
            raise TextlensError("the text is empty: give at least one word to explain")
        for part in parts:
            check_unicode(part)

    def _check_pair(self) -> None:
        if self.target not in (None, "similarity") or self.target_kind not in (None, "similarity"):
            raise RequestError(
                f"{{pair}} explains a similarity; leave out {{target}} {self.target}"
            )
        if not isinstance(self.pair, str) or not self.pair.strip():
            raise RequestError("the {pair} text is empty: give a second text to compare with")
        check_unicode(self.pair, "the pair text")
        if self.contrast is not None:
            raise RequestError("{contrast} compares two next tokens; it does not go with {pair}")
        if self.pooling is not None and self.pooling not in ("mean", "cls"):
            raise RequestError(f"{{pooling}} {self.pooling!r} is not one of: mean, cls")

    def _check_answer(self) -> None:
        if self.generate is not None and self.continuation is not None:
            raise RequestError("give {generate} N or {continuation} TEXT, not both")
        if self.generate is not None and (
            isinstance(self.generate, bool)
            or not isinstance(self.generate, int)
            or self.generate < 1
        ):
            raise RequestError(f"{{generate}} {self.generate!r}: generate at least 1 token")
        if self.continuation is not None:
            if not isinstance(self.continuation, str) or not self.continuation.strip():
                raise RequestError("the {continuation} is empty: give the answer to explain")
            check_unicode(self.continuation, "the continuation")
        if self.system is not None:
            if not self.chat:
                raise RequestError("{system} is a chat message: set {chat}")
            check_unicode(self.system, "the system message")
        for name in ("target", "target_kind", "contrast", "pair"):
            if getattr(self, name) is not None:
                raise RequestError(
                    f"{{{name}}} does not go with {{generate}} / {{continuation}}: each token of "
                    "the answer is its own target"
                )
        if self.max_length is not None:
            raise RequestError(
                "{max_length} does not go with {generate} / {continuation}: the prompt and the "
                "answer are read whole (the model's context is the limit)"
            )
        if self.unit is not None:
            raise RequestError(
                "{unit} does not go with {generate} / {continuation}: an answer is explained "
                "token by token"
            )

    def goal(self, adapter: Any) -> Any:
        """The target on this model (built from the target fields; checked against its task)."""
        from textlens.targets import as_target

        if self.contrast is not None and adapter.task != "causal-lm":
            raise RequestError(
                "{contrast} compares two next tokens of a causal language model; this model is "
                f"a {adapter.task} model (leave out {{contrast}}, or give a causal LM)"
            )
        from textlens.generation import GENERATING_TASKS

        if self.answer and adapter.task not in GENERATING_TASKS:
            raise TextlensError(
                f"explaining a generated answer needs a causal or encoder-decoder language "
                f"model; this is a {adapter.task} model (give one with --model, e.g. demo-lm)"
            )
        if not self.answer and adapter.task == "seq2seq-lm":
            from textlens.adapters.seq2seq import NOT_ALONE

            raise RequestError(NOT_ALONE)
        return as_target(adapter, self.target, self.target_kind, self.target_options)

    # -- running -------------------------------------------------------------------------------
    def run(self, adapter: Any, *, on_plan: Callable[[Any], None] | None = None) -> Outcome:
        """Explain on ``adapter`` (checked first): one Explanation per method (two for a pair,
        first then second text), or one Generation per method for an answer (``on_plan`` is
        called with each answer's plan before its work starts)."""
        self.check()
        from textlens.memory import memory_limit

        with memory_limit(self.max_memory):
            return self._run(adapter, on_plan)

    def _run(self, adapter: Any, on_plan: Callable[[Any], None] | None) -> Outcome:
        goal = self.goal(adapter) if not self.answer else None
        if self.answer:
            return Outcome(generations=tuple(self._answer(adapter, m, on_plan) for m in self.built))
        if self.pair is not None:
            return Outcome(
                explanations=tuple(e for m in self.built for e in self._pair(adapter, m))
            )
        if self.text is None:
            raise TextlensError("the request has no text to explain")
        from textlens.pipeline import explain_many

        prompt, spans = self.prompt()
        exps = [  # several labels: one per label
            e
            for m in self.built
            for e in explain_many(
                [prompt],
                adapter,
                m,
                goal,
                max_length=self.max_length,
                truncate=self.truncate,
                documents=[spans] if spans else None,
            )
        ]
        return Outcome(explanations=tuple(self.shown(e) for e in exps))

    def prompt(self) -> tuple[Any, tuple[tuple[int, int], ...]]:
        """The text the model reads (the question with its documents, when there are any) and
        the span of each document in it."""
        if self.documents is None or self.text is None:
            return self.text, ()
        from textlens.prompt import build_prompt

        built = build_prompt(str(self.text), self.documents, self.template)
        return built.text, built.documents

    def explain_texts(
        self,
        adapter: Any,
        texts: Sequence[str | tuple[str, str]],
        batch_size: int = 16,
        documents: Sequence[tuple[str, ...] | None] | None = None,
    ) -> list[Any]:
        """One result per text (a job's rows, batched): an Explanation, or a Generation for an
        answer; the request's single method. ``documents``: per text, the documents it is
        asked over (a row's own, which replace the request's)."""
        self.check()
        if len(self.built) != 1:
            raise TextlensError("a job explains with one method; give one --method")
        from textlens.memory import memory_limit

        with memory_limit(self.max_memory):
            return self._explain_texts(adapter, texts, batch_size, documents)

    def _explain_texts(
        self,
        adapter: Any,
        texts: Sequence[str | tuple[str, str]],
        batch_size: int,
        documents: Sequence[tuple[str, ...] | None] | None,
    ) -> list[Any]:
        method = self.built[0]
        asked = [
            self.with_text(t)
            if documents is None or documents[i] is None
            else dataclasses.replace(self, text=t, documents=documents[i])
            for i, t in enumerate(texts)
        ]
        if self.answer:
            return [a._answer(adapter, method, None) for a in asked]
        if self.pair is not None:
            return [a._pair(adapter, method)[0] for a in asked]
        from textlens.pipeline import explain_many
        from textlens.targets import several

        goal = self.goal(adapter)
        if several(goal, adapter):
            raise RequestError(
                "a job explains one {target} per row: give one label (several labels go with "
                "one text: textlens explain, or explain_labels in Python)"
            )
        prompts, spans = zip(*(a.prompt() for a in asked), strict=True)
        exps = explain_many(
            list(prompts), adapter, method, goal, batch_size=batch_size,
            max_length=self.max_length, truncate=self.truncate,
            documents=list(spans) if any(spans) else None,
        )  # fmt: skip
        return [self.shown(e) for e in exps]

    def shown(self, exp: Any) -> Any:
        """An Explanation in the request's unit."""
        return exp.to_units(self.unit) if self.unit else exp

    def _pair(self, adapter: Any, method: Any) -> list[Any]:
        from textlens.pipeline import explain_pair

        if not isinstance(self.text, str):
            raise TextlensError("a pair compares two plain texts, not a question and a context")
        first, second = explain_pair(
            self.text, str(self.pair), adapter, method, pooling=self.pooling,
            max_length=self.max_length,
        )  # fmt: skip
        return [self.shown(first), self.shown(second)]

    def _answer(self, adapter: Any, method: Any, on_plan: Any) -> Any:
        from textlens.generation import explain_generation

        if not isinstance(self.text, str):
            raise TextlensError("an answer follows a plain prompt, not a question and a context")
        prompt, _ = self.prompt()
        return explain_generation(
            prompt, adapter, method, generate=self.generate, continuation=self.continuation,
            sample_seed=self.sample, chat=self.chat, system=self.system,
            attribute_to="prompt" if self.prompt_only else "all", on_plan=on_plan,
            documents=self.documents or (), truncate=self.truncate,
        )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a request gave: Explanations (one per method; a pair's two sides in turn), or
    Generations (one per method) for an answer."""

    explanations: tuple[Any, ...] = ()
    generations: tuple[Any, ...] = ()


def _plain(value: Any) -> Any:
    """A setting's value as JSON takes it (tuples as lists, method instances by name)."""
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and hasattr(value, "name"):
        return value.name
    return value
