"""The report's plots as PNG bytes (matplotlib's Agg canvas; no pyplot state, safe from threads)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from .findings import effect_interval, feature_order, field, is_significant
from .results import FeatureResult, Personalization
from .simulate import SessionResult

__all__ = ["feature_effects", "few_shot", "user_gains", "sessions"]

_BLUE, _GREY = "#2b7bba", "#aaaaaa"
_CURVE_NAMES = {"shrunk": "shrunk, random pairs", "per_user_only": "per-user only, random pairs",
                "active": "shrunk, pairs by information gain"}


def _figure(width=7.0, height=3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _finite(v) -> bool:
    return v is not None and bool(np.isfinite(v))


def feature_effects(features: Sequence[FeatureResult], n: int = 20) -> bytes | None:
    """The ``n`` most important active features' effects with 95% intervals (blue: significant)."""
    feats = [f for f in feature_order(features) if _finite(f.coefficient) and (field(f, "share_active") or 0) > 0]
    feats = feats[:n][::-1]
    if not feats:
        return None
    fig = _figure(9.5, max(2.5, 0.32 * len(feats) + 1.2))
    ax = fig.add_subplot()
    coef = [f.coefficient for f in feats]
    ci = [effect_interval(f) or (f.coefficient, f.coefficient) for f in feats]
    err = np.array([[c - lo for c, (lo, _) in zip(coef, ci)], [hi - c for c, (_, hi) in zip(coef, ci)]])
    colors = [_BLUE if is_significant(f) else _GREY for f in feats]
    labels = [f"{f.feature}: {_short(f.description)}" for f in feats]
    ax.barh(range(len(feats)), coef, xerr=err, color=colors)
    ax.set_yticks(range(len(feats)), labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    corrected = any(field(f, "q_value") is not None for f in features)
    ax.set_xlabel(f"length-controlled effect, 95% interval (blue: {'q' if corrected else 'p'} < 0.05)")
    ax.set_title("Feature effects, most important at the top")
    return _png(fig)


def _short(text: str | None, n: int = 48) -> str:
    text = text or "(not described)"
    return text if len(text) <= n else text[: n - 1] + "…"


def few_shot(p: Personalization) -> bytes | None:
    """Mean per-user held-out AUC against training pairs per user, with bands where computed."""
    shots = p.few_shot.shots
    if not shots:
        return None
    fig = _figure(7.0, 4.3)
    ax = fig.add_subplot()
    low, high = field(p.few_shot, "low") or {}, field(p.few_shot, "high") or {}
    draws = field(p.few_shot, "n_draws")
    for name, values in p.few_shot.curves.items():
        label = _CURVE_NAMES.get(name, name.replace("_", " "))
        if name in low and draws:
            label += f" (mean of {draws} draws)"
        line = ax.plot(shots, np.asarray(values, np.float64), marker="o", label=label)[0]
        if name in low and name in high:
            ax.fill_between(shots, np.asarray(low[name], np.float64), np.asarray(high[name], np.float64),
                            color=line.get_color(), alpha=0.15, lw=0)
    if _finite(p.population_auc):
        ax.axhline(p.population_auc, color="gray", ls="--", label="population model")
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("training pairs per user")
    ax.set_ylabel("mean per-user held-out AUC")
    ax.set_title("Few-shot personalization" + (" (bands: middle 95% of the random draws)" if low else ""))
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return _png(fig)


def user_gains(gains: dict) -> bytes | None:
    """Each user's gain in held-out AUC over the population model, as a histogram."""
    values = np.array([v for v in gains.values() if _finite(v)], np.float64)
    if values.size == 0:
        return None
    fig = _figure(6.0, 3.0)
    ax = fig.add_subplot()
    ax.hist(values, bins=min(30, max(5, values.size // 2)), color=_BLUE)
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(float(np.median(values)), color="#d95f02", ls="--", label=f"median {np.median(values):+.3f}")
    ax.set_xlabel("per-user AUC gain over the population model")
    ax.set_ylabel("users")
    ax.set_title(f"Per-user gains ({values.size} users)")
    ax.legend(fontsize=8)
    return _png(fig)


def sessions(s: SessionResult) -> bytes | None:
    """Likability by session per policy, and the adaptive policy's gain per dimension."""
    if not s.likability:
        return None
    fig = _figure(10.0, 3.8)
    ax = fig.add_subplot(1, 2, 1)
    for name, values in s.likability.items():
        values = np.asarray(values, np.float64)
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel("session")
    ax.set_ylabel("likability (share of oracle)")
    ax.set_title("Likability by session")
    ax.legend(fontsize=8)
    adaptive = next((k for k in s.by_dimension if k not in ("oracle", "non-adaptive", "random")), None)
    if adaptive is not None and s.dimensions:
        ax2 = fig.add_subplot(1, 2, 2)
        grid = np.asarray(s.by_dimension[adaptive], np.float64)
        im = ax2.imshow(grid.T, aspect="auto", cmap="viridis")
        ax2.set_yticks(range(len(s.dimensions)), s.dimensions, fontsize=8)
        ax2.set_xticks(range(grid.shape[0]), [str(i + 1) for i in range(grid.shape[0])])
        ax2.set_xlabel("session")
        ax2.set_title(f"{adaptive}: utility gained per dimension")
        fig.colorbar(im, ax=ax2)
    return _png(fig)
