"""The protocol's result: every number as JSON, and one self-contained HTML page with plots."""
from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from .. import _json
from .._io import atomic_write_bytes, read_file_bytes
from .._validation import fspath
from .metrics import Estimate
from . import figures
from .cards import CARD_STYLE, feature_cards
from .findings import (DEFINITIONS, MIN_USERS_FOR_HISTOGRAM, all_zero, field, findings, p_text, short_name, signed,
                       variance_label, varying_features, varying_sentence, warnings)
from .properties import PropertyBank
from .results import Notice, Personalization, ProtocolResult, from_plain, to_plain

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
        """One self-contained HTML file: findings, warnings, feature cards, tables and plots (PNG inline)."""
        page = self._render_html()
        atomic_write_bytes(fspath(path), page.encode("utf-8"))
        return fspath(path)

    def findings(self) -> list[str]:
        """The plain-sentence summary the report opens with (as written, else made from the numbers)."""
        stored = self.result.findings
        return list(stored) if stored is not None else findings(self.result)

    def warnings(self) -> list[Notice]:
        """Conditions that should worry a reader (as written, else made from the numbers)."""
        stored = self.result.warnings
        return list(stored) if stored is not None else warnings(self.result)

    def figures(self) -> dict[str, bytes]:
        """PNG bytes of each plot that applies: feature effects, few-shot curve, per-user gains, sessions."""
        r = self.result
        p = r.personalization
        out = {"feature_effects": figures.feature_effects(r.features)}
        if p is not None:
            out["few_shot"] = figures.few_shot(p)
            gains = field(p, "user_gains") or {}
            if len(gains) >= MIN_USERS_FOR_HISTOGRAM and not all_zero(gains.values()):
                out["user_gains"] = figures.user_gains(field(p, "user_gains"))
        if r.sessions is not None:
            out["sessions"] = figures.sessions(r.sessions)
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
        figs = self.figures()
        source = r.dataset.source if r.dataset is not None and r.dataset.source is not None else ""
        parts = [f"<h1>What is in this feedback</h1><p class='src'>{esc(str(source))}</p>"]
        parts.append("<div class='box findings'><h2>Findings</h2><ul>"
                     + "".join(f"<li>{esc(line)}</li>" for line in self.findings()) + "</ul></div>")
        notices = self.warnings()
        if notices:
            parts.append("<div class='box warn'><h2>Read with care</h2><ul>"
                         + "".join(f"<li>{esc(n.message)}</li>" for n in notices) + "</ul></div>")
        parts.append(self._prediction_html())
        parts.append("<h2>Features</h2><p>One card per feature, most important first: significant effects "
                     "first, then by the size of the length-controlled effect. A feature is signed: positive "
                     "where response A has more of what it stands for, negative where B has.</p>")
        if "feature_effects" in figs:
            parts.append(_img(figs["feature_effects"], "feature effects"))
        parts.append("<details class='legend' open><summary>How to read a card</summary>"
                     + _definitions(["effect", "p_value", "share_active", "fidelity", "properties"]) + "</details>")
        parts.append(feature_cards(r.features, synthetic=r.recovery is not None))
        if r.personalization is not None:
            parts.append(self._personalization_html(figs))
        if r.sessions is not None:
            parts.append(self._sessions_html(figs))
        parts.append(self._encoder_html())
        parts.append(f"<details><summary>All numbers (JSON)</summary><pre>{esc(self.to_json())}</pre></details>")
        return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'><title>likeable report</title>"
                f"<style>{_STYLE}{CARD_STYLE}</style></head><body>{''.join(parts)}</body></html>")

    def _prediction_html(self) -> str:
        r = self.result
        ci = field(r, "fraction_of_signal_ci") or {}
        beyond = field(r, "fraction_beyond_length") or {}
        header = ["model", "AUC [95% CI]", "accuracy [95% CI]", "fraction of dense signal [95% CI]"]
        if beyond:
            header.append("beyond length [95% CI]")
        rows = []
        for name, s in r.prediction.items():
            share = _ci(ci[name]) if name in ci else _fmt(r.fraction_of_signal.get(name))
            row = [_model_name(name), _ci(s.auc), _ci(s.accuracy), "1 (the reference)" if name == "dense" else share]
            if beyond:
                row.append("1 (the reference)" if name == "dense" else _ci(beyond[name]) if name in beyond else "–")
            rows.append(row)
        auc = next((s.auc for s in r.prediction.values() if s.auc is not None), None)
        groups = next((field(s.auc, "n_groups") for s in r.prediction.values() if field(s.auc, "n_groups")), None)
        held = f"On {auc.n:,} held-out pairs" if auc is not None and auc.n else "On the held-out pairs"
        held += f" from {groups:,} prompts/conversations (the units the intervals resample)." if groups else "."
        defs = ["auc", "accuracy", "fraction_of_signal"] + (["fraction_beyond_length"] if beyond else []) \
            + ["length", "dense", "all_features", "top"]
        return (f"<h2>How well the features predict choices</h2><p>{held}</p>" + _table(header, rows)
                + _definitions(defs) + self._tuning_html())

    def _tuning_html(self) -> str:
        tuning = field(self.result, "dense_tuning")
        if tuning is None or tuning.chosen is None:
            return ""
        cv = dict(zip(tuning.grid or [], tuning.cv_auc or []))
        score = f" (mean fold AUC {_fmt(cv[tuning.chosen])})" if tuning.chosen in cv else ""
        return (f"<p class='def'>The dense probe's penalty, l2 = {tuning.chosen:g}{score}, was chosen among "
                f"{', '.join(f'{g:g}' for g in tuning.grid or [])} by {tuning.n_folds}-fold cross-validation over "
                "whole prompts/conversations of the training part.</p>")

    def _personalization_html(self, figs: dict) -> str:
        p = self.result.personalization
        aucs = field(p, "auc") or {}
        gains = {"shrunk": field(p, "gain"), "per_user_only": field(p, "gain_per_user_only")}
        rows = [[_model_name(key), _ci(aucs[key]) if key in aucs else _fmt(value), _signed_ci(gains.get(key))]
                for key, value in (("population", p.population_auc), ("shrunk", p.shrunk_auc),
                                   ("per_user_only", p.per_user_auc), ("drift", p.drift_auc))]
        resampled = field(p, "resampled")
        how = f" Intervals: 95%, resampling {html.escape(resampled)}." if resampled else ""
        out = [f"<h2>Personalization</h2><p>{p.n_users or '–'} users; each model scored on each user's own "
               f"held-out pairs.{how}</p>",
               _table(["model", "mean per-user AUC [95% CI]", "gain over population [95% CI]"], rows),
               _definitions(["personalization", "population", "shrunk", "per_user_only", "drift", "gain"]),
               f"<p class='verdict'>{html.escape(_gain_verdict(p))}</p>"]
        user_gains = field(p, "user_gains") or {}
        if user_gains:
            out.append(f"<h3>Per-user gains ({len(user_gains)} users)</h3>")
            if "user_gains" in figs:
                out.append(_img(figs["user_gains"], "per-user gains"))
            elif all_zero(user_gains.values()):
                out.append("<p>Exactly 0 for every user: with no feature varying by person, each user's model is "
                           "the population's.</p>")
            else:  # too few users for a histogram: each one's number
                out.append(_table(["user", "gain in AUC"], [[html.escape(str(u)), signed(g)]
                                                           for u, g in user_gains.items()]))
            out.append(_definitions(["user_gains"]))
        if field(p, "feature_variance"):
            out.append(self._varying_html())
        if "few_shot" in figs:
            out.append("<h3>How many pairs a new user needs</h3>" + _img(figs["few_shot"], "few-shot curve")
                       + _definitions(["few_shot"]))
        return "".join(out)

    def _varying_html(self) -> str:
        p = self.result.personalization
        names = {f.feature: short_name(f) for f in self.result.features}
        out = [f"<h3>Which features vary by person</h3><p>{html.escape(varying_sentence(self.result) or '')}</p>"]
        items = []
        for v in varying_features(p):
            variance = field(v, "variance")
            spread = (f"per-user weights spread <b>±{math.sqrt(variance):.3g}</b> (SD)" if variance else
                      "spread 0 here: a correlated column carries the variation in the joint model")
            items.append(f"<li>{html.escape(variance_label(v, names))}: {spread}, q {p_text(field(v, 'q_value'))}</li>")
        if items:
            out.append(f"<ul>{''.join(items)}</ul>")
        null = field(p, "variance_null")
        out.append(_definitions(["varies"]) + (f"<p class='def'>Permutation null: {html.escape(null)}.</p>"
                                                if null else ""))
        return "".join(out)

    def _sessions_html(self, figs: dict) -> str:
        s = self.result.sessions
        out = ["<h2>Multi-session simulation</h2><p>Simulated users with hidden tastes over seven named "
               "dimensions; the adaptive system updates each user's weights after every session.</p>"]
        if "sessions" in figs:
            out.append(_img(figs["sessions"], "likability by session"))
        bank = PropertyBank()
        known = set(bank.names)
        items = "".join(f"<li><b>{html.escape(d)}</b>: {html.escape(bank.get(d).definition)}</li>"
                        for d in s.dimensions if d in known)
        if items:
            out.append("<p>The dimensions are the text properties the feature cards measure:</p>"
                       f"<ul>{items}</ul>")
        out.append(_definitions(["likability"]))
        return "".join(out)

    def _encoder_html(self) -> str:
        enc = self.result.encoder
        strays = any(n.kind == "l0_off_k" for n in self.warnings())
        rows = []
        for key, value in _scalar_fields(enc):
            if key == "best_epoch" and isinstance(value, int):
                value = value + 1  # shown counting from 1, as epochs_run counts
            shown = f"{value:,.0f}" if key == "encode_rows_per_s" and _finite(value) else _fmt(value)
            if key in ("mean_active", "train_l0") and enc.k:
                shown += f"&nbsp;(k&nbsp;=&nbsp;{enc.k})" + ("<br>strays from k: see Read with care"
                                                             if key == "mean_active" and strays else "")
            rows.append([html.escape(_ENCODER_NAMES.get(key, key)), shown, html.escape(DEFINITIONS.get(key, ""))])
        return "<h2>Encoder health</h2><p>The sparse encoder that turns each pair's embedding difference into " \
               "features, measured on held-out pairs.</p>" + _table(["measure", "value", "what it is"], rows)

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


def _model_name(key: str) -> str:
    if key.startswith("top_"):
        return f"top {key[4:]} features"
    return {"length": "length alone", "dense": "dense probe", "all_features": "all features",
            "population": "population", "shrunk": "shrunk per-user", "per_user_only": "per-user only",
            "drift": "drift"}.get(key, key)


def _definitions(keys) -> str:
    return "".join(f"<p class='def'>{html.escape(DEFINITIONS[k])}</p>" for k in keys if k in DEFINITIONS)


def _gain_verdict(p: Personalization) -> str:
    gain = field(p, "gain")
    if gain is None:
        if _finite(p.gain_over_population):
            return f"Gain over the population model: {p.gain_over_population:+.3f} (no interval computed)."
        return "No gain over the population model was computed."
    if all_zero((gain.value, gain.low, gain.high)) and field(p, "n_varying") == 0:
        return ("No per-user gain: no feature varies significantly by person, so each user's model is the "
                "population's (gain exactly 0).")
    if field(p, "gain_significant") is False:
        return (f"No significant per-user gain over the population model: {_signed_ci(gain)} AUC; its 95% "
                "interval includes 0.")
    return f"Per-user weights help: {_signed_ci(gain)} AUC over the population model (95% interval above 0)."


def _signed_ci(e: Estimate | None) -> str:
    return "–" if e is None else f"{signed(e.value)} [{signed(e.low)}, {signed(e.high)}]"


_ENCODER_NAMES = {"n_features": "features (M)", "kind": "kind", "signed": "signed", "matryoshka": "Matryoshka prefixes",
                  "normalized_mse": "normalized MSE", "dead_fraction": "dead features", "mean_active":
                  "active per pair (L0)", "measured_on": "measured on", "best_epoch": "best epoch",
                  "encode_rows_per_s": "encode throughput (pairs/s)", "epochs_run": "epochs run",
                  "train_l0": "training L0", "threshold": "BatchTopK threshold",
                  "threshold_before": "threshold before calibration"}

_STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1080px;margin:1.5em auto;"
          "padding:0 1.2em;color:#24292f;line-height:1.45}h1{margin-bottom:0.1em}h2{margin-top:1.6em;"
          "border-bottom:1px solid #d0d7de;padding-bottom:0.2em}h4{margin:0.8em 0 0.3em}"
          "table{border-collapse:collapse;margin:0.8em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;"
          "text-align:left;vertical-align:top}th{background:#f6f8fa}img{max-width:100%}.src{color:#57606a}"
          ".box{border-radius:8px;padding:0.2em 1.2em;margin:1em 0}.box h2{border:none;margin-top:0.6em}"
          ".verdict{font-weight:600}.findings{background:#f3f8fc;border:1px solid #b6d4ea}"
          ".warn{background:#fff8e6;border:1px solid #f0c36d}pre{white-space:pre-wrap;font-size:0.8em}")


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
