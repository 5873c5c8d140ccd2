"""Names for features, and how far to trust them.

A feature's pairs are first *oriented*: in each pair the response on the side the activation
points to (A where it is positive, B where negative) is the *carrying* response, its partner
the *other*. Repeated pairs (several judgments of the same two texts) are kept once.

- :class:`OfflineDescriber` (the default; no network) contrasts the carrying and the other
  responses of a feature's strongest few hundred pairs with Monroe, Colaresi & Quinn's (2008)
  log-odds of 1–3-word phrases under an informative Dirichlet prior (the corpus's own
  phrase frequencies), stop-words out, and adds the feature's strongest associations with the
  named text properties of :mod:`likeable.protocol.properties`.
- :class:`ChatDescriber` asks any OpenAI-compatible chat model, as WIMHF and HypotheSAEs do:
  it shows the strongest oriented pairs and a few pairs where the feature is silent, asks for
  a short description, and annotates held-out pairs with it.

Every description gets a *fidelity*: the Pearson correlation, on held-out pairs, between the
feature's activation and an annotator's judgement of "does A show the description more than
B?" (+ where A does). The annotator for the offline describer is measurement itself: the
description's phrases counted in both texts and its properties measured by the property bank.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import _json
from .._core import FormatError
from .chat import ChatClient
# Phrase machinery lives in .phrases; its names stay importable from here.
from .phrases import (STOP_WORDS, ContrastivePhrases, DistinctiveWords, FeatureExamples, Phrase, TextCorpus,  # noqa: F401
                      _quoted, log_odds_z)
from .properties import Association, tokenize  # noqa: F401

__all__ = ["Phrase", "Description", "FeatureExamples", "TextCorpus", "ContrastivePhrases", "DistinctiveWords",
           "OfflineDescriber", "ChatDescriber", "CallableDescriber", "fidelity", "log_odds_z", "STOP_WORDS"]

# --------------------------------------------------------------------------------------
# What a description is
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Description:
    """What a feature seems to be, from one describer.

    ``side``: ``"A"`` means a positive activation goes with A having more of ``content`` (a
    negative one with B having more); ``"B"`` the reverse. ``text`` is the one line a reader
    sees. ``fidelity`` is the correlation of activation with the annotator's judgements on
    ``fidelity_n`` held-out pairs (NaN where either side is constant).
    """

    text: str
    side: str = "A"
    content: str = ""
    source: str = "offline"
    phrases: tuple = ()
    properties: tuple = ()
    fidelity: float | None = None
    fidelity_n: int = 0
    n_pairs: int = 0  # distinct pairs the describer looked at



class OfflineDescriber:
    """The default describer: contrastive phrases plus the strongest property associations.

    Parameters
    ----------
    n_phrases : int
        Phrases named for the leading side (and up to two for the other side).
    n_properties : int
        Property associations named (those with |r| >= ``min_abs_r``).
    min_abs_r : float
    phrases : ContrastivePhrases, optional
    """

    source = "offline"

    def __init__(self, n_phrases: int = 3, n_properties: int = 2, min_abs_r: float = 0.1,
                 phrases: ContrastivePhrases | None = None) -> None:
        self.n_phrases = n_phrases
        self.n_properties = n_properties
        self.min_abs_r = min_abs_r
        self.phrases = phrases or ContrastivePhrases(n_phrases=n_phrases)

    def describe(self, examples: FeatureExamples, properties: Sequence[Association] = (), bank=None) -> Description:
        """Describe from oriented ``examples`` and the feature's associations (strongest first)."""
        corpus = examples.corpus
        found = self.phrases.score(corpus, examples.carrying_ids, examples.other_ids)
        props = [a for a in properties if abs(a.r) >= self.min_abs_r][: self.n_properties]
        plus = [p for p in found if p.z > 0]
        minus = [p for p in found if p.z < 0]
        # Lead with the side whose strongest phrase is stronger; without phrases, the strongest property.
        if found:
            side = "A" if (plus and (not minus or plus[0].z >= -minus[0].z)) else "B"
        elif props:
            side = "A" if props[0].r > 0 else "B"
        else:
            side = "A"
        lead, counter = (plus, minus) if side == "A" else (minus, plus)
        other_side = "B" if side == "A" else "A"
        parts = []
        if lead:
            parts.append(f"more {_quoted([p.text for p in lead[: self.n_phrases]])}")
        words = [f"{_direction_words(bank, a, side)} (r = {a.r:+.2f})" for a in props]
        if words:
            parts.append(", ".join(words))
        text = f"{side}-side: " + "; ".join(parts) if parts else "no phrase or property stands out"
        if counter:
            text += f" — {other_side}-side: more {_quoted([p.text for p in counter[:2]])}"
        content = ", ".join([_quoted([p.text for p in lead[: self.n_phrases]])] if lead else []
                            + [_direction_words(bank, a, side) for a in props])
        return Description(text=text, side=side, content=content, source=self.source, phrases=tuple(found),
                           properties=tuple(props), n_pairs=len(examples))

    def annotate(self, description: Description, corpus: TextCorpus, rows: np.ndarray,
                 property_differences: np.ndarray | None = None, property_names: Sequence[str] = ()) -> np.ndarray:
        """Per pair: how much more A than B shows the description (+: A), by counting and measuring.

        Each phrase found in A and not B counts +1 toward its side (−1 the other way); each
        named property adds its standardised A − B difference in the direction of its r.
        """
        rows = np.asarray(rows, np.int64)
        score = np.zeros(rows.size)
        if description.phrases:
            texts = [p.text for p in description.phrases]
            signs = np.array([1.0 if p.z > 0 else -1.0 for p in description.phrases])
            has_a = corpus.contains(corpus.id_a[rows], texts).astype(np.float64)
            has_b = corpus.contains(corpus.id_b[rows], texts).astype(np.float64)
            score += (has_a - has_b) @ signs
        if property_differences is not None:
            names = list(property_names)
            for a in description.properties:
                column = np.asarray(property_differences[rows, names.index(a.name)], np.float64)
                scale = column.std() or 1.0
                score += np.sign(a.r) * column / scale
        return score

    def __repr__(self) -> str:
        return f"<likeable.OfflineDescriber(n_phrases={self.n_phrases}, n_properties={self.n_properties})>"


# --------------------------------------------------------------------------------------
# LLM (WIMHF / HypotheSAEs)
# --------------------------------------------------------------------------------------
_DESCRIBE_PROMPT = """You are analysing one feature learned from human preference data. Each example is a pair of \
responses to the same conversation.

In every STRONG example, Response 1 has clearly MORE of one property than Response 2.
In every CONTROL example, the two responses do not differ in that property.

{examples}

What property does Response 1 have more of in the STRONG examples (and not in the CONTROL ones)? \
Answer with a short phrase of at most ten words that a reader could check in a new pair, such as \
"refuses the request" or "uses a numbered list". Reply as JSON: {{"description": "..."}}"""

_JUDGE_PROMPT = """Property: {description}

Response A: {a}

Response B: {b}

Which response shows the property more? Answer with exactly one of: A, B, tie."""


class ChatDescriber:
    """Describe features and annotate pairs with any OpenAI-compatible chat model.

    Parameters
    ----------
    model, base_url, api_key, cache_dir, timeout, max_retries, backoff, concurrency
        Passed to :class:`likeable.protocol.chat.ChatClient` (environment defaults there).
    max_examples : int
        Strongest oriented pairs shown per feature.
    n_contrast : int
        Pairs where the feature is silent, shown as controls.
    max_chars : int
        Each response is cut to this many characters in a prompt.
    client : ChatClient, optional
        Use this client instead of building one.
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 cache_dir=None, timeout: float = 60.0, max_examples: int = 10, max_chars: int = 400, *,
                 n_contrast: int = 4, max_retries: int = 4, backoff: float = 1.0, concurrency: int = 4,
                 client: ChatClient | None = None) -> None:
        self.client = client or ChatClient(model=model, base_url=base_url, api_key=api_key, cache_dir=cache_dir,
                                           timeout=timeout, max_retries=max_retries, backoff=backoff,
                                           concurrency=concurrency)
        self.max_examples = max_examples
        self.n_contrast = n_contrast
        self.max_chars = max_chars
        self.n_unparsed = 0  # judgements that were neither A, B nor tie (counted as tie)

    model = property(lambda self: self.client.model)
    base_url = property(lambda self: self.client.base_url)
    cache_dir = property(lambda self: self.client.cache_dir)

    @property
    def source(self) -> str:
        return f"llm:{self.client.model}"

    # -- describing ---------------------------------------------------------------------
    def describe(self, examples: FeatureExamples, properties: Sequence[Association] = (), bank=None) -> Description:
        """A description of what the carrying responses have more of (so ``side`` is ``"A"``)."""
        corpus = examples.corpus
        shown = list(zip(examples.carrying, examples.other))[: self.max_examples]
        if not shown:
            return Description(text="(no examples)", source=self.source)
        controls = [(corpus.texts[corpus.id_a[r]], corpus.texts[corpus.id_b[r]]) for r in examples.contrast_rows]
        content = self.describe_texts([m for m, _ in shown], [o for _, o in shown], controls)
        return Description(text=f"A-side: {content}", side="A", content=content, source=self.source,
                           n_pairs=len(shown))

    def describe_texts(self, more: Sequence[str], less: Sequence[str], controls: Sequence[tuple] = ()) -> str:
        blocks = [f"STRONG example {i + 1}:\n  Response 1: {self._cut(m)}\n  Response 2: {self._cut(o)}"
                  for i, (m, o) in enumerate(zip(more, less))]
        blocks += [f"CONTROL example {i + 1}:\n  Response 1: {self._cut(a)}\n  Response 2: {self._cut(b)}"
                   for i, (a, b) in enumerate(controls)]
        reply = self.client.complete(_DESCRIBE_PROMPT.format(examples="\n\n".join(blocks)), max_tokens=60)
        return _parse_description(reply)

    def __call__(self, more: Sequence[str], less: Sequence[str]) -> str:
        """The plain describer shape: ``(more, less) -> str``."""
        if not len(more):
            return "(no examples)"
        return self.describe_texts(list(more)[: self.max_examples], list(less)[: self.max_examples])

    # -- annotating ---------------------------------------------------------------------
    def judge(self, description: str, response_a: str, response_b: str) -> float:
        """+1 if A shows ``description`` more, −1 if B does, 0 for a tie."""
        return self.judge_many(description, [response_a], [response_b])[0]

    def judge_many(self, description: str, response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        prompts = [_JUDGE_PROMPT.format(description=description, a=self._cut(a), b=self._cut(b))
                   for a, b in zip(response_a, response_b)]
        answers = self.client.complete_many(prompts, max_tokens=8)
        out = np.array([_parse_choice(a) for a in answers], np.float64)
        self.n_unparsed += int(np.isnan(out).sum())
        return np.nan_to_num(out, nan=0.0)

    def annotate(self, description: Description, corpus: TextCorpus, rows: np.ndarray,
                 property_differences=None, property_names=()) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        judged = self.judge_many(description.content or description.text, [corpus.texts[i] for i in corpus.id_a[rows]],
                                 [corpus.texts[i] for i in corpus.id_b[rows]])
        return judged if description.side == "A" else -judged

    def chat(self, prompt: str) -> str:
        """One user message in, the assistant's text out (cached on disk when enabled)."""
        return self.client.complete(prompt)

    def _cut(self, text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= self.max_chars else text[: self.max_chars] + "…"

    def __repr__(self) -> str:
        return f"<likeable.ChatDescriber(model={self.client.model!r}, base_url={self.client.base_url!r})>"


class CallableDescriber:
    """Adapts a plain ``describer(more, less) -> str`` (and an optional
    ``annotator(description, a, b) -> +1/0/−1``) to the describer interface."""

    def __init__(self, describer, annotator=None) -> None:
        self.describer = describer
        self.annotator = annotator
        self.source = f"callable:{getattr(describer, '__name__', type(describer).__name__)}"

    def describe(self, examples: FeatureExamples, properties=(), bank=None) -> Description:
        text = str(self.describer(examples.carrying, examples.other))
        return Description(text=text, side="A", content=text, source=self.source, n_pairs=len(examples))

    def annotate(self, description, corpus, rows, property_differences=None, property_names=()) -> np.ndarray | None:
        if self.annotator is None:
            return None
        rows = np.asarray(rows, np.int64)
        judged = [self.annotator(description.content, corpus.texts[corpus.id_a[r]], corpus.texts[corpus.id_b[r]])
                  for r in rows]
        return np.asarray(judged, np.float64)


def fidelity(activations, judgements) -> float:
    """Pearson correlation of a feature's activation with an annotator's judgements.

    NaN when either side is constant.
    """
    a = np.asarray(activations, np.float64)
    j = np.asarray(judgements, np.float64)
    if a.shape != j.shape:
        raise ValueError(f"activations ({a.shape}) and judgements ({j.shape}) differ in shape")
    if a.size < 2 or a.std() == 0 or j.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, j)[0, 1])


def _direction_words(bank, association: Association, side: str) -> str:
    """The property's direction, said of the leading side ("more apologetic", "shorter")."""
    toward_side = association.r > 0 if side == "A" else association.r < 0
    if bank is None:
        return f"{'more' if toward_side else 'less'} {association.name}"
    prop = bank.get(association.name)
    return prop.more if toward_side else prop.less


def _parse_description(reply: str) -> str:
    text = reply.strip()
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            value = _json.loads(text[start: end + 1], "the describer's reply").get("description")
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
        except (FormatError, AttributeError):  # not JSON, nested too deep, or not an object
            pass
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return " ".join(line.strip().strip('"').split())[:200] or "(no description)"


def _parse_choice(answer: str) -> float:
    """+1 for A, −1 for B, 0 for a tie, NaN when the answer names none of them (or both)."""
    text = answer.strip()
    lead = re.match(r"[\W_]*(?:response\s+)?([ab]|tie|neither|equal)\b", text, re.IGNORECASE)
    if lead:
        return {"a": 1.0, "b": -1.0}.get(lead.group(1).lower(), 0.0)
    named = set(re.findall(r"\b(?:Response )?([AB])\b", text))
    if len(named) == 1:
        return 1.0 if named == {"A"} else -1.0
    return 0.0 if re.search(r"\btie\b", text, re.IGNORECASE) and not named else float("nan")
