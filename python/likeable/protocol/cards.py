"""One HTML card per feature: what it is, how sure we are, and the pairs that show it."""
from __future__ import annotations

import html
import math
from typing import Sequence

from .findings import DEFINITIONS, effect_interval, feature_order, field, is_significant, p_text, signed
from .results import DescriptionResult, Example, FeatureResult

__all__ = ["feature_cards", "CARD_STYLE"]

_OPEN = 3          # cards shown open
_SHOWN = 2         # examples per direction shown before "more examples"

CARD_STYLE = (
    ".card{border:1px solid #d0d7de;border-radius:8px;margin:0.8em 0;padding:0.2em 1em 0.6em}"
    ".card>summary{cursor:pointer;padding:0.5em 0;font-size:1.02em;list-style-position:outside}"
    ".card>summary .num{color:#57606a;font-size:0.92em;margin-left:0.4em}"
    ".sig{color:#0b5394;font-weight:600}.nsig{color:#57606a}"
    ".dir{margin:0.2em 0 0.6em;color:#24292f}"
    ".nums{display:flex;flex-wrap:wrap;gap:0.4em 1.6em;margin:0.4em 0}"
    ".nums div{min-width:10em}.nums b{display:block;font-size:1.05em}"
    ".def{color:#57606a;font-size:0.85em;margin:0.15em 0 0.6em}"
    ".pair{display:grid;grid-template-columns:1fr 1fr;gap:0.6em;margin:0.3em 0}"
    ".resp{border:1px solid #d0d7de;border-radius:6px;padding:0.4em 0.6em;white-space:pre-wrap;"
    "font-size:0.9em;max-height:14em;overflow:auto;background:#fff}"
    ".resp.carry{border-left:5px solid #2b7bba;background:#f3f8fc}"
    ".resp .tag{font-weight:600;color:#24292f;display:block;margin-bottom:0.2em;white-space:normal}"
    ".prompt{color:#57606a;font-size:0.85em;white-space:pre-wrap;max-height:6em;overflow:auto;"
    "border-left:3px solid #d0d7de;padding-left:0.5em;margin-top:0.8em}"
    ".ex-meta{font-size:0.82em;color:#57606a;margin-bottom:0.3em}"
    "ul.links{margin:0.2em 0 0.6em;padding-left:1.2em}"
)


def feature_cards(features: Sequence[FeatureResult], synthetic: bool, min_examples: int = 5) -> str:
    """Cards for the features that fire on at least ``min_examples`` distinct pairs, most important
    first; rarer and silent ones listed in one line each."""
    ordered = feature_order(features)
    carded = [f for f in ordered if len(f.examples or ()) >= min_examples]
    rare = [f for f in ordered if 0 < len(f.examples or ()) < min_examples
            or (not f.examples and (field(f, "share_active") or 0) > 0)]
    silent = [f for f in ordered if (field(f, "share_active") or 0) == 0 and not f.examples]
    parts = [_card(f, i < _OPEN, synthetic) for i, f in enumerate(carded)]
    if rare:
        parts.append(f"<p class='def'>Features that fire on fewer than {min_examples} distinct pairs (too rare to "
                     f"read): {', '.join(str(f.feature) for f in rare)}.</p>")
    if silent:
        parts.append(f"<p class='def'>Features that never fire: {', '.join(str(f.feature) for f in silent)}.</p>")
    return "".join(parts)


def _card(f: FeatureResult, is_open: bool, synthetic: bool) -> str:
    esc = html.escape
    title = esc(f.description or "(not described)")
    cls = "sig" if is_significant(f) else "nsig"
    effect = f"<span class='{cls}'>effect {signed(f.coefficient)}</span>"
    head = (f"<summary><b>Feature {f.feature}</b> · {title}<span class='num'>{effect} · "
            f"{esc(_test_text(f))} · active in {_pct(f.share_active)} of pairs</span></summary>")
    body = []
    if f.direction:
        body.append(f"<p class='dir'>{esc(f.direction[0].upper() + f.direction[1:])}.</p>")
    body.append(_numbers(f, synthetic))
    if f.descriptions:
        body.append("<h4>Descriptions</h4>" + "".join(_description(d) for d in f.descriptions))
        body.append(f"<p class='def'>{esc(DEFINITIONS['fidelity'])}</p>")
    if f.properties:
        items = "".join(f"<li><b>{esc(p.name)}</b>: r = {signed(p.r, 2)} [{signed(p.low, 2)}, "
                        f"{signed(p.high, 2)}] — {'A' if p.r > 0 else 'B'} has more where it is positive</li>"
                        for p in f.properties)
        body.append(f"<h4>Goes with</h4><ul class='links'>{items}</ul>"
                    f"<p class='def'>{esc(DEFINITIONS['properties'])}</p>")
    if f.examples:
        side = next((d.side for d in reversed(f.descriptions or []) if d.side), "A")
        body.append(_examples(f.examples, side))
    return f"<details class='card'{' open' if is_open else ''}>{head}{''.join(body)}</details>"


def _numbers(f: FeatureResult, synthetic: bool) -> str:
    ci = effect_interval(f)
    cells = [("Effect (length-controlled)", f"{signed(f.coefficient)} [{signed(ci[0])}, {signed(ci[1])}]"
              if ci else signed(f.coefficient), DEFINITIONS["effect"]),
             ("Test", html.escape(_test_text(f, both=True)), DEFINITIONS["p_value"]),
             ("Active", f"{_pct(f.share_active)} of pairs", DEFINITIONS["share_active"])]
    if synthetic and f.matched_attribute:
        cells.append(("Planted attribute", f"{html.escape(f.matched_attribute)} (r = "
                      f"{signed(f.attribute_correlation, 2)})", "Synthetic data: the planted attribute whose "
                      "A − B difference this feature tracks best."))
    items = "".join(f"<div title='{html.escape(d)}'><span class='def'>{html.escape(k)}</span><b>{v}</b></div>"
                    for k, v, d in cells)
    return f"<div class='nums'>{items}</div>"


def _description(d: DescriptionResult) -> str:
    esc = html.escape
    fid = "fidelity not measured"
    if d.fidelity_n:
        fid = (f"fidelity {signed(d.fidelity, 2)} on {d.fidelity_n} {esc(d.fidelity_on or 'held-out pairs')}"
               if _finite(d.fidelity) else f"fidelity undefined on {d.fidelity_n} pairs (constant judgements)")
    seen = f", from {d.n_pairs} distinct training pairs" if d.n_pairs else ""
    return (f"<p><b>{esc(d.source)}</b>: {esc(d.text)}<br><span class='def'>{fid}{seen}</span></p>")


def _examples(examples: Sequence[Example], side: str) -> str:
    """Examples by sign; the response that shows more of the description (``side`` when the
    activation is positive, the other when negative) is highlighted."""
    out = [f"<h4>Pairs where it fires most ({len(examples)})</h4>"]
    for sign, words in ((1, "positive"), (-1, "negative")):
        group = [e for e in examples if e.activation * sign > 0]
        if not group:
            continue
        shows = side if sign > 0 else _other(side)
        shown = "".join(_example(e, shows) for e in group[:_SHOWN])
        rest = "".join(_example(e, shows) for e in group[_SHOWN:])
        more = f"<details><summary>{len(group) - _SHOWN} more</summary>{rest}</details>" if rest else ""
        out.append(f"<p class='def'>{len(group)} with a {words} activation: response {shows} shows it more "
                   "(highlighted)</p>" + shown + more)
    return "".join(out)


def _other(side: str) -> str:
    return "B" if side == "A" else "A"


def _example(e: Example, shows: str) -> str:
    esc = html.escape

    def response(name: str, text: str | None) -> str:
        tags = [f"Response {name}"] + (["chosen ✓"] if e.chosen == name else [])
        cls = "resp carry" if name == shows else "resp"
        return f"<div class='{cls}'><span class='tag'>{' · '.join(tags)}</span>{esc(text or '')}</div>"

    chosen = "a tie" if e.chosen == "tie" else f"{e.chosen} was chosen"
    if (e.n_judgments or 1) > 1:
        chosen += f" here (the same texts were judged {e.n_judgments} times)"
    prompt = f"<div class='prompt'>{esc(e.prompt)}</div>" if e.prompt else ""
    return (f"{prompt}<div class='ex-meta'>pair {e.pair} · activation {signed(e.activation, 2)} · {shows} shows it "
            f"more · {chosen}</div><div class='pair'>{response('A', e.response_a)}{response('B', e.response_b)}</div>")


def _test_text(f: FeatureResult, both: bool = False) -> str:
    p, q = field(f, "p_value"), field(f, "q_value")
    parts = ([f"p {p_text(p)}"] if p is not None and (both or q is None) else []) + (
        [f"q {p_text(q)}"] if q is not None else [])
    if field(f, "bonferroni"):
        parts.append("passes Bonferroni")
    return ", ".join(parts) or "not tested"


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def _pct(v) -> str:
    if not _finite(v):
        return "–"
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"
