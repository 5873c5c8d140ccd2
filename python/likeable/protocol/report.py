"""The protocol's result: every number as JSON, and one self-contained HTML page with plots."""
from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from .. import _json
from .._io import atomic_write_bytes, read_file_bytes
from .._validation import fspath
from .metrics import Estimate
from .results import FeatureResult, Personalization, ProtocolResult, SessionResult, from_plain, to_plain

__all__ = ["Report", "REQUIRED_KEYS"]

# The sections every report has (the others apply to some datasets only).
REQUIRED_KEYS = ("encoder", "prediction", "fraction_of_signal", "features")


class Report:
    """Results of :func:`likeable.evaluate`.

    Parameters
    ----------
    results : ProtocolResult or dict
        The typed result of :func:`likeable.evaluate`, or the same as JSON-like dict (at least
        ``encoder``, ``prediction``, ``fraction_of_signal`` and ``features``; where they apply,
        ``personalization`` (``population_auc``, ``per_user_auc``, ``shrunk_auc``,
        ``drift_auc``, ``few_shot``) and ``sessions``).

    Attributes
    ----------
    result : ProtocolResult
        Every finding as typed fields (see :mod:`likeable.protocol.results`).
    results : dict
        The same as the JSON of :meth:`to_json` (NaN as None).
    """

    def __init__(self, results: ProtocolResult | Mapping) -> None:
        if isinstance(results, ProtocolResult):
            self.result = results
        elif isinstance(results, Mapping):
            self.result = from_plain(ProtocolResult, to_plain(dict(results)))
        else:
            raise TypeError(f"results must be a ProtocolResult or a dict, got {type(results).__name__}")

    @cached_property
    def results(self) -> dict:
        return to_plain(self.result)

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
        text, source = text_or_path, "<report JSON>"
        if not text_or_path.lstrip().startswith("{"):
            text, source = read_file_bytes(text_or_path), text_or_path
        return cls(_json.loads(text, source, "the report"))  # nesting checked first; FormatError

    def to_html(self, path) -> str:
        """One self-contained HTML file: summary tables and matplotlib plots as base64 PNG."""
        page = self._render_html()
        atomic_write_bytes(fspath(path), page.encode("utf-8"))
        return fspath(path)

    def figures(self) -> dict[str, bytes]:
        """PNG bytes of each plot that applies: feature effects, few-shot curve, sessions."""
        r = self.result
        out = {"feature_effects": _plot_feature_effects(r.features)}
        if r.personalization is not None:
            out["few_shot"] = _plot_few_shot(r.personalization)
        if r.sessions is not None:
            out["sessions"] = _plot_sessions(r.sessions)
        return {k: v for k, v in out.items() if v is not None}

    def summary(self) -> str:
        """The headline numbers in a few lines of plain text (what ``likeable demo`` prints)."""
        r = self.result
        enc = r.encoder
        lines = [f"encoder: normalized MSE {enc.normalized_mse:.3f}, "
                 f"dead {enc.dead_fraction:.2f}, mean active {enc.mean_active:.2f}"
                 + (f" (k = {enc.k}; {enc.train_l0:.2f} on training pairs)" if enc.train_l0 is not None else "")]
        beyond = r.fraction_beyond_length or {}
        for name, score in r.prediction.items():
            a = score.auc
            lines.append(f"  {name:>13}: AUC {_f(a.value)} [{_f(a.low)}, {_f(a.high)}]"
                         f"  fraction of dense signal {_f(r.fraction_of_signal.get(name))}"
                         + (f", beyond length {_est(beyond[name])}" if name in beyond else ""))
        p = r.personalization
        if p is not None:
            lines.append("personalization (mean per-user held-out AUC): "
                         + ", ".join(f"{k} {_f(v)}" for k, v in _personalization_rows(p)))
            if p.gain is not None:
                lines.append(_gain_sentence(p))
        if r.recovery is not None:
            lines.append(f"planted directions: mean best |corr| {_f(r.recovery.mean_best_correlation)}")
        if p is not None and p.weight_recovery is not None:
            lines.append(f"planted user weights: mean correlation {_f(p.weight_recovery.mean_user_correlation)}")
        if r.sessions is not None:
            lines.append("likability by session (share of oracle): "
                         + "; ".join(f"{k} " + " ".join(_f(v) for v in values)
                                     for k, values in r.sessions.likability.items() if k != "oracle"))
        if r.recovery is not None and r.recovery.directions_recovered is not None:
            lines.append(f"recovered {r.recovery.directions_recovered} of {r.recovery.n_planted} planted "
                         "directions (cosine > 0.9)")
        if enc.encode_rows_per_s is not None:
            lines.append(f"encode throughput: {enc.encode_rows_per_s:,.0f} rows/s")
        if r.timings_s is not None:
            lines.append(f"wall time {r.timings_s['total']:.1f} s ({r.seconds_per_10k_pairs:.1f} s per 10k pairs)")
        return "\n".join(lines)

    # ------------------------------------------------------------------------------
    def _render_html(self) -> str:
        r = self.result
        esc = html.escape
        source = r.dataset.source if r.dataset is not None and r.dataset.source is not None else ""
        parts = [f"<h1>likeable report</h1><p class='src'>{esc(str(source))}</p>"]
        parts.append("<h2>Encoder health</h2>" + _table(
            ["metric", "value"], [[esc(name), _fmt(value)] for name, value in _scalar_fields(r.encoder)]))
        beyond = r.fraction_beyond_length or {}
        rows = [[esc(name), _ci(s.auc), _ci(s.accuracy), _fmt(r.fraction_of_signal.get(name)), _ci(beyond.get(name))]
                for name, s in r.prediction.items()]
        parts.append("<h2>Prediction on held-out pairs</h2>" + _table(
            ["model", "AUC (95% CI)", "accuracy (95% CI)", "fraction of dense signal",
             "fraction beyond length (95% CI)"], rows))
        figs = self.figures()
        parts.append("<h2>Features</h2>")
        if "feature_effects" in figs:
            parts.append(_img(figs["feature_effects"], "feature effects"))
        feat_rows = [[str(f.feature), esc(f.description or ""), _fmt(f.coefficient), _fmt(f.p_value),
                      _fmt(f.q_value), _fmt(f.share_active), esc(f.matched_attribute or "")] for f in r.features]
        parts.append(_table(["feature", "description", "coefficient (length-controlled)", "p-value",
                             "q-value (BH)", "share active", "planted attribute"], feat_rows))
        if r.personalization is not None:
            p = r.personalization
            intervals = p.auc or {}
            parts.append("<h2>Personalization</h2>" + _table(
                ["model", "mean per-user held-out AUC", "95% CI"],
                [[k, _fmt(v), _ci(intervals.get(k.removesuffix("_auc").replace("per_user", "per_user_only")))]
                 for k, v in _personalization_rows(p)]))
            if p.gain is not None:
                parts.append(f"<p>{esc(_gain_sentence(p))}</p>")
            if "few_shot" in figs:
                parts.append(_img(figs["few_shot"], "few-shot curve"))
        if r.sessions is not None:
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
        best = {k: _fmt(s.auc.value if s.auc is not None else None) for k, s in self.result.prediction.items()}
        return f"<likeable.Report(keys={list(self.results)}, auc={best})>"


def _scalar_fields(record) -> list[tuple[str, Any]]:
    """(JSON key, value) of a record's fields as the JSON shows them, lists and records left out."""
    out = []
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if (value is not None or f.metadata.get("keep_none")) and not isinstance(value, (list, dict)) \
                and not dataclasses.is_dataclass(value):
            out.append((f.metadata.get("key", f.name), value))
    return out


def _est(e: Estimate | None) -> str:
    return "–" if e is None else f"{_f(e.value)} [{_f(e.low)}, {_f(e.high)}]"


def _gain_sentence(p: Personalization) -> str:
    """The per-user gain in plain words, with its interval and what was resampled."""
    head = ("per-user gain over the population" if p.gain_significant
            else "no significant per-user gain over the population")
    varying = "" if p.n_varying is None else f"; {p.n_varying} feature(s) vary by person (q < 0.05)"
    return f"{head}: {_est(p.gain)} AUC (95% CI, resampling {p.resampled}){varying}"


def _personalization_rows(p: Personalization) -> list[tuple[str, float]]:
    return [("population_auc", p.population_auc), ("per_user_auc", p.per_user_auc),
            ("shrunk_auc", p.shrunk_auc), ("drift_auc", p.drift_auc)]


def _f(v) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.3f}"


# ----------------------------------------------------------------------------------
def _finite(v) -> bool:
    return v is not None and (not isinstance(v, (float, np.floating)) or bool(np.isfinite(v)))


def _fmt(v) -> str:
    if not _finite(v):
        return "–"  # absent, or NaN (null in the JSON)
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return html.escape(str(v))


def _ci(est: Estimate | None) -> str:
    if est is None:
        return "–"
    return f"{_fmt(est.value)} [{_fmt(est.low)}, {_fmt(est.high)}]"


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


def _plot_feature_effects(features: list[FeatureResult]) -> bytes | None:
    # The 20 most significant features that fire on at least 1% of pairs (rare ones are noise).
    feats = [f for f in features if _finite(f.coefficient) and _finite(f.p_value)
             and (f.share_active if _finite(f.share_active) else 0) >= 0.01]
    if not feats:
        return None
    feats = sorted(feats, key=lambda f: f.p_value)[:20]
    feats = sorted(feats, key=lambda f: f.coefficient)
    fig = _figure(7.0, max(2.5, 0.3 * len(feats) + 1))
    ax = fig.add_subplot()
    coef = [f.coefficient for f in feats]
    err = [1.96 * (f.std_error if _finite(f.std_error) else 0.0) for f in feats]
    colors = ["#2b7bba" if f.p_value < 0.05 else "#aaaaaa" for f in feats]
    labels = [f"{f.feature}: {(f.description or '')[:40]}" for f in feats]
    ax.barh(range(len(feats)), coef, xerr=err, color=colors)
    ax.set_yticks(range(len(feats)), labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("length-controlled coefficient (blue: p < 0.05)")
    ax.set_title("Feature effects on preference")
    return _png(fig)


def _plot_few_shot(p: Personalization) -> bytes | None:
    shots = p.few_shot.shots
    if not shots:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for name, values in p.few_shot.curves.items():
        line, = ax.plot(shots, np.asarray(values, np.float64), marker="o", label=name)
        if p.few_shot.low and name in p.few_shot.low and p.few_shot.high and name in p.few_shot.high:
            ax.fill_between(shots, np.asarray(p.few_shot.low[name], np.float64),
                            np.asarray(p.few_shot.high[name], np.float64), color=line.get_color(), alpha=0.15)
    if _finite(p.population_auc):
        ax.axhline(p.population_auc, color="gray", ls="--", label="population")
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("training examples per user")
    ax.set_ylabel("mean per-user held-out AUC")
    ax.set_title("Few-shot personalization")
    ax.legend(fontsize=8)
    return _png(fig)


def _plot_sessions(s: SessionResult) -> bytes | None:
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
        ax2.set_title(f"{adaptive}: gain per dimension")
        fig.colorbar(im, ax=ax2)
    return _png(fig)
