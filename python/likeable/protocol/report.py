"""The protocol's result: every number as JSON, and one self-contained HTML page with plots."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from typing import Any

import numpy as np

from .._io import atomic_write_bytes
from .._validation import fspath

__all__ = ["Report", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("encoder", "prediction", "fraction_of_signal", "features")
PERSONALIZATION_KEYS = ("population_auc", "per_user_auc", "shrunk_auc", "drift_auc", "few_shot")


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/Inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


class Report:
    """Results of :func:`likeable.evaluate`.

    Parameters
    ----------
    results : dict
        At least ``encoder``, ``prediction``, ``fraction_of_signal`` and ``features``; where
        they apply, ``personalization`` (``population_auc``, ``per_user_auc``, ``shrunk_auc``,
        ``drift_auc``, ``few_shot``) and ``sessions``.
    """

    def __init__(self, results: dict) -> None:
        missing = [k for k in REQUIRED_KEYS if k not in results]
        if missing:
            raise ValueError(f"results lack the keys {missing}")
        if "personalization" in results:
            lacking = [k for k in PERSONALIZATION_KEYS if k not in results["personalization"]]
            if lacking:
                raise ValueError(f"results['personalization'] lacks {lacking}")
        self.results = _plain(results)

    def __getitem__(self, key: str) -> Any:
        return self.results[key]

    def __contains__(self, key: str) -> bool:
        return key in self.results

    # ------------------------------------------------------------------------------
    def to_json(self, path=None, indent: int = 2) -> str:
        """All numbers as JSON (NaN becomes null); also written atomically to ``path`` if given."""
        text = json.dumps(self.results, indent=indent, sort_keys=False, allow_nan=False)
        if path is not None:
            atomic_write_bytes(fspath(path), text.encode("utf-8"))
        return text

    @classmethod
    def from_json(cls, text_or_path: str) -> "Report":
        """Read a report written by :meth:`to_json` (a path or the JSON text)."""
        text = text_or_path
        if not text_or_path.lstrip().startswith("{"):
            with open(text_or_path, encoding="utf-8") as fh:
                text = fh.read()
        return cls(json.loads(text))

    def to_html(self, path) -> str:
        """One self-contained HTML file: summary tables and matplotlib plots as base64 PNG."""
        page = self._render_html()
        atomic_write_bytes(fspath(path), page.encode("utf-8"))
        return fspath(path)

    def figures(self) -> dict[str, bytes]:
        """PNG bytes of each plot that applies: feature effects, few-shot curve, sessions."""
        out = {"feature_effects": _plot_feature_effects(self.results)}
        if "personalization" in self.results:
            out["few_shot"] = _plot_few_shot(self.results["personalization"])
        if "sessions" in self.results:
            out["sessions"] = _plot_sessions(self.results["sessions"])
        return {k: v for k, v in out.items() if v is not None}

    # ------------------------------------------------------------------------------
    def _render_html(self) -> str:
        r = self.results
        esc = html.escape
        parts = [f"<h1>likeable report</h1><p class='src'>{esc(str(r.get('dataset', {}).get('source', '')))}</p>"]
        enc = r["encoder"]
        parts.append("<h2>Encoder health</h2>" + _table(
            ["metric", "value"], [[esc(k), _fmt(v)] for k, v in enc.items() if not isinstance(v, (dict, list))]))
        rows = []
        for name, pred in r["prediction"].items():
            a, c = pred.get("auc", {}), pred.get("accuracy", {})
            rows.append([esc(name), _ci(a), _ci(c), _fmt(r["fraction_of_signal"].get(name))])
        parts.append("<h2>Prediction on held-out pairs</h2>" + _table(
            ["model", "AUC (95% CI)", "accuracy (95% CI)", "fraction of dense signal"], rows))
        figs = self.figures()
        parts.append("<h2>Features</h2>")
        if "feature_effects" in figs:
            parts.append(_img(figs["feature_effects"], "feature effects"))
        feat_rows = [[str(f.get("feature")), esc(str(f.get("description", ""))), _fmt(f.get("coefficient")),
                      _fmt(f.get("p_value")), _fmt(f.get("share_active")),
                      esc(str(f.get("matched_attribute", "")))] for f in r["features"]]
        parts.append(_table(["feature", "description", "coefficient (length-controlled)", "p-value",
                             "share active", "planted attribute"], feat_rows))
        if "personalization" in r:
            p = r["personalization"]
            parts.append("<h2>Personalization</h2>" + _table(
                ["model", "mean per-user held-out AUC"],
                [[k, _fmt(p[k] if not isinstance(p[k], dict) else p[k].get("mean"))]
                 for k in ("population_auc", "per_user_auc", "shrunk_auc", "drift_auc")]))
            if "few_shot" in figs:
                parts.append(_img(figs["few_shot"], "few-shot curve"))
        if "sessions" in r:
            parts.append("<h2>Multi-session simulation</h2>")
            if "sessions" in figs:
                parts.append(_img(figs["sessions"], "likability by session"))
        parts.append(f"<details><summary>All numbers (JSON)</summary><pre>{esc(self.to_json())}</pre></details>")
        style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
                 "text-align:left}th{background:#f3f3f3}img{max-width:100%}.src{color:#666}")
        return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>likeable report</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")

    def __repr__(self) -> str:
        pred = self.results.get("prediction", {})
        best = {k: v.get("auc", {}).get("value") for k, v in pred.items()}
        return f"<likeable.Report(keys={list(self.results)}, auc={ {k: _fmt(v) for k, v in best.items()} })>"


# ----------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return html.escape(str(v))


def _ci(est: dict) -> str:
    if not est:
        return "–"
    return f"{_fmt(est.get('value'))} [{_fmt(est.get('low'))}, {_fmt(est.get('high'))}]"


def _table(header, rows) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _figure(width=7.0, height=3.6):
    # Figure + Agg canvas directly: no pyplot global state, safe from threads and headless.
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


def _plot_feature_effects(r: dict) -> bytes | None:
    # The 20 most significant features that fire on at least 1% of pairs (rare ones are noise).
    feats = [f for f in r.get("features", []) if f.get("coefficient") is not None
             and f.get("p_value") is not None and (f.get("share_active") or 0) >= 0.01]
    if not feats:
        return None
    feats = sorted(feats, key=lambda f: f["p_value"])[:20]
    feats = sorted(feats, key=lambda f: f["coefficient"])
    fig = _figure(7.0, max(2.5, 0.3 * len(feats) + 1))
    ax = fig.add_subplot()
    coef = [f["coefficient"] for f in feats]
    err = [1.96 * (f.get("std_error") or 0.0) for f in feats]
    colors = ["#2b7bba" if (f.get("p_value") is not None and f["p_value"] < 0.05) else "#aaaaaa" for f in feats]
    labels = [f"{f['feature']}: {str(f.get('description', ''))[:40]}" for f in feats]
    ax.barh(range(len(feats)), coef, xerr=err, color=colors)
    ax.set_yticks(range(len(feats)), labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("length-controlled coefficient (blue: p < 0.05)")
    ax.set_title("Feature effects on preference")
    return _png(fig)


def _plot_few_shot(p: dict) -> bytes | None:
    curve = p.get("few_shot") or {}
    shots = curve.get("shots") or []
    if not shots:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for name, values in curve.items():
        if name == "shots":
            continue
        ax.plot(shots, [np.nan if v is None else v for v in values], marker="o", label=name)
    if p.get("population_auc") is not None:
        ax.axhline(p["population_auc"], color="gray", ls="--", label="population")
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("training examples per user")
    ax.set_ylabel("mean per-user held-out AUC")
    ax.set_title("Few-shot personalization")
    ax.legend(fontsize=8)
    return _png(fig)


def _plot_sessions(s: dict) -> bytes | None:
    lik = s.get("likability") or {}
    if not lik:
        return None
    dims = s.get("dimensions") or []
    by_dim = s.get("by_dimension") or {}
    fig = _figure(10.0, 3.8)
    ax = fig.add_subplot(1, 2, 1)
    for name, values in lik.items():
        ax.plot(range(1, len(values) + 1), [np.nan if v is None else v for v in values], marker="o", label=name)
    ax.set_xlabel("session")
    ax.set_ylabel("likability (share of oracle)")
    ax.set_title("Likability by session")
    ax.legend(fontsize=8)
    adaptive = next((k for k in by_dim if k not in ("oracle", "non-adaptive", "random")), None)
    if adaptive is not None and dims:
        ax2 = fig.add_subplot(1, 2, 2)
        grid = np.asarray([[np.nan if v is None else v for v in row] for row in by_dim[adaptive]], float)
        im = ax2.imshow(grid.T, aspect="auto", cmap="viridis")
        ax2.set_yticks(range(len(dims)), dims, fontsize=8)
        ax2.set_xticks(range(grid.shape[0]), [str(i + 1) for i in range(grid.shape[0])])
        ax2.set_xlabel("session")
        ax2.set_title(f"{adaptive}: gain per dimension")
        fig.colorbar(im, ax=ax2)
    return _png(fig)
