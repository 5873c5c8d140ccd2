"""The shape of a report's JSON: every key in order, scalars reduced to their kind.

Used to check that the JSON users see keeps its layout (``data/report_structure.json`` was
recorded from the reports before the protocol became typed steps): :func:`missing` lists what
of a recorded structure a new report lost — keys, their order, their kinds. New keys are fine
(records grow by adding fields).
"""
from __future__ import annotations


def structure(value):
    """Keys in order for objects; for arrays the merged structure of their items; kinds for scalars.

    Items of an array are merged (the union of their keys, sorted) because which items carry an
    optional key (a dead feature has no description) depends on the trained encoder. Numbers
    and null are one kind: NaN is written as null.
    """
    if isinstance(value, dict):
        return [[key, structure(item)] for key, item in value.items()]
    if isinstance(value, list):
        return ["array", _merge([structure(item) for item in value])]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    return "number"


def _merge(items: list):
    if not items:
        return "empty"
    if all(isinstance(i, list) and (not i or isinstance(i[0], list)) for i in items):  # objects
        merged: dict = {}
        for obj in items:
            for key, sub in obj:
                merged.setdefault(key, []).append(sub)
        return [[key, _merge(subs)] for key, subs in sorted(merged.items())]
    kinds = []
    for item in items:
        if item not in kinds:
            kinds.append(item)
    if len(kinds) > 1 and ["array", "empty"] in kinds:  # an empty array fits any array
        kinds.remove(["array", "empty"])
    return kinds[0] if len(kinds) == 1 else sorted(kinds, key=repr)


def missing(recorded, current, path: str = "") -> list[str]:
    """What of ``recorded`` ``current`` lacks: a key, the recorded order of keys, or a kind."""
    if _is_object(recorded):
        if not _is_object(current):
            return [f"{path or 'top'}: no longer an object"]
        keys = [k for k, _ in current]
        found, problems, last = dict(current), [], -1
        for key, sub in recorded:
            if key not in found:
                problems.append(f"{path}.{key}: missing")
                continue
            if keys.index(key) < last:
                problems.append(f"{path}.{key}: out of the recorded order")
            last = keys.index(key)
            problems += missing(sub, found[key], f"{path}.{key}")
        return problems
    if isinstance(recorded, list) and recorded and recorded[0] == "array":
        if not (isinstance(current, list) and current and current[0] == "array"):
            return [f"{path}: no longer an array"]
        if recorded[1] == "empty" or current[1] == "empty":
            return []
        return missing(recorded[1], current[1], path + "[]")
    return [] if recorded == current else [f"{path}: was {recorded!r}, now {current!r}"]


def _is_object(value) -> bool:
    return isinstance(value, list) and (not value or (isinstance(value[0], list) and len(value[0]) == 2
                                                      and isinstance(value[0][0], str) and value[0][0] != "array"))
