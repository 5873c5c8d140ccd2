"""The shape of a report's JSON: every key in order, scalars reduced to their kind.

Used to check that the JSON users see keeps its layout (``data/report_structure.json`` was
recorded from the reports before the protocol became typed steps): :func:`keeps` says whether
every recorded key is still there, in the same order and of the same kind; sections and keys
added since are allowed.
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


def keeps(new, recorded) -> bool:
    """Whether the structure ``new`` holds everything of ``recorded``: an object's recorded keys
    in the same relative order (others may sit between them), arrays by their merged items."""
    if isinstance(recorded, list) and recorded and recorded[0] == "array":
        return isinstance(new, list) and bool(new) and new[0] == "array" and (
            recorded[1] == "empty" or new[1] != "empty" and keeps(new[1], recorded[1]))
    if _is_object(recorded):
        if not _is_object(new):
            return False
        position = {key: i for i, (key, _) in enumerate(new)}
        places = [position.get(key) for key, _ in recorded]
        return None not in places and places == sorted(places) and all(
            keeps(new[place][1], sub) for place, (_, sub) in zip(places, recorded))
    return new == recorded


def _is_object(value) -> bool:
    return isinstance(value, list) and (not value or isinstance(value[0], list))
