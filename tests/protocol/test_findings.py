"""The report's words: ordering, findings sentences, and the statistics' fields where present."""
from likeable.protocol import findings as F
from likeable.protocol.metrics import Estimate
from likeable.protocol.results import (EncoderHealth, FeatureResult, FeatureVariance, FewShotCurve, ModelScore,
                                       Personalization, ProtocolResult)


def _result(features, personalization=None):
    auc = Estimate(0.7, 0.65, 0.75, 500)
    return ProtocolResult(encoder=EncoderHealth(k=4, mean_active=4.1, normalized_mse=0.1),
                          prediction={"length": ModelScore(auc=Estimate(0.55, 0.5, 0.6, 500)),
                                      "dense": ModelScore(auc=auc), "all_features": ModelScore(auc=auc)},
                          fraction_of_signal={"length": 0.25, "dense": 1.0, "all_features": 1.0},
                          features=features, personalization=personalization)


def test_feature_order_significant_first_then_effect_size_silent_last():
    feats = [FeatureResult(feature=0, coefficient=3.0, p_value=0.2, share_active=0.1),
             FeatureResult(feature=1, coefficient=-0.5, p_value=0.001, share_active=0.1),
             FeatureResult(feature=2, coefficient=1.5, p_value=0.01, share_active=0.1),
             FeatureResult(feature=3, coefficient=9.0, p_value=0.0, share_active=0.0)]
    assert [f.feature for f in F.feature_order(feats)] == [2, 1, 0, 3]
    # where a q-value exists it decides significance, not p
    corrected = [FeatureResult(feature=0, coefficient=1.0, p_value=0.01, q_value=0.2, share_active=0.1),
                 FeatureResult(feature=1, coefficient=0.5, p_value=0.02, q_value=0.04, share_active=0.1)]
    assert [f.feature for f in F.feature_order(corrected)] == [1, 0]
    lines = F.findings(_result(corrected))
    assert any("1 of 2 features have a significant" in s and "q < 0.05 after correcting" in s for s in lines)
    assert any(s.startswith("Feature 1 (effect +0.500") and "q = 0.040" in s for s in lines)


def test_findings_say_plainly_when_nothing_is_there():
    lines = F.findings(_result([FeatureResult(feature=0, coefficient=0.1, p_value=0.5, share_active=0.3)]))
    assert any(s.startswith("No feature has a significant length-controlled effect") for s in lines)
    assert any("100% of the dense probe's signal" in s for s in lines)


def test_personalization_sentence_uses_the_gain_interval_when_there():
    base = dict(population_auc=0.60, per_user_auc=0.62, shrunk_auc=0.61, drift_auc=0.6,
                few_shot=FewShotCurve(shots=[5]), n_users=16, gain_over_population=0.01)
    plain = F.findings(_result([], Personalization(**base)))
    assert any("gain +0.010 (no interval computed)" in s for s in plain)
    none = Personalization(**base, gain=Estimate(0.01, -0.03, 0.05, 16), gain_significant=False)
    said = [s for s in F.findings(_result([], none)) if s.startswith("Personalization")][0]
    assert "over 16 users" in said and "gain +0.010 [-0.030, +0.050] — no significant per-user gain" in said


def test_field_treats_nan_as_absent():
    assert F.field(FeatureResult(feature=1, p_value=float("nan")), "p_value", 7) == 7
    assert F.field(FeatureResult(feature=1), "q_value") is None and F.field(None, "x", 3) == 3


def test_varying_features_in_words_clearest_first():
    base = dict(population_auc=0.60, per_user_auc=0.62, shrunk_auc=0.61, drift_auc=0.6,
                few_shot=FewShotCurve(shots=[5]), n_users=16)
    tested = [FeatureVariance(feature=0, variance=1.0, q_value=0.04, significant=True),
              FeatureVariance(feature=1, variance=4.0, q_value=0.01, significant=True),
              FeatureVariance(feature=2, variance=0.0, q_value=0.9, significant=False),
              FeatureVariance(feature=None, name="length", variance=0.1, q_value=0.01, significant=True)]
    feats = [FeatureResult(feature=i, description=f"thing {i}") for i in range(3)]
    result = _result(feats, Personalization(**base, feature_variance=tested))
    said = F.varying_sentence(result)
    assert said.startswith("People differ on 3 of 4 tested (the 3 features and length; permutation test")
    assert said.endswith("most clearly feature 1 (thing 1), length and feature 0 (thing 0).")
    none = _result(feats, Personalization(**base, gain_significant=False, feature_variance=tested[2:3]))
    assert F.varying_sentence(none) == ("People do not differ significantly on any of 1 tested (the 1 feature; "
                                        "permutation test, q < 0.05): one model fits everyone; no significant "
                                        "per-user gain either.")
    assert F.varying_sentence(_result(feats, Personalization(**base))) is None  # not tested: nothing said
