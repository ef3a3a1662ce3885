"""Prompts built from documents and a question, with each document's place in the prompt.

A long-context question is asked over documents (retrieved passages, files): the template joins
them and the question into the prompt a model reads, and the character span of every document
in that prompt is kept, so that an explanation can score each document (``unit="document"``)
and each of its sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textlens.errors import TextlensError
from textlens.text import check_unicode

DEFAULT_TEMPLATE = "{documents}\n\nQuestion: {question}\nAnswer:"
"""How documents and a question become a prompt (``{documents}`` and ``{question}``)."""
DOCUMENT = "Document {number}: {document}"
"""How each document is introduced inside ``{documents}``; blank lines between documents."""
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Prompt:
    """A prompt and the character span of each document in it."""

    text: str
    documents: tuple[tuple[int, int], ...]


def check_documents(documents: Sequence[str], template: str | None = None) -> None:
    """Refuse an empty list, an empty document, text that is not valid Unicode, or a template
    without its two places, in one line."""
    if isinstance(documents, str):
        raise TextlensError("documents is a list of texts, not one text: documents=[text, ...]")
    if not documents:
        raise TextlensError("the document list is empty: give at least one document")
    for number, document in enumerate(documents, 1):
        if not isinstance(document, str):
            raise TextlensError(
                f"document {number} is a {type(document).__name__}, not a text; read files first"
            )
        if not document.strip():
            raise TextlensError(f"document {number} is empty: leave it out or give its text")
        check_unicode(document, f"document {number}")
    if template is not None:
        for place in ("{documents}", "{question}"):
            if place not in template:
                raise TextlensError(
                    f"the template has no {place}: it needs {{documents}} and {{question}}, e.g. "
                    f"{DEFAULT_TEMPLATE!r}"
                )


def build_prompt(question: str, documents: Sequence[str], template: str | None = None) -> Prompt:
    """The prompt the template makes of ``documents`` and ``question``, and each document's span.

    Examples:
        >>> p = build_prompt("Who?", ["Ann came.", "Bob left."])
        >>> [p.text[a:b] for a, b in p.documents]
        ['Ann came.', 'Bob left.']
    """
    check_documents(documents, template)
    template = template or DEFAULT_TEMPLATE
    block, spans = "", []
    for number, document in enumerate(documents, 1):
        head = (SEPARATOR if number > 1 else "") + DOCUMENT.format(number=number, document="")
        start = len(block) + len(head)
        block += head + document
        spans.append((start, start + len(document)))
    before = template.index("{documents}")
    prefix = template[:before].replace("{question}", question)
    text = prefix + block + template[before + len("{documents}") :].replace("{question}", question)
    return Prompt(text, tuple((a + len(prefix), b + len(prefix)) for a, b in spans))


def locate(text: str, documents: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """The spans of ``documents`` found in ``text`` in their order (after a chat template put
    the prompt into its own text)."""
    spans, at = [], 0
    for number, document in enumerate(documents, 1):
        start = text.find(document, at)
        if start < 0:
            raise TextlensError(
                f"document {number} is not in the prompt as given: the template or chat template "
                "rewrote it"
            )
        spans.append((start, start + len(document)))
        at = start + len(document)
    return tuple(spans)
