"""The estimator contract: scikit-learn's parameters (``get_params``/``set_params``) and tags.

Every estimator stores each ``__init__`` argument under its own name, exactly as given, and
checks the whole set in ``_check_params``, which ``__init__``, ``set_params`` and ``fit`` call:
an impossible setting fails where it is written, and ``set_params`` changes nothing when it
fails. scikit-learn is not a dependency: its tags are built only when scikit-learn asks.
"""
from __future__ import annotations

import inspect
from typing import Any


class Estimator:
    """``get_params``/``set_params`` with scikit-learn's semantics, read from ``__init__``'s signature."""

    #: scikit-learn checks this estimator is known to fail, each with the reason (see
    #: :func:`sklearn.utils.estimator_checks.check_estimator`'s ``expected_failed_checks``).
    _expected_failed_checks: dict[str, str] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def _check_params(self, params: dict[str, Any]) -> None:
        """Raise ValueError/TypeError for an impossible combination of parameter values."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters by name; with ``deep``, also those of estimator-valued parameters as ``name__param``."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{key}", inner) for key, inner in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> "Estimator":
        """Set parameters (``name`` or ``name__inner`` for a nested estimator); returns self.

        Unknown names and impossible values raise before anything changes.
        """
        if not params:
            return self
        names = self._param_names()
        own: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, delim, inner = key.partition("__")
            if name not in names:
                raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {names!r}.")
            if delim:
                nested.setdefault(name, {})[inner] = value
            else:
                own[name] = value
        self._check_params({**self.get_params(deep=False), **own})
        for name, inner in nested.items():
            target = own.get(name, getattr(self, name))
            if not hasattr(target, "set_params"):
                raise ValueError(f"parameter {name!r} of {type(self).__name__} is not an estimator: "
                                 f"cannot set {name}__{next(iter(inner))}")
            target.set_params(**inner)
        for name, value in own.items():
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        """Check the current parameters (``fit`` calls it: attributes may have been assigned directly)."""
        self._check_params(self.get_params(deep=False))

    # --- scikit-learn tags: built only when scikit-learn asks -------------------------------
    #: "transformer", "classifier" or None; whether fit needs y; whether X may be scipy.sparse.
    _sklearn_kind: str | None = None
    _sklearn_requires_y = False
    _sklearn_sparse = False

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags, TransformerTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=self._sklearn_requires_y),
                    input_tags=InputTags(sparse=self._sklearn_sparse))
        if self._sklearn_kind == "classifier":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=False)  # preferences are binary
        elif self._sklearn_kind == "transformer":
            tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])  # outputs are float32
        return tags

    def _more_tags(self) -> dict:  # scikit-learn < 1.6
        return {"_xfail_checks": dict(self._expected_failed_checks), "requires_y": self._sklearn_requires_y}


def renamed_arguments(**old_to_new: str):
    """Keep the pre-scikit-learn keyword names working (``fit(pair_codes=..., labels=...)``).

    Public names are a contract: an old keyword is mapped to its new name with a
    ``DeprecationWarning``; passing both is a ``TypeError``.
    """
    import functools
    import warnings

    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            used = [old for old in old_to_new if old in kwargs]
            for old in used:
                new = old_to_new[old]
                if new in kwargs:
                    raise TypeError(f"{method.__name__}() got both {old!r} and its new name {new!r}")
                kwargs[new] = kwargs.pop(old)
            if used:
                was = ", ".join(f"{old}=..." for old in used)
                now = ", ".join(f"{old_to_new[old]}=..." for old in used)
                warnings.warn(f"{method.__name__}({was}) is now {method.__name__}({now})",
                              DeprecationWarning, stacklevel=2)
            return method(self, *args, **kwargs)
        return call
    return wrap
