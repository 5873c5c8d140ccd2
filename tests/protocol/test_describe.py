import numpy as np
import pytest

from likeable.protocol.describe import (CallableDescriber, ContrastivePhrases, Description, DistinctiveWords,
                                        OfflineDescriber, TextCorpus, _parse_choice, _parse_description, fidelity,
                                        log_odds_z, tokenize)
from likeable.protocol.properties import PropertyBank, associations


def _reference_z(y_i, y_j, bg, strength):
    """Monroe et al. (2008), eq. 16 and 20, one word at a time in float64."""
    n_i, n_j = sum(y_i), sum(y_j)
    a0 = strength * (n_i + n_j)
    out = []
    for yi, yj, b in zip(y_i, y_j, bg):
        a = a0 * b / sum(bg)
        d = np.log((yi + a) / (n_i + a0 - yi - a)) - np.log((yj + a) / (n_j + a0 - yj - a))
        out.append(d / np.sqrt(1 / (yi + a) + 1 / (yj + a)))
    return np.array(out)


@pytest.mark.parametrize("n_words", [1, 2, 17, 300])
def test_log_odds_matches_reference(rng, n_words):
    y_i = rng.integers(0, 30, n_words).astype(float)
    y_j = rng.integers(0, 30, n_words).astype(float)
    bg = rng.integers(1, 100, n_words).astype(float)
    y_i[0] += 1  # at least one count
    got = log_odds_z(y_i, y_j, bg, 0.7)
    if n_words == 1:  # one phrase has no odds against the others: defined as 0
        assert got.tolist() == [0.0]
        return
    np.testing.assert_allclose(got, _reference_z(y_i, y_j, bg, 0.7), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_odds_z(y_j, y_i, bg, 0.7), -got, atol=1e-12)
    assert log_odds_z(np.zeros(0), np.zeros(0), np.zeros(0)).size == 0
    with pytest.raises(ValueError, match="shape"):
        log_odds_z(y_i, y_j[:-1], bg)


def test_contrastive_phrases_find_planted_phrases_on_both_sides(rng):
    filler = "the plan is here and we can talk about it today with some more detail".split()

    def text(extra):
        return " ".join(list(rng.choice(filler, 12)) + extra)

    more = [text(["i'm", "sorry", "but", "cannot", "help"]) for _ in range(80)]
    less = [text(["here", "are", "the", "steps"]) for _ in range(80)]
    found = ContrastivePhrases(n_phrases=2).phrases(more, less)
    plus = [p.text for p in found if p.z > 0]
    minus = [p.text for p in found if p.z < 0]
    assert len(plus) == 2 and all("sorry" in p or "cannot" in p or "help" in p for p in plus)
    assert minus and "steps" in minus[0]
    # overlapping phrases are pruned: never both 'sorry' and "i'm sorry" on one side
    assert not any(a != b and f" {a} " in f" {b} " for a in plus for b in plus)
    described = ContrastivePhrases()(more, less)
    assert described.startswith('more: "') and 'less: "' in described
    # the same texts on both sides: nothing passes the bound
    assert ContrastivePhrases()(more, more) == "(no distinctive phrases)"
    assert ContrastivePhrases()([], []) == "(no distinctive phrases)"


def test_noise_passes_no_phrase(rng):
    vocab = [f"w{i}" for i in range(300)]
    more = [" ".join(rng.choice(vocab, 30)) for _ in range(200)]
    less = [" ".join(rng.choice(vocab, 30)) for _ in range(200)]
    assert ContrastivePhrases().phrases(more, less) == []


def test_distinctive_words_finds_planted_words(rng):
    filler = ["the answer is here", "some text about it", "a response to you"]
    more = [f"{rng.choice(filler)} joke funny laugh" for _ in range(10)]
    less = [str(rng.choice(filler)) for _ in range(10)]
    words = DistinctiveWords(n_words=3).top_words(more, less)
    assert set(words) == {"joke", "funny", "laugh"}
    assert DistinctiveWords()([], []) == "(no distinctive words)"
    assert "joke" not in DistinctiveWords().top_words(less, more)


def test_tokenize_keeps_contractions():
    assert tokenize("I\u2019m SORRY, I can't!") == ["i'm", "sorry", "i", "can't"]


def test_corpus_dedups_and_orients():
    a = ["x one", "y two", "x one", "z three", "w four"]
    b = ["y two", "x one", "y two", "q five", "v six"]
    corpus = TextCorpus(["p"] * 5, a, b)
    assert len(corpus.texts) == 6 and len(corpus) == 5
    # rows 0, 1, 2 are one pair of texts (in either order)
    np.testing.assert_array_equal(corpus.distinct_rows(np.arange(5)), [0, 3, 4])
    act = np.array([0.5, -0.9, 0.4, -0.2, 0.0])
    ex = corpus.examples(7, act, np.arange(5), n=10)
    np.testing.assert_array_equal(ex.rows, [1, 3])  # row 1 stands for rows 0-2; row 4 is silent
    assert ex.carrying == ["x one", "q five"] and ex.other == ["y two", "z three"]
    assert corpus.examples(7, act, np.arange(5), n=10, sign=1).rows.tolist() == [0]
    assert corpus.examples(7, act, np.arange(5), n=1, sign=-1).rows.tolist() == [1]
    assert corpus.examples(7, act, np.arange(5), n=5, n_contrast=3).contrast_rows.tolist() == [4]
    with pytest.raises(ValueError, match="one entry per pair"):
        TextCorpus(["p"], a, b)


def _oriented_data(rng, n=400):
    """Pairs whose feature fires positive when A refuses and negative when B refuses."""
    filler = "the plan is here and we can talk about it today with some more detail".split()
    refusal = "I'm sorry, but I cannot help with that request."

    def plain(extra=0):
        return " ".join(rng.choice(filler, 15 + extra))

    a, b, act = [], [], []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            a.append(refusal + " " + plain()), b.append(plain(9)), act.append(1.0 + rng.random())
        elif kind == 1:
            a.append(plain(9)), b.append(refusal + " " + plain()), act.append(-1.0 - rng.random())
        else:
            a.append(plain()), b.append(plain()), act.append(0.0)
    return TextCorpus(["prompt"] * n, a, b), np.array(act)


def test_offline_describer_names_side_phrases_and_properties(rng):
    corpus, act = _oriented_data(rng)
    bank = PropertyBank()
    a = [corpus.texts[i] for i in corpus.id_a]
    b = [corpus.texts[i] for i in corpus.id_b]
    diffs = bank.differences(a, b)
    train, held = np.arange(0, 300), np.arange(300, 400)
    top = associations(act[train, None], diffs[train], bank).top(0, 3)
    assert {"apology", "refusal"} & {t.name for t in top}
    describer = OfflineDescriber()
    d = describer.describe(corpus.examples(0, act, train, 500), top, bank)
    assert d.side == "A" and d.source == "offline" and d.n_pairs == 200
    assert any("sorry" in p.text or "cannot" in p.text for p in d.phrases if p.z > 0)
    assert d.text.startswith('A-side: more "') and "(r = +" in d.text
    judged = describer.annotate(d, corpus, held, diffs, bank.names)
    assert fidelity(act[held], judged) > 0.9
    # the same feature with its sign flipped is described from B's side, just as faithfully
    flipped = describer.describe(corpus.examples(0, -act, train, 500),
                                 associations(-act[train, None], diffs[train], bank).top(0, 3), bank)
    assert flipped.side == "B" and flipped.text.startswith('B-side: more "') and "(r = -" in flipped.text
    assert fidelity(-act[held], describer.annotate(flipped, corpus, held, diffs, bank.names)) > 0.9
    # nothing to say about a silent feature
    silent = describer.describe(corpus.examples(0, np.zeros(400), train, 500), [], bank)
    assert silent.text == "no phrase or property stands out" and silent.n_pairs == 0


def test_callable_describer_adapter(rng):
    corpus, act = _oriented_data(rng, 60)
    seen = []

    def describer(more, less):
        seen.append((list(more), list(less)))
        return "refusal"

    def annotator(description, a, b):
        return float(("sorry" in a) - ("sorry" in b))

    wrapped = CallableDescriber(describer, annotator)
    d = wrapped.describe(corpus.examples(0, act, np.arange(60), 5))
    assert d == Description(text="refusal", content="refusal", source="callable:describer", n_pairs=5)
    assert all("sorry" in m for m in seen[0][0]) and not any("sorry" in o for o in seen[0][1])
    assert fidelity(act, wrapped.annotate(d, corpus, np.arange(60))) > 0.9
    assert CallableDescriber(describer).annotate(d, corpus, np.arange(3)) is None


def test_reply_parsing():
    assert _parse_description('{"description": "refuses  the request"}') == "refuses the request"
    assert _parse_description('Sure! {"description": "uses lists"} done') == "uses lists"
    assert _parse_description('"Loudness"\nextra') == "Loudness"
    assert _parse_description("  ") == "(no description)"
    # a reply nested too deep is refused before parsing and read as plain text
    deep = '{"description": ' + "[" * 5000 + "]" * 5000 + '}\nplain words'
    assert _parse_description(deep) == deep.splitlines()[0][:200]
    for answer, want in [("A", 1), ("b.", -1), ("Tie", 0), ("Response A", 1), ('{"answer": "B"}', -1),
                         ("I pick A.", 1), ("neither", 0)]:
        assert _parse_choice(answer) == want, answer
    assert np.isnan(_parse_choice("hmm"))


def test_fidelity():
    a = np.array([2.0, 1.0, -1.0, -2.0, 0.0])
    assert fidelity(a, [1, 1, -1, -1, 0]) > 0.9
    assert fidelity(a, [-1, -1, 1, 1, 0]) < -0.9
    assert np.isnan(fidelity(a, [1, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="shape"):
        fidelity(a, [1, 2])
