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

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from .chat import ChatClient
from .properties import Association, tokenize

__all__ = ["Phrase", "Description", "FeatureExamples", "TextCorpus", "ContrastivePhrases", "DistinctiveWords",
           "OfflineDescriber", "ChatDescriber", "CallableDescriber", "fidelity", "log_odds_z", "STOP_WORDS"]

# Function words only: negations and modals that carry meaning (can't, cannot, won't, might)
# stay, so refusals and hedges can surface as phrases.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing don't down during each few for from further had has have having he
he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is
isn't it it's its itself just let's me more most my myself nor of off on once only or other ought our ours
ourselves out over own same she she'd she'll she's should so some such than that that's the their theirs
them themselves then there there's these they they'd they'll they're they've this those through to too
under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
which while who who's whom why why's will with would you you'd you'll you're you've your yours yourself
yourselves also s t re ve ll d m
""".split())


def _grams(text: str, max_n: int) -> set[str]:
    """Distinct 1..max_n-grams of ``text`` whose last word is not a stop word."""
    tokens = tokenize(text)
    out = set()
    for i, last in enumerate(tokens):
        if last in STOP_WORDS:
            continue
        for n in range(1, min(max_n, i + 1) + 1):
            out.add(" ".join(tokens[i - n + 1: i + 1]))
    return out


def log_odds_z(y_more: np.ndarray, y_less: np.ndarray, background: np.ndarray, prior_strength: float = 1.0) -> np.ndarray:
    """Monroe et al.'s z-scored log-odds ratio with an informative Dirichlet prior.

    ``y_more``/``y_less``: counts per phrase in the two groups; ``background``: the phrases'
    frequencies in a reference corpus (any positive scale). The prior's total mass is
    ``prior_strength`` times the two groups' total count, spread by ``background``.
    z > 0: over-represented in ``more``.
    """
    y_i = np.asarray(y_more, np.float64)
    y_j = np.asarray(y_less, np.float64)
    bg = np.asarray(background, np.float64)
    if not (y_i.shape == y_j.shape == bg.shape):
        raise ValueError("counts and background must have the same shape")
    if y_i.size == 0:
        return np.zeros(0)
    n_i, n_j = y_i.sum(), y_j.sum()
    alpha_0 = prior_strength * (n_i + n_j)
    alpha = alpha_0 * (bg + 1e-12) / (bg + 1e-12).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (np.log((y_i + alpha) / (n_i + alpha_0 - y_i - alpha))
                 - np.log((y_j + alpha) / (n_j + alpha_0 - y_j - alpha)))
        z = delta / np.sqrt(1.0 / (y_i + alpha) + 1.0 / (y_j + alpha))
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


# --------------------------------------------------------------------------------------
# What a description is
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phrase:
    """A phrase and its log-odds z between carrying and other responses (z > 0: carrying side)."""

    text: str
    z: float
    n_carrying: int  # carrying responses that contain it
    n_other: int


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


@dataclass(frozen=True)
class FeatureExamples:
    """A feature's pairs, oriented and de-duplicated, strongest |activation| first."""

    feature: int
    rows: np.ndarray           # dataset rows
    activation: np.ndarray     # signed activation per row
    carrying_ids: np.ndarray   # ids into the corpus's distinct texts
    other_ids: np.ndarray
    corpus: "TextCorpus" = field(repr=False)
    contrast_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # pairs where it is silent

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def carrying(self) -> list[str]:
        return [self.corpus.texts[i] for i in self.carrying_ids]

    @property
    def other(self) -> list[str]:
        return [self.corpus.texts[i] for i in self.other_ids]


class TextCorpus:
    """The distinct texts of a dataset's responses, with each pair's ids and cached phrase sets.

    Parameters
    ----------
    prompts, response_a, response_b : sequences of str, one per pair
    max_ngram : int
        Longest phrase, in words.
    """

    def __init__(self, prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str],
                 max_ngram: int = 3) -> None:
        if not (len(prompts) == len(response_a) == len(response_b)):
            raise ValueError("prompts, response_a and response_b must have one entry per pair")
        ids: dict[str, int] = {}
        self.id_a = np.fromiter((ids.setdefault(str(t), len(ids)) for t in response_a), np.int64, len(response_a))
        self.id_b = np.fromiter((ids.setdefault(str(t), len(ids)) for t in response_b), np.int64, len(response_b))
        self.texts = list(ids)
        self.prompts = list(prompts)
        self.max_ngram = int(max_ngram)
        self._grams: dict[int, set[str]] = {}
        self._background: Counter | None = None

    def __len__(self) -> int:
        return len(self.id_a)

    def grams(self, text_id: int) -> set[str]:
        got = self._grams.get(text_id)
        if got is None:
            got = self._grams[text_id] = _grams(self.texts[text_id], self.max_ngram)
        return got

    def background(self, max_texts: int = 4000, seed: int = 0) -> Counter:
        """Phrase document frequencies over (a fixed random sample of) the distinct texts."""
        if self._background is None:
            ids = np.arange(len(self.texts))
            if ids.size > max_texts:
                ids = np.sort(np.random.default_rng(seed).choice(ids, max_texts, replace=False))
            self._background = Counter(g for i in ids for g in self.grams(int(i)))
        return self._background

    def distinct_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` with repeats of the same two texts (in either order) dropped, first kept."""
        rows = np.asarray(rows, np.int64)
        lo = np.minimum(self.id_a[rows], self.id_b[rows])
        hi = np.maximum(self.id_a[rows], self.id_b[rows])
        _, first = np.unique(lo * (len(self.texts) + 1) + hi, return_index=True)
        return rows[np.sort(first)]

    def examples(self, feature: int, activation: np.ndarray, rows: np.ndarray, n: int, sign: int = 0,
                 n_contrast: int = 0, seed: int = 0) -> FeatureExamples:
        """The ``n`` strongest distinct pairs among ``rows`` (``sign`` 0: either sign, ±1: that sign)."""
        activation = np.asarray(activation, np.float64)
        rows = np.asarray(rows, np.int64)
        value = activation[rows]
        keep = rows[(value > 0) if sign > 0 else (value < 0) if sign < 0 else (value != 0)]
        keep = keep[np.argsort(-np.abs(activation[keep]), kind="stable")]
        keep = self.distinct_rows(keep)
        keep = keep[np.argsort(-np.abs(activation[keep]), kind="stable")][:n]
        positive = activation[keep] > 0
        carrying = np.where(positive, self.id_a[keep], self.id_b[keep])
        other = np.where(positive, self.id_b[keep], self.id_a[keep])
        contrast = np.zeros(0, np.int64)
        if n_contrast:
            silent = self.distinct_rows(rows[activation[rows] == 0])
            if silent.size:
                contrast = np.random.default_rng(seed + feature).choice(silent, min(n_contrast, silent.size),
                                                                        replace=False)
        return FeatureExamples(feature=int(feature), rows=keep, activation=activation[keep], carrying_ids=carrying,
                               other_ids=other, corpus=self, contrast_rows=contrast)


# --------------------------------------------------------------------------------------
# Offline
# --------------------------------------------------------------------------------------
class ContrastivePhrases:
    """Phrases over-represented on one side of oriented pairs (Monroe et al. log-odds).

    Counts are per response (a phrase counts once per text, so one long text cannot dominate);
    phrases seen in fewer than ``min_count`` of the compared responses are ignored. A phrase
    is reported only when its z passes a Bonferroni bound over the phrases compared (two-sided
    5%), so a feature with nothing distinctive is said to have nothing.

    Parameters
    ----------
    n_phrases : int
        Phrases reported per side.
    max_ngram : int
    prior_strength : float
        Weight of the corpus prior relative to the compared counts (see :func:`log_odds_z`).
    min_count : int
    """

    def __init__(self, n_phrases: int = 3, max_ngram: int = 3, prior_strength: float = 1.0, min_count: int = 3) -> None:
        self.n_phrases = n_phrases
        self.max_ngram = max_ngram
        self.prior_strength = prior_strength
        self.min_count = min_count

    def score(self, carrying: Sequence[set], other: Sequence[set], background: Counter) -> list[Phrase]:
        """Phrases passing the bound, both sides, strongest |z| first, overlapping ones pruned."""
        c_more = Counter(g for s in carrying for g in s)
        c_less = Counter(g for s in other for g in s)
        vocab = [g for g in set(c_more) | set(c_less) if c_more[g] + c_less[g] >= self.min_count]
        if not vocab:
            return []
        vocab.sort()
        y_i = np.array([c_more[g] for g in vocab], np.float64)
        y_j = np.array([c_less[g] for g in vocab], np.float64)
        bg = np.array([background.get(g, 0) + 0.5 for g in vocab], np.float64)
        z = log_odds_z(y_i, y_j, bg, self.prior_strength)
        bound = _bonferroni_z(len(vocab))
        out: list[Phrase] = []
        for k in np.argsort(-np.abs(z), kind="stable"):
            if abs(z[k]) < bound:
                break
            text = vocab[k]
            same_side = [p for p in out if (p.z > 0) == (z[k] > 0)]
            if len(same_side) >= self.n_phrases or any(_overlaps(text, p.text) for p in same_side):
                continue
            out.append(Phrase(text=text, z=float(z[k]), n_carrying=int(y_i[k]), n_other=int(y_j[k])))
        return out

    def phrases(self, more: Sequence[str], less: Sequence[str]) -> list[Phrase]:
        """:meth:`score` on raw texts (the texts themselves are the prior's corpus)."""
        carrying = [_grams(t, self.max_ngram) for t in more]
        other = [_grams(t, self.max_ngram) for t in less]
        return self.score(carrying, other, Counter(g for s in carrying + other for g in s))

    def __call__(self, more: Sequence[str], less: Sequence[str]) -> str:
        """A describer on raw texts: ``more: 'x', 'y'; less: 'z'``."""
        found = self.phrases(more, less)
        plus = [p.text for p in found if p.z > 0]
        minus = [p.text for p in found if p.z < 0]
        parts = ([f"more: {_quoted(plus)}"] if plus else []) + ([f"less: {_quoted(minus)}"] if minus else [])
        return "; ".join(parts) or "(no distinctive phrases)"

    def __repr__(self) -> str:
        return f"<likeable.ContrastivePhrases(n_phrases={self.n_phrases}, max_ngram={self.max_ngram})>"


class DistinctiveWords(ContrastivePhrases):
    """Single words only, ``n_words`` of them, with a bound of z > 0 (the earlier describer's shape)."""

    def __init__(self, n_words: int = 3, prior: float = 0.5) -> None:
        super().__init__(n_phrases=n_words, max_ngram=1, prior_strength=prior, min_count=1)
        self.n_words = n_words

    def top_words(self, more: Sequence[str], less: Sequence[str]) -> list[str]:
        carrying = [_grams(t, 1) for t in more]
        other = [_grams(t, 1) for t in less]
        background = Counter(g for s in carrying + other for g in s)
        c_more = Counter(g for s in carrying for g in s)
        c_less = Counter(g for s in other for g in s)
        vocab = sorted(set(c_more) | set(c_less))
        if not vocab:
            return []
        z = log_odds_z(np.array([c_more[g] for g in vocab], float), np.array([c_less[g] for g in vocab], float),
                       np.array([background[g] for g in vocab], float), self.prior_strength)
        order = np.argsort(-z, kind="stable")
        return [vocab[i] for i in order[: self.n_words] if z[i] > 0]

    def __call__(self, more: Sequence[str], less: Sequence[str]) -> str:
        words = self.top_words(more, less)
        return ", ".join(words) if words else "(no distinctive words)"


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
        found = self.phrases.score([corpus.grams(int(i)) for i in examples.carrying_ids],
                                   [corpus.grams(int(i)) for i in examples.other_ids], corpus.background())
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
        for p in description.phrases:
            sign = 1.0 if p.z > 0 else -1.0
            has_a = np.fromiter((p.text in corpus.grams(int(i)) for i in corpus.id_a[rows]), bool, rows.size)
            has_b = np.fromiter((p.text in corpus.grams(int(i)) for i in corpus.id_b[rows]), bool, rows.size)
            score += sign * (has_a.astype(float) - has_b)
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


# --------------------------------------------------------------------------------------
def _bonferroni_z(n_tests: int, alpha: float = 0.05) -> float:
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * max(n_tests, 1))))


def _overlaps(a: str, b: str) -> bool:
    """One phrase's words appear, in order, inside the other's."""
    a, b = f" {a} ", f" {b} "
    return a in b or b in a


def _quoted(phrases: Sequence[str]) -> str:
    return ", ".join(f"'{p}'" for p in phrases)


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
            value = json.loads(text[start: end + 1]).get("description")
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
        except (ValueError, AttributeError):
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
