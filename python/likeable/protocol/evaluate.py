"""The evaluation protocol: what is in a preference dataset and how well it personalizes.

Pure orchestration: numbers come from the core (encoder, index, preference models) or from
numpy/scipy (metrics). Steps follow the README's protocol: split by connected components,
embed, train the sparse encoder on Δ = e(A) − e(B), check its health, predict held-out
pairs, describe each feature, personalize per user, and simulate multi-session use.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import metrics
from .datasets import SESSION_DIMENSIONS, PreferenceDataset, synthetic_candidates
from .describe import DistinctiveWords, fidelity
from .report import Report
from .simulate import FixedPolicy, simulate_sessions, simulated_user_weights
from ..sparse import SparseCodes
from .split import group_components, split_by_components

__all__ = ["EvalConfig", "evaluate"]


@dataclass
class EvalConfig:
    """Settings of :func:`evaluate` (defaults: the protocol as documented).

    Encoder: ``n_features`` (M), ``k``, ``kind``, ``signed``, ``matryoshka``, ``epochs``,
    ``batch_size``, ``lr``, ``patience``. Split: ``fractions`` (train, validation, test).
    Preference models: ``l2``, ``shrinkage_grid`` (the shrinkage is chosen on the validation
    part), ``n_select`` (sizes of the selected-feature models). Personalization:
    ``few_shot``, ``min_user_pairs`` (users with fewer held-out pairs of both labels are
    left out of per-user AUC), ``personalize_length`` (add the standardised length
    difference as one more feature column of the personalization models, so per-user
    weights can learn how long each person likes answers). Features: ``n_top_pairs``, ``n_described``, ``describer``,
    ``annotator``, ``n_fidelity_pairs``. Sessions: ``sessions`` (False to skip),
    ``n_sessions``, ``n_turns``, ``n_candidates``, ``n_sim_users``. Reporting: ``n_boot``.
    """

    n_features: int = 32
    k: int = 4
    kind: str = "batchtopk"
    signed: bool = True
    matryoshka: tuple | None = (8, 32)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-2
    patience: int = 5
    fractions: tuple = (0.7, 0.1, 0.2)
    l2: float = 1.0
    shrinkage_grid: tuple = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    n_select: tuple = (5, 10)
    few_shot: tuple = (5, 10, 25, 50, 100)
    min_user_pairs: int = 10
    personalize_length: bool = True
    n_top_pairs: int = 10
    n_described: int | None = None
    describer: Callable | None = None
    annotator: Callable | None = None
    n_fidelity_pairs: int = 20
    sessions: bool = True
    n_sessions: int = 6
    n_turns: int = 8
    n_candidates: int = 8
    n_sim_users: int = 20
    n_boot: int = 1000
    seed: int = 0
    progress: bool = False
    threads: int | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("describer", "annotator"):
            out[key] = None if out[key] is None else repr(out[key])
        return out


def evaluate(dataset: PreferenceDataset, embedder: Any = None, config: EvalConfig | dict | None = None) -> Report:
    """Run the protocol on ``dataset`` and return a :class:`Report`.

    Parameters
    ----------
    dataset : PreferenceDataset
        From :func:`likeable.datasets.load` or :func:`likeable.datasets.synthetic`.
    embedder : embedder, optional
        Anything :func:`likeable.as_embedder` takes (:class:`likeable.OnnxEmbedder`,
        :class:`likeable.OpenAIEmbedder`, a sentence-transformers model, a callable
        ``texts -> (n, dim)``); needed unless the dataset carries embeddings.
    config : EvalConfig or dict, optional

    Returns
    -------
    Report
    """
    if not isinstance(dataset, PreferenceDataset):
        raise TypeError(f"dataset must be a likeable.PreferenceDataset, got {type(dataset).__name__}")
    if config is None:
        config = EvalConfig()
    elif isinstance(config, dict):
        unknown = set(config) - set(EvalConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        config = EvalConfig(**config)
    if len(dataset) < 20:
        raise ValueError(f"the protocol needs at least 20 pairs, got {len(dataset)}")
    return _Protocol(dataset, embedder, config).run()


# --------------------------------------------------------------------------------------
class _Protocol:
    def __init__(self, ds: PreferenceDataset, embedder, cfg: EvalConfig) -> None:
        self.ds, self.embedder, self.cfg = ds, embedder, cfg
        self.timings: dict[str, float] = {}
        self.results: dict[str, Any] = {}

    def _timed(self, name: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.timings[name] = time.perf_counter() - start
        return out

    def run(self) -> Report:
        start = time.perf_counter()
        cfg, ds = self.cfg, self.ds
        self._timed("split", self.split)
        self._timed("embed", self.embed)
        self._timed("encoder", self.train_encoder)
        self._timed("prediction", self.prediction)
        self._timed("features", self.features)
        if ds.has_users:
            self._timed("personalization", self.personalization)
        if cfg.sessions and "directions" in ds.truth and len(ds.truth["attribute_names"]) >= len(SESSION_DIMENSIONS):
            self._timed("sessions", self.sessions)
        self.timings["total"] = time.perf_counter() - start
        r = self.results
        r["dataset"] = {"source": ds.source, "n_pairs": len(ds), "n_ties": int((ds.label == 0.5).sum()),
                        "n_users": int(len(np.unique(ds.user_id))) if ds.user_id is not None else 0,
                        "n_train": int(self.train.size), "n_validation": int(self.val.size),
                        "n_test": int(self.test.size), "n_components": int(self.n_components)}
        r["config"] = cfg.to_dict()
        r["timings_s"] = self.timings
        r["seconds_per_10k_pairs"] = self.timings["total"] * 1e4 / len(ds)
        return Report(r)

    # -- 1. split ------------------------------------------------------------------------
    def split(self) -> None:
        ds = self.ds
        components = group_components(ds.prompt, ds.conversation_id)
        self.n_components = int(components.max()) + 1 if components.size else 0
        self.train, self.val, self.test = split_by_components(components, self.cfg.fractions, self.cfg.seed)
        if not self.train.size or not self.test.size:
            raise ValueError("the split left train or test empty: too few distinct prompts/conversations")

    # -- 2. embed and encode -------------------------------------------------------------
    def embed(self) -> None:
        ds = self.ds
        if ds.has_embeddings:
            ea, eb = ds.embeddings_a, ds.embeddings_b
        else:
            if self.embedder is None:
                raise ValueError("this dataset has no embeddings: pass embedder= (e.g. likeable.OnnxEmbedder)")
            from .embed import as_embedder

            both = as_embedder(self.embedder).embed(list(ds.response_a) + list(ds.response_b))
            ea, eb = both[: len(ds)], both[len(ds):]
        self.delta = np.ascontiguousarray(ea - eb, dtype=np.float32)
        self.emb_a, self.emb_b = ea, eb
        self.dl = ds.length_difference()
        # Length control, standardised on train so coefficients are per standard deviation.
        scale = float(np.std(self.dl[self.train])) or 1.0
        self.length_control = (self.dl / scale).astype(np.float32)[:, None]

    def train_encoder(self) -> None:
        from ..encoder import SparseEncoder

        cfg = self.cfg
        x_train = np.concatenate([self.delta[self.train], -self.delta[self.train]])
        x_val = np.concatenate([self.delta[self.val], -self.delta[self.val]]) if self.val.size else None
        self.encoder = SparseEncoder(n_features=cfg.n_features, k=cfg.k, kind=cfg.kind, signed=cfg.signed,
                                     matryoshka=cfg.matryoshka, seed=cfg.seed, threads=cfg.threads)
        self.encoder.fit(x_train, X_val=x_val, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                         patience=cfg.patience, progress=cfg.progress)
        start = time.perf_counter()
        self.codes = self.encoder.encode(self.delta)
        encode_s = time.perf_counter() - start
        self.results["encoder"] = self._encoder_health()
        self.results["encoder"]["encode_rows_per_s"] = len(self.delta) / max(encode_s, 1e-9)

    def _encoder_health(self) -> dict:
        held = self.test if self.test.size >= 2 else np.arange(len(self.ds))
        stats = self.encoder.stats(self.delta[held])
        return {"n_features": int(self.codes.shape[1]), "k": self.cfg.k, "kind": self.cfg.kind,
                "signed": self.cfg.signed, "matryoshka": self.cfg.matryoshka,
                "normalized_mse": float(stats.normalized_mse),
                "dead_fraction": float(stats.dead_fraction), "mean_active": float(stats.mean_active),
                "measured_on": "test pairs", "best_epoch": int(getattr(self.encoder, "best_epoch_", -1))}

    # -- 4. prediction -------------------------------------------------------------------
    def _decided(self, rows: np.ndarray) -> np.ndarray:
        return rows[self.ds.label[rows] != 0.5]

    def prediction(self) -> None:
        from ..preferences import PreferenceModel

        cfg = self.cfg
        tr, te = self._decided(self.train), self._decided(self.test)
        self.train_decided, self.test_decided = tr, te
        y_tr, y_te = self.ds.label[tr], self.ds.label[te]
        pred, fos = {}, {}

        def record(name, proba):
            pred[name] = {"auc": metrics.bootstrap_auc(y_te, proba, cfg.n_boot, seed=cfg.seed).to_dict(),
                          "accuracy": metrics.bootstrap_accuracy(y_te, proba, n_boot=cfg.n_boot,
                                                                 seed=cfg.seed).to_dict()}

        length = SparseCodes.from_dense(self.length_control)
        m = PreferenceModel(l2=1e-3, fit_intercept=True).fit(length[tr], y_tr)
        record("length", m.predict_proba(length[te]))
        dense = PreferenceModel(l2=cfg.l2).fit(self.delta[tr], y_tr)
        record("dense", dense.predict_proba(self.delta[te]))
        pop = PreferenceModel(l2=cfg.l2).fit(self.codes[tr], y_tr)
        self.population = pop
        record("all_features", pop.predict_proba(self.codes[te]))
        self.selected = {}
        for n_sel in cfg.n_select:
            sel = PreferenceModel(l2=cfg.l2).select(self.codes[tr], y_tr, n_features=n_sel)
            feats = np.asarray(sel.features, np.int64)
            self.selected[n_sel] = feats.tolist()
            if feats.size == 0:
                continue
            sub = self._columns(feats)
            m = PreferenceModel(l2=cfg.l2).fit(sub[tr], y_tr)
            record(f"top_{n_sel}", m.predict_proba(sub[te]))
        auc_dense = pred["dense"]["auc"]["value"]
        for name, p in pred.items():
            fos[name] = metrics.fraction_of_signal(p["auc"]["value"], auc_dense)
        self.results["prediction"] = pred
        self.results["fraction_of_signal"] = fos
        self.results["selected_features"] = {str(k): v for k, v in self.selected.items()}

    def _columns(self, feats: np.ndarray) -> SparseCodes:
        return SparseCodes.from_scipy(self.codes.to_scipy()[:, feats])

    # -- 5, 6. features ------------------------------------------------------------------
    def features(self) -> None:
        from ..index import SparseIndex
        from ..preferences import PreferenceModel

        cfg, ds = self.cfg, self.ds
        tr = self.train_decided
        # A light ridge keeps rare, perfectly separating features from exploding coefficients.
        effects = PreferenceModel(l2=cfg.l2).feature_effects(self.codes[tr], ds.label[tr], self.length_control[tr])
        index = SparseIndex(self.codes, approximate=False, threads=cfg.threads)
        describer = cfg.describer or DistinctiveWords()
        n_feat = self.codes.shape[1]
        share = np.bincount(self.codes.indices, minlength=n_feat) / max(len(ds), 1)
        order = np.argsort(np.where(np.isnan(effects.p_value), np.inf, effects.p_value), kind="stable")
        described = set(order[: cfg.n_described].tolist() if cfg.n_described else range(n_feat))
        truth = self._attribute_match()
        out = []
        features = range(n_feat)
        if cfg.progress:
            from tqdm.auto import tqdm

            features = tqdm(features, desc="features", unit="feature")
        for j in features:
            rows, values = index.top_activations(int(j), cfg.n_top_pairs, 1)
            item = {"feature": int(j), "coefficient": float(effects.coef[j]),
                    "std_error": float(effects.std_error[j]), "p_value": float(effects.p_value[j]),
                    "share_active": float(share[j]), "n_active_train": int(effects.n_active[j]),
                    "top_pairs": [{"pair": int(r), "activation": float(v)} for r, v in zip(rows, values)]}
            if j in described and len(rows):
                more = [ds.response_a[r] for r in rows]
                less = [ds.response_b[r] for r in rows]
                item["description"] = str(describer(more, less))
                if cfg.annotator is not None:
                    item["fidelity"] = self._fidelity(j, item["description"])
            if truth is not None:
                item.update(truth[j])
            out.append(item)
        self.results["features"] = out
        if truth is not None:
            self.results["recovery"] = self._recovery_summary()

    def _fidelity(self, j: int, description: str) -> float:
        rng = np.random.default_rng(self.cfg.seed + j)
        rows = rng.choice(len(self.ds), min(self.cfg.n_fidelity_pairs, len(self.ds)), replace=False)
        col = self.codes.to_scipy()[:, [j]].toarray().ravel()
        judged = [self.cfg.annotator(description, self.ds.response_a[r], self.ds.response_b[r]) for r in rows]
        return fidelity(col[rows], judged)

    def _attribute_match(self) -> list | None:
        """For synthetic data: each feature's best-correlated planted attribute difference."""
        t = self.ds.truth
        if "attributes_a" not in t:
            return None
        dattr = (t["attributes_a"] - t["attributes_b"]).astype(np.float64)
        codes = self.codes.to_dense().astype(np.float64)
        corr = _column_correlation(codes, dattr)  # features x attributes
        self.attribute_corr = corr
        names = t["attribute_names"]
        out = []
        for j in range(codes.shape[1]):
            k = int(np.nanargmax(np.abs(corr[j]))) if np.isfinite(corr[j]).any() else 0
            out.append({"matched_attribute": names[k], "attribute_correlation": float(corr[j, k])})
        return out

    def _recovery_summary(self) -> dict:
        t = self.ds.truth
        names = t["attribute_names"]
        best = np.nanmax(np.abs(self.attribute_corr), axis=0)
        # Decoder rows against the planted directions (both unit length after normalising).
        W = np.asarray(self.encoder.W_dec, np.float64)
        W = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
        cosine = np.abs(W @ np.asarray(t["directions"], np.float64).T).max(axis=0)
        return {"per_attribute": {n: float(b) for n, b in zip(names, best)},
                "mean_best_correlation": float(np.nanmean(best)),
                "n_recovered_at_0.8": int((best >= 0.8).sum()),
                "direction_cosine": {n: float(c) for n, c in zip(names, cosine)},
                "directions_recovered": int((cosine > 0.9).sum()), "n_planted": len(names)}

    # -- 7. personalization --------------------------------------------------------------
    def personalization(self) -> None:
        from ..preferences import PreferenceModel, UserPreferences, drift_weights

        cfg, ds = self.cfg, self.ds
        tr, te = self.train_decided, self.test_decided
        va = self._decided(self.val)
        users = ds.user_id
        y = ds.label
        codes = self.codes
        pop = self.population
        if cfg.personalize_length:
            # Length as one more named feature: people differ most plainly in how long they like answers.
            codes = SparseCodes.from_scipy(_hstack(codes.to_scipy(), self.length_control))
            pop = PreferenceModel(l2=cfg.l2).fit(codes[tr], y[tr])
        self.personal_codes, self.personal_population = codes, pop

        def per_user_auc(proba, rows):
            return _mean_user_auc(y[rows], proba, users[rows], cfg.min_user_pairs)

        population_auc = per_user_auc(pop.predict_proba(codes[te]), te)
        zero = _zero_population(codes[tr], y[tr])

        def fit_best(population):
            """UserPreferences around ``population`` with the shrinkage that scores best on validation."""
            best, best_score = None, -np.inf
            for s in cfg.shrinkage_grid if va.size else cfg.shrinkage_grid[:1]:
                up = UserPreferences(population=population, shrinkage=s, threads=cfg.threads).fit(
                    codes[tr], y[tr], users[tr])
                score = _mean_user_auc(y[va], up.predict_proba(codes[va], users[va]), users[va], 1) \
                    if va.size else 0.0
                if best is None or (np.isfinite(score) and score > best_score):
                    best, best_score = up, score
            return best

        # Shrunk: offsets around the population. Per-user only: the same solver around zero weights.
        shrunk = fit_best(pop)
        best_shrink = shrunk.shrinkage
        shrunk_auc = per_user_auc(shrunk.predict_proba(codes[te], users[te]), te)
        alone = fit_best(zero)
        alone_auc = per_user_auc(alone.predict_proba(codes[te], users[te]), te)
        drift = drift_weights(codes[tr], y[tr], users[tr])
        row_of = {u: i for i, u in enumerate(drift.user_ids)}
        te_rows = np.fromiter((row_of.get(u, -1) for u in users[te]), np.int64, te.size)
        w = np.vstack([drift.weights, np.zeros((1, drift.weights.shape[1]), np.float32)])
        margin = np.asarray((codes[te].to_scipy().multiply(w[te_rows])).sum(axis=1)).ravel()
        drift_auc = per_user_auc(margin, te)

        few = {"shots": list(cfg.few_shot), "shrunk": [], "per_user_only": []}
        rng = np.random.default_rng(cfg.seed)
        by_user = {u: tr[users[tr] == u] for u in np.unique(users[tr])}
        for n in cfg.few_shot:
            picked = np.concatenate([rng.permutation(r)[:n] for r in by_user.values()])
            for name, population, shrink in (("shrunk", pop, best_shrink), ("per_user_only", zero, alone.shrinkage)):
                up = UserPreferences(population=population, shrinkage=shrink, threads=cfg.threads).fit(
                    codes[picked], y[picked], users[picked])
                few[name].append(per_user_auc(up.predict_proba(codes[te], users[te]), te))
        result = {"population_auc": population_auc, "per_user_auc": alone_auc, "shrunk_auc": shrunk_auc,
                  "drift_auc": drift_auc, "few_shot": few, "shrinkage": best_shrink,
                  "per_user_shrinkage": alone.shrinkage,
                  "n_users": int(len(by_user)),
                  "gain_over_population": (shrunk_auc - population_auc)}
        truth = self.ds.truth
        if "user_weights" in truth:
            result["weight_recovery"] = self._weight_recovery(shrunk)
        self.shrunk = shrunk
        self.results["personalization"] = result

    def _weight_recovery(self, model) -> dict:
        """Correlation of learned per-user utilities, mapped to attribute space, with the planted weights."""
        t = self.ds.truth
        dattr = (t["attributes_a"] - t["attributes_b"]).astype(np.float64)
        names = list(t["user_names"])
        w_feat = np.asarray(model.weights(names), np.float64)  # users x features
        utilities = self.personal_codes.to_scipy() @ w_feat.T  # pairs x users
        implied, *_ = np.linalg.lstsq(dattr, utilities, rcond=None)  # attributes x users
        true = np.asarray(t["user_weights"], np.float64).T
        per_user = [np.corrcoef(implied[:, u], true[:, u])[0, 1] for u in range(true.shape[1])]
        return {"mean_user_correlation": float(np.nanmean(per_user)),
                "overall_correlation": float(np.corrcoef(implied.ravel(), true.ravel())[0, 1])}

    # -- 8. sessions ---------------------------------------------------------------------
    def sessions(self) -> None:
        from ..preferences import UserPreferences

        cfg, truth = self.cfg, self.ds.truth
        encoder, pop = self.encoder, self.population
        weights = simulated_user_weights(cfg.n_sim_users, seed=cfg.seed + 1)
        sim_ids = np.asarray([f"sim{u:03d}" for u in range(cfg.n_sim_users)], dtype=object)
        # Seed the adaptive model with the dataset's users so simulated users start at the population.
        tr = self.train_decided
        seed_users = self.ds.user_id[tr] if self.ds.user_id is not None else np.full(tr.size, "population", object)
        state = {"model": UserPreferences(population=pop, shrinkage=self.results.get("personalization", {})
                                          .get("shrinkage", 3.0), threads=cfg.threads)
                 .fit(self.codes[tr], self.ds.label[tr], seed_users)}

        def item_codes(emb):
            flat = emb - emb.mean(axis=1, keepdims=True)
            return encoder.encode(flat.reshape(-1, flat.shape[-1]).astype(np.float32))

        def block_scores(all_scores, n_users, n_cand):
            # score() gives users x all items; keep each user's own candidates.
            s = np.asarray(all_scores).reshape(n_users, n_users, n_cand)
            return s[np.arange(n_users), np.arange(n_users)]

        class Adaptive:
            def scores(self, users, emb):
                return block_scores(state["model"].score(list(sim_ids[users]), item_codes(emb)), *emb.shape[:2])

            def update(self, users, ea, eb, labels):
                delta = encoder.encode(np.ascontiguousarray(ea - eb, np.float32))
                state["model"].update(delta, labels, list(sim_ids[users]))

        def population_scores(users, emb):
            codes = item_codes(emb)
            return (codes.to_scipy() @ pop.coef_).reshape(emb.shape[:2])

        result = simulate_sessions(
            {"adaptive": Adaptive(), "non-adaptive": FixedPolicy(population_scores)}, weights,
            lambda n, rng: synthetic_candidates(truth, n, rng), n_sessions=cfg.n_sessions,
            n_turns=cfg.n_turns, n_candidates=cfg.n_candidates, seed=cfg.seed, progress=cfg.progress)
        self.results["sessions"] = result.to_dict()


def _column_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b`` (NaN for constants)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.T @ b) / np.outer(na, nb)


def _mean_user_auc(y: np.ndarray, scores: np.ndarray, users: np.ndarray, min_pairs: int) -> float:
    """Mean over users (with both labels and ``min_pairs`` pairs) of each user's AUC."""
    if y.size == 0:
        return float("nan")
    _, inverse = np.unique(users, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    values = []
    for rows in np.split(order, bounds):  # one slice per user, no per-user mask over all pairs
        n_pos = y[rows].sum()
        if rows.size >= min_pairs and 0 < n_pos < rows.size:
            values.append(metrics.auc(y[rows], scores[rows]))
    return float(np.mean(values)) if values else float("nan")


def _hstack(matrix, dense_columns: np.ndarray):
    import scipy.sparse as sp

    return sp.hstack([matrix, sp.csr_matrix(dense_columns)], format="csr")


def _zero_population(codes: SparseCodes, y: np.ndarray):
    """A fitted PreferenceModel whose weights are all zero (the 'per-user only' prior)."""
    from ..preferences import PreferenceModel

    return PreferenceModel(l1=1e30).fit(codes, y)
