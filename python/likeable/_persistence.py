"""One persistence helper: ``save``/``load``/``to_bytes``/``from_bytes`` and pickling.

An estimator provides ``to_bytes()`` and ``from_bytes(data, source)`` (its file format) and
says whether it is fitted; this mixin writes files atomically, reads them with friendly errors,
and pickles through the same bytes (an unfitted estimator pickles its parameters alone).
"""
from __future__ import annotations

from typing import Any

from ._core import FormatError
from ._io import atomic_write_bytes, read_file_bytes
from ._validation import fspath

PICKLE_VERSION = 1


class Persistent:
    """save/load/pickle on top of the estimator's ``to_bytes``/``from_bytes``."""

    #: Attributes kept across pickling that the file format does not hold (e.g. training history).
    _pickle_extras: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:  # pragma: no cover - every estimator defines it
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>"):  # pragma: no cover
        raise NotImplementedError

    def _is_fitted(self) -> bool:  # pragma: no cover
        raise NotImplementedError

    def _param_state(self) -> dict[str, Any]:
        return self.get_params(deep=False) if hasattr(self, "get_params") else {}

    def save(self, path) -> None:
        """Write the file atomically (a temporary file in the same folder, fsync, rename)."""
        atomic_write_bytes(fspath(path), self.to_bytes())

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`; damage raises :class:`likeable.FormatError`."""
        path = fspath(path)
        return cls.from_bytes(read_file_bytes(path), source=path)

    def __getstate__(self) -> dict:
        state: dict[str, Any] = {"ser_version": PICKLE_VERSION, "params": self._param_state()}
        if self._is_fitted():
            state["bytes"] = self.to_bytes()
        state.update((name, self.__dict__[name]) for name in self._pickle_extras if name in self.__dict__)
        return state

    def __setstate__(self, state: dict) -> None:
        """Checked as a file is: a pickle is data from elsewhere; damage or impossible values
        (e.g. ``threads`` above likeable.max_threads()) raise FormatError."""
        if not isinstance(state, dict):
            raise FormatError(f"<pickle>: a {type(self).__name__} pickle holds a dict, got {type(state).__name__}")
        version = state.get("ser_version", PICKLE_VERSION)  # pickles from before this helper have none
        if version != PICKLE_VERSION:
            raise ValueError(f"unknown {type(self).__name__} pickle version {version!r}")
        # earlier pickles named the bytes "data" (SparseIndex) or "weights" (SparseEncoder)
        blob = state.get("bytes", state.get("data", state.get("weights")))
        params = state.get("params", {})
        if not isinstance(params, dict):
            raise FormatError(f"<pickle>: the {type(self).__name__} parameters are not a dict")
        try:
            if blob is not None:
                self.__dict__.update(type(self).from_bytes(blob, "<pickle>").__dict__)
            else:
                type(self).__init__(self, **params)
            # Parameters as they were: pickling must not fail on an estimator that exists.
            self.__dict__.update(params)
            self.__dict__.update((name, state[name]) for name in self._pickle_extras if name in state)
            self._check_restored()
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"<pickle>: {type(self).__name__} parameters this likeable refuses ({exc})") from None

    def _check_restored(self) -> None:
        """Checks what __setstate__ restored besides the file (parameters and extras)."""
        if hasattr(self, "_validate_params"):
            self._validate_params()
