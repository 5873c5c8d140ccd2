"""Named, measurable text properties of a response, and how features go with them.

A :class:`PropertyBank` measures every response once: readability as the Coleman–Liau
grade (counted as ``textstat`` does, see :func:`reading_grade`), sentiment and emotional
wording with VADER (``vaderSentiment``), and short documented
lexicons where no library exists (hedging, apology, refusal, politeness, formality, humour,
references to earlier turns, callbacks) plus simple counts (length, questions, exclamations,
lists and markdown, code, numbers, links, first and second person). Each feature's
activation is then correlated with each property's A − B difference over all pairs
(:func:`associations`), which is what a card's "goes with" line and the offline
description's property part say.

The seven likability dimensions of the session simulation
(:data:`~likeable.protocol.datasets.SESSION_DIMENSIONS`) are properties here under the same
names, so the simulation and the feature cards speak one language.

Lexicon properties are counted per 100 words (with a floor of 20 words, so a five-word reply
with one "sorry" reads as 5, not 20); structural properties are plain counts per response.
Matching is case-insensitive on word boundaries; curly apostrophes count as straight ones.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["TextProperty", "PropertyBank", "Association", "Associations", "associations", "fisher_interval",
           "tokenize", "reading_grade", "LEXICONS"]

_RATE_FLOOR_WORDS = 20

# Each lexicon is short on purpose: common, unambiguous markers of the property in English
# assistant replies. Phrases are matched whole (multi-word phrases as written).
LEXICONS: dict[str, tuple[str, ...]] = {
    "hedging": ("perhaps", "maybe", "might", "possibly", "probably", "likely", "unlikely", "seems",
                "it seems", "appears to", "apparently", "i think", "i believe", "i guess", "i suppose",
                "not sure", "it depends", "depends on", "generally", "usually", "typically", "somewhat",
                "sort of", "kind of", "could be", "may be", "arguably", "roughly", "approximately",
                "to some extent", "in some cases"),
    "apology": ("sorry", "apologize", "apologise", "apologies", "apologizing", "my apologies", "i regret",
                "regrettably", "forgive me", "pardon me"),
    "refusal": ("i can't", "i cannot", "i can not", "i won't", "i will not", "i'm not able", "i am not able",
                "i'm unable", "i am unable", "unable to", "not able to", "i refuse", "decline", "i must decline",
                "not comfortable", "i'd rather not", "i would rather not", "can't help with", "cannot help with",
                "can't assist", "cannot assist", "not appropriate", "inappropriate", "i shouldn't",
                "i should not", "i don't think i can", "won't be able"),
    "politeness": ("please", "thank you", "thanks", "thank", "kindly", "you're welcome", "you are welcome",
                   "happy to help", "glad to help", "my pleasure", "i appreciate", "appreciate",
                   "excuse me", "if you don't mind", "would you mind", "respectfully"),
    # Formality: formal connectives and closings minus informal words (see _FORMALITY_INFORMAL).
    "formality": ("furthermore", "moreover", "therefore", "thus", "hence", "however", "nevertheless",
                  "consequently", "accordingly", "whereas", "regards", "hereby", "sincerely", "dear",
                  "shall", "in addition", "subsequently", "regarding", "with respect to"),
    "humour": ("haha", "hahaha", "lol", "lmao", "rofl", "joke", "jokes", "joking", "kidding", "funny",
               "hilarious", "laugh", "laughing", "pun", "puns", "just kidding", "humor", "humour"),
    "reference to earlier turns": ("earlier", "previously", "as mentioned", "you mentioned", "i mentioned",
                                   "as i said", "as i mentioned", "you said", "you asked", "you told me",
                                   "we discussed", "as we discussed", "your previous", "your last",
                                   "mentioned"),
    "callbacks": ("remember", "recall", "again", "as before", "like before", "going back to", "back to your",
                  "coming back to", "callback", "like last time", "last time"),
    "first person": ("i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll", "we", "us", "our",
                     "ours", "ourselves", "we're", "we've"),
    "second person": ("you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'll",
                      "you'd"),
}
_FORMALITY_INFORMAL = ("yeah", "yep", "nope", "hey", "gonna", "wanna", "gotta", "kinda", "sorta", "ok", "okay",
                       "cool", "stuff", "guys", "dude", "btw", "omg", "y'all", "ain't", "ya", "yup", "nah")
_EMOTICONS = re.compile(r"(?:[:;]-?[)dp]|😂|🤣|😄|😆|😉|😜)")
_LIST_LINE = re.compile(r"^\s*(?:[-*•]\s+|\d{1,2}[.)]\s+|#{1,6}\s+|\|.*\|\s*$)", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_CODE_FENCE = re.compile(r"```")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_CODE_LINE = re.compile(r"^\s*(?:def |class |import |from \S+ import|return\b|#include|function\b|var |let |const |"
                        r"for \(|if \(|public |private |SELECT |<\w+[^>]*>).*$|[;{}]\s*$", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*%?")
_LINK = re.compile(r"https?://\S+|www\.\S+\.\S+")


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_WORD_CHAR = re.compile(r"\w")
_COUNTED_WORD = re.compile(r"\S*\w\S*")  # a whitespace-separated token with a word character
_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*")


def reading_grade(text: str) -> float:
    """Coleman–Liau index: US school grade from letters and sentences per 100 words.

    0.0588 L − 0.296 S − 15.8 (Coleman & Liau 1975), counted as ``textstat`` counts them:
    words are whitespace-separated tokens with a letter or digit, letters are their word
    characters, and a sentence is a run ending in . ! or ? with more than two words (at least
    one). Computed here because importing ``textstat`` pulls in NLTK and scipy.stats (1–2 s,
    more than the rest of the protocol on the demo data); tests check it against textstat.
    """
    text = str(text)
    n_words = len(_COUNTED_WORD.findall(text))
    if not n_words:
        return 0.0
    letters = len(_WORD_CHAR.findall(text))  # tokens without a word character add none
    sentences = max(1, sum(1 for s in _SENTENCE.findall(text) if len(s.split()) > 2))
    per_100 = 100.0 / n_words
    return 0.0588 * letters * per_100 - 0.296 * sentences * per_100 - 15.8


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes kept inside words; curly ones made straight)."""
    return _WORD.findall(str(text).lower().replace("\u2019", "'"))


class _Lexicons:
    """Counts every lexicon's phrases in one pass over a text's tokens.

    Per lexicon, matches do not overlap and the longest phrase starting at a word wins
    ("i'm unable" counts once, not also as "unable"), as a regular-expression scan would;
    one pass over the tokens instead of a scan per lexicon.
    """

    def __init__(self, lexicons: dict[str, Sequence[str]]) -> None:
        self.names = list(lexicons)
        self._by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for k, name in enumerate(self.names):
            for phrase in lexicons[name]:
                words = tuple(tokenize(phrase))
                self._by_first.setdefault(words[0], []).append((words, k))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda c: -len(c[0]))

    def count(self, tokens: list[str]) -> list[int]:
        counts = [0] * len(self.names)
        free = [0] * len(self.names)  # first token each lexicon may match from
        by_first = self._by_first
        for i, token in enumerate(tokens):
            candidates = by_first.get(token)
            if candidates is None:
                continue
            for words, k in candidates:
                if free[k] <= i and (len(words) == 1 or tuple(tokens[i: i + len(words)]) == words):
                    counts[k] += 1
                    free[k] = i + len(words)
        return counts


@dataclass(frozen=True)
class TextProperty:
    """One measurable property: its name, what is measured, and words for its two directions."""

    name: str
    definition: str
    more: str   # a response with more of it is ... ("longer", "more apologetic")
    less: str


_PROPERTIES = (
    TextProperty("length", "words in the response", "longer", "shorter"),
    TextProperty("emotional tone", "share of emotionally charged wording (VADER positive + negative share, 0–1)",
                 "more emotional", "more neutral"),
    TextProperty("sentiment", "VADER compound sentiment (−1 negative … +1 positive)", "more positive",
                 "more negative"),
    TextProperty("formality", "formal markers minus informal words, per 100 words", "more formal", "more casual"),
    TextProperty("knowledge level", "reading grade (Coleman–Liau index: US school grade)", "harder to read",
                 "easier to read"),
    TextProperty("reference to earlier turns", "mentions of the earlier conversation, per 100 words",
                 "refers back more", "refers back less"),
    TextProperty("humour", "humour markers (joke, funny, haha, emoticons …), per 100 words", "more humorous",
                 "less humorous"),
    TextProperty("callbacks", "recall markers (remember, again, last time …), per 100 words",
                 "more callbacks", "fewer callbacks"),
    TextProperty("questions", "question marks", "asks more questions", "asks fewer questions"),
    TextProperty("exclamations", "exclamation marks", "more exclamations", "fewer exclamations"),
    TextProperty("lists and markdown", "list items, headings, table rows and bold spans", "more structured",
                 "less structured"),
    TextProperty("code", "code fences, inline code and code-like lines", "more code", "less code"),
    TextProperty("numbers", "numbers written in digits", "more numbers", "fewer numbers"),
    TextProperty("links", "URLs", "more links", "fewer links"),
    TextProperty("first person", "I/me/my/we …, per 100 words", "more first person", "less first person"),
    TextProperty("second person", "you/your …, per 100 words", "more second person", "less second person"),
    TextProperty("hedging", "hedges (perhaps, might, I think …), per 100 words", "more hedging", "less hedging"),
    TextProperty("apology", "apologies (sorry, apologize …), per 100 words", "more apologetic",
                 "less apologetic"),
    TextProperty("refusal", "refusals (I can't, unable to, decline …), per 100 words", "more refusing",
                 "less refusing"),
    TextProperty("politeness", "polite markers (please, thank you …), per 100 words", "more polite",
                 "less polite"),
)


class PropertyBank:
    """Measures :attr:`properties` for texts (each distinct text once).

    Parameters
    ----------
    names : sequence of str, optional
        A subset of the properties, in this order; all by default (see :attr:`available`).
    """

    available: tuple[TextProperty, ...] = _PROPERTIES

    def __init__(self, names: Sequence[str] | None = None) -> None:
        by_name = {p.name: p for p in self.available}
        if names is None:
            names = list(by_name)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown properties {unknown}; available: {list(by_name)}")
        self.properties = tuple(by_name[n] for n in names)
        self._lexicons = _Lexicons({**LEXICONS, "informal": _FORMALITY_INFORMAL})
        self._lexicon_index = {name: k for k, name in enumerate(self._lexicons.names)}
        self._analyzer = None
        self._uses_vader = bool({"emotional tone", "sentiment"} & set(names))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.properties]

    def get(self, name: str) -> TextProperty:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(name)

    def measure(self, texts: Sequence[str]) -> np.ndarray:
        """Property values, float64 (n_texts, n_properties); a repeated text is measured once."""
        texts = list(texts)
        unique: dict[str, int] = {}
        index = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), np.int64, len(texts))
        values = np.array([self._measure_one(t) for t in unique], np.float64).reshape(len(unique), -1)
        return values[index]

    def differences(self, response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        """Property of A minus property of B per pair, float64 (n_pairs, n_properties)."""
        if len(response_a) != len(response_b):
            raise ValueError(f"response_a ({len(response_a)}) and response_b ({len(response_b)}) differ in length")
        both = self.measure(list(response_a) + list(response_b))
        return both[: len(response_a)] - both[len(response_a):]

    # -- one text -------------------------------------------------------------------------
    def _measure_one(self, text: str) -> list[float]:
        raw = str(text)
        lower = raw.lower().replace("\u2019", "'")
        n_words = len(raw.split())
        hits = self._lexicons.count(_WORD.findall(lower))
        lex = self._lexicon_index
        per_100 = 100.0 / max(n_words, _RATE_FLOOR_WORDS)
        vader = self._vader(raw) if self._uses_vader else None
        out = []
        for prop in self.properties:
            name = prop.name
            if name == "length":
                value = float(n_words)
            elif name == "emotional tone":
                value = vader["pos"] + vader["neg"]
            elif name == "sentiment":
                value = vader["compound"]
            elif name == "knowledge level":
                value = self._grade(raw, n_words)
            elif name == "formality":
                value = (hits[lex[name]] - hits[lex["informal"]]) * per_100
            elif name == "humour":
                value = (hits[lex[name]] + len(_EMOTICONS.findall(lower))) * per_100
            elif name in LEXICONS:
                value = hits[lex[name]] * per_100
            elif name == "questions":
                value = float(raw.count("?"))
            elif name == "exclamations":
                value = float(raw.count("!"))
            elif name == "lists and markdown":
                value = float(len(_LIST_LINE.findall(raw)) + len(_BOLD.findall(raw)))
            elif name == "code":
                value = float(len(_CODE_FENCE.findall(raw)) // 2 + len(_INLINE_CODE.findall(raw))
                              + len(_CODE_LINE.findall(raw)))
            elif name == "numbers":
                value = float(len(_NUMBER.findall(raw)))
            elif name == "links":
                value = float(len(_LINK.findall(raw)))
            else:  # pragma: no cover - every available property is handled above
                raise AssertionError(name)
            out.append(value)
        return out

    def _vader(self, text: str) -> dict:
        if self._analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._analyzer = SentimentIntensityAnalyzer()
        return self._analyzer.polarity_scores(text)

    @staticmethod
    def _grade(text: str, n_words: int) -> float:
        return reading_grade(text)

    def __repr__(self) -> str:
        return f"<likeable.PropertyBank({len(self.properties)} properties)>"


# --------------------------------------------------------------------------------------
# Features against properties
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Association:
    """A feature's Pearson correlation with one property's A − B difference, with a 95% CI.

    ``r > 0``: the feature is positive where A has more of the property (so B has more where
    it is negative). The interval is Fisher's z interval over ``n`` pairs.
    """

    name: str
    r: float
    low: float
    high: float
    n: int
    words: str = ""  # the property's direction in words for the side the feature points to


@dataclass(frozen=True)
class Associations:
    """Correlations of every feature with every property difference (features x properties)."""

    names: list
    r: np.ndarray
    n: int
    bank: PropertyBank

    def top(self, feature: int, n: int = 3, min_abs_r: float = 0.1) -> list[Association]:
        """The ``n`` strongest associations of ``feature`` with ``|r| >= min_abs_r``, strongest first."""
        row = self.r[feature]
        finite = np.flatnonzero(np.isfinite(row) & (np.abs(row) >= min_abs_r))
        order = finite[np.argsort(-np.abs(row[finite]), kind="stable")][:n]
        return [self.get(feature, self.names[k]) for k in order]

    def get(self, feature: int, name: str) -> Association:
        r = float(self.r[feature, self.names.index(name)])
        low, high = fisher_interval(r, self.n)
        prop = self.bank.get(name)
        return Association(name=name, r=r, low=low, high=high, n=self.n, words=prop.more if r >= 0 else prop.less)


def fisher_interval(r: float, n: int, z_crit: float = 1.959964) -> tuple[float, float]:
    """95% interval for a Pearson correlation by Fisher's z transform (NaN when n <= 3)."""
    if not np.isfinite(r) or n <= 3:
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    half = z_crit / np.sqrt(n - 3)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def associations(activations, differences: np.ndarray, bank: PropertyBank) -> Associations:
    """Pearson r of every feature's activation with every property difference, over all pairs.

    Parameters
    ----------
    activations : SparseCodes, scipy.sparse matrix or ndarray, shape (n_pairs, n_features)
    differences : ndarray, shape (n_pairs, n_properties)
        From :meth:`PropertyBank.differences` (same pair order).
    bank : PropertyBank
        The bank that measured ``differences`` (names its columns).
    """
    import scipy.sparse as sp

    if hasattr(activations, "to_scipy"):
        activations = activations.to_scipy()
    d = np.asarray(differences, np.float64)
    if d.ndim != 2 or d.shape[1] != len(bank.names):
        raise ValueError(f"differences must have shape (n_pairs, {len(bank.names)}), got {d.shape}")
    n = d.shape[0]
    if activations.shape[0] != n:
        raise ValueError(f"activations have {activations.shape[0]} rows but differences have {n}")
    # Sparse-friendly centred products: X'D - n * mean_x * mean_d, never densifying X.
    x = sp.csr_matrix(activations, dtype=np.float64) if sp.issparse(activations) else np.asarray(activations, np.float64)
    mean_x = np.asarray(x.mean(axis=0)).ravel()
    sq_x = np.asarray(x.multiply(x).mean(axis=0) if sp.issparse(x) else (x * x).mean(axis=0)).ravel()
    mean_d = d.mean(axis=0)
    cross = np.asarray(x.T @ d) / max(n, 1) - np.outer(mean_x, mean_d)
    sd_x = np.sqrt(np.maximum(sq_x - mean_x ** 2, 0.0))
    sd_d = d.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cross / np.outer(sd_x, sd_d)
    r[~np.isfinite(r)] = np.nan
    return Associations(names=bank.names, r=np.clip(r, -1.0, 1.0), n=n, bank=bank)
