import numpy as np
import pytest
import scipy.sparse as sp

from likeable.protocol.datasets import SESSION_DIMENSIONS
from likeable.protocol.properties import LEXICONS, PropertyBank, associations, fisher_interval


@pytest.fixture(scope="module")
def bank():
    return PropertyBank()


def _value(bank, text, name):
    return bank.measure([text])[0, bank.names.index(name)]


def test_session_dimensions_are_properties(bank):
    assert set(SESSION_DIMENSIONS) <= set(bank.names)
    assert all(p.definition and p.more and p.less for p in bank.properties)


@pytest.mark.parametrize("name, more, less", [
    ("length", "one two three four five six", "one two"),
    ("apology", "I'm sorry, I apologize for that.", "Here is the answer."),
    ("refusal", "I can't help with that, and I won't.", "Sure, here is how to do it."),
    ("politeness", "Please let me know, and thank you!", "Do it now."),
    ("hedging", "Perhaps it might work, I think.", "It works."),
    ("formality", "Furthermore, I hereby confirm. Regards.", "yeah gonna do it, ok dude"),
    ("humour", "haha that's funny :)", "The meeting is at noon."),
    ("reference to earlier turns", "As you mentioned earlier, the plan changed.", "The plan changed."),
    ("callbacks", "Remember last time? Again the same.", "A new topic."),
    ("first person", "I think my view is ours.", "The sky is blue."),
    ("second person", "You and your friend.", "The sky is blue."),
    ("questions", "Why? How? What?", "Because."),
    ("exclamations", "Wow! Great!", "Fine."),
    ("lists and markdown", "Steps:\n1. open\n2. close\n- note\n**bold**", "Open then close."),
    ("code", "Use `x = 1`:\n```\ndef f():\n    return 1\n```", "Use a variable."),
    ("numbers", "It costs 12.50 for 3 items, 20% off.", "It is cheap."),
    ("links", "See https://example.org and www.example.com/page", "See the manual."),
    ("knowledge level", "Thermodynamic irreversibility characterizes macroscopic phenomena.", "The cat sat on a mat."),
    ("emotional tone", "I love this wonderful, amazing day!", "The table is in the room."),
    ("sentiment", "This is wonderful and great.", "This is terrible and awful."),
])
def test_each_property_moves_the_right_way(bank, name, more, less):
    assert _value(bank, more, name) > _value(bank, less, name)


def test_lexicon_rates_and_apostrophes(bank):
    # Curly apostrophes count; a short reply is rated per 100 words with a floor of 20 words.
    assert _value(bank, "I can\u2019t.", "refusal") == pytest.approx(5.0)
    assert _value(bank, "sorry " * 40, "apology") == pytest.approx(100.0)
    assert _value(bank, "", "length") == 0 and _value(bank, "", "knowledge level") == 0
    for name, words in LEXICONS.items():
        assert len(set(words)) == len(words), name


def test_measure_and_differences(bank):
    texts = ["Sorry!", "Thanks, friend.", "Sorry!"]
    values = bank.measure(texts)
    assert values.shape == (3, len(bank.names))
    np.testing.assert_array_equal(values[0], values[2])
    diff = bank.differences(texts[:2], texts[1:])
    np.testing.assert_allclose(diff, values[:2] - values[1:])
    with pytest.raises(ValueError, match="differ in length"):
        bank.differences(["a"], [])
    sub = PropertyBank(["length", "questions"])
    assert sub.names == ["length", "questions"] and sub.measure(["a b?"]).tolist() == [[2.0, 1.0]]
    with pytest.raises(ValueError, match="unknown properties"):
        PropertyBank(["wit"])


@pytest.mark.parametrize("n_pairs, n_features", [(1, 3), (2, 1), (57, 7), (300, 33)])
def test_associations_match_numpy(rng, n_pairs, n_features):
    small = PropertyBank(["length", "questions", "exclamations"])
    dense = rng.standard_normal((n_pairs, n_features)) * (rng.random((n_pairs, n_features)) < 0.3)
    diffs = rng.standard_normal((n_pairs, 3))
    if n_pairs > 2:
        diffs[:, 2] = 1.0  # a constant property: no correlation defined
    got = associations(sp.csr_matrix(dense), diffs, small)
    np.testing.assert_allclose(associations(dense, diffs, small).r, got.r, atol=1e-12, equal_nan=True)
    for j in range(n_features):
        for k in range(3):
            x, d = dense[:, j], diffs[:, k]
            want = np.corrcoef(x, d)[0, 1] if x.std() > 0 and d.std() > 0 else np.nan
            np.testing.assert_allclose(got.r[j, k], want, atol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="rows"):
        associations(dense[:0], diffs, small)
    with pytest.raises(ValueError, match="shape"):
        associations(dense, diffs[:, :2], small)


def test_association_top_and_interval(rng):
    small = PropertyBank(["length", "questions", "exclamations"])
    x = rng.standard_normal(400)
    diffs = np.column_stack([x + 0.3 * rng.standard_normal(400), -x + 2 * rng.standard_normal(400),
                             rng.standard_normal(400)])
    found = associations(x[:, None], diffs, small).top(0, n=3, min_abs_r=0.2)
    assert [a.name for a in found] == ["length", "questions"]
    assert found[0].r > 0.9 and found[1].r < -0.2 and found[0].n == 400
    assert all(a.low < a.r < a.high for a in found)
    low, high = fisher_interval(0.5, 30)
    narrow = fisher_interval(0.5, 3000)
    assert low < narrow[0] < 0.5 < narrow[1] < high
    assert np.isnan(fisher_interval(0.5, 3)[0])


def test_reading_grade_agrees_with_textstat():
    """Coleman–Liau as textstat counts it; textstat rounds the letter weight to 0.058 (we use 0.0588)."""
    textstat = pytest.importorskip("textstat")
    from likeable.protocol.properties import reading_grade

    texts = ["The cat sat on the mat. It was a sunny day!", "Thermodynamic irreversibility characterizes "
             "macroscopic phenomena. Entropy increases.", "I'm sorry, I can't help with that.",
             "Visit https://example.org/page?x=1 for 12.5% off, then reply.", "well_known snake_case words",
             "Short.", "One two three? Four five six! Seven eight nine.", "a " * 200]
    ours = np.array([reading_grade(t) for t in texts])
    letters_per_100 = np.array([100 * textstat.letter_count(t) / textstat.lexicon_count(t) for t in texts])
    theirs = np.array([textstat.coleman_liau_index(t) for t in texts]) + 0.0008 * letters_per_100
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    assert reading_grade("") == 0.0 and reading_grade("... !!") == 0.0
