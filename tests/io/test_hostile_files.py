"""Files that are well-formed but hold values a model would trust, JSON nested to crash the
parser, whitespace the checksum did not see, and FIFOs (issue 15, items 4, 6 and 7).

The crafted model files carry valid checksums (written by the same helper as real files), so
only the value checks can refuse them; each must be a FormatError naming the file and the field.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import save

import likeable as lk
from likeable._io import tensors_from_bytes, tensors_to_bytes

SOURCE = "crafted.file"


def users_model(rng, controls=False):
    codes = lk.SparseCodes.from_scipy(sp.random(60, 6, density=0.4, format="csr", random_state=rng))
    labels = rng.integers(0, 2, 60)
    ctl = rng.standard_normal((60, 1)) if controls else None
    return lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, ["a", "b", "c"] * 20, ctl)


def crafted(model, change) -> bytes:
    """``model``'s file with ``change(tensors, meta)`` applied, checksum recomputed."""
    tensors, meta = tensors_from_bytes(model.to_bytes())
    tensors = {k: np.array(v) for k, v in tensors.items()}
    change(tensors, meta)
    return tensors_to_bytes(tensors, meta)


def set_path(meta, path, value):
    *head, last = path
    for key in head:
        meta = meta[key]
    meta[last] = value


USER_CASES = {
    "NaN intercept": (lambda t, m: set_path(m, ("population", "intercept"), float("nan")), "intercept"),
    "infinite intercept": (lambda t, m: set_path(m, ("population", "intercept"), float("inf")), "intercept"),
    "NaN control coefficient": (lambda t, m: t["population_control_coef"].__setitem__(0, np.nan),
                                "population_control_coef"),
    "NaN offsets": (lambda t, m: t["offsets"].__setitem__((0, 0), np.nan), "offsets"),
    "NaN label": (lambda t, m: t["history_labels"].__setitem__(0, np.nan), "history_labels"),
    "label 2": (lambda t, m: t["history_labels"].__setitem__(0, 2.0), "history_labels"),
    "label 0.5": (lambda t, m: t["history_labels"].__setitem__(0, 0.5), "history_labels"),
    "threads 100000": (lambda t, m: set_path(m, ("params", "threads"), 100_000), "params"),
    "threads -1": (lambda t, m: set_path(m, ("params", "threads"), -1), "params"),
    "Infinity in n_iter": (lambda t, m: set_path(m, ("population", "n_iter"), float("inf")), "n_iter"),
    "Infinity in n_features": (lambda t, m: set_path(m, ("n_features",), float("inf")), "n_features"),
    "float n_not_converged": (lambda t, m: set_path(m, ("n_not_converged",), 1.5), "n_not_converged"),
    "string converged": (lambda t, m: set_path(m, ("population", "converged"), "no"), "converged"),
    "bool user id": (lambda t, m: set_path(m, ("user_ids",), [True, "b", "c"]), "user_ids"),
    "repeated user id": (lambda t, m: set_path(m, ("user_ids",), ["a", "a", "c"]), "user_ids"),
    "user out of range": (lambda t, m: t["history_users"].__setitem__(0, 3), "history_users"),
    "history id out of range": (lambda t, m: t["history_indices"].__setitem__(0, 99), "history"),
    "history indptr as int32": (lambda t, m: t.__setitem__("history_indptr", t["history_indptr"].astype(np.int32)),
                                "history_indptr"),
    "NaN shrinkage": (lambda t, m: t.__setitem__("shrinkage", np.full(6, np.nan)), "shrinkage"),
    "unknown parameter": (lambda t, m: set_path(m, ("params", "speed"), 3), "params"),
}


@pytest.mark.parametrize("case", list(USER_CASES))
def test_user_preferences_values_are_checked(rng, case):
    change, field = USER_CASES[case]
    data = crafted(users_model(rng, controls=True), change)
    with pytest.raises(lk.FormatError) as info:
        lk.UserPreferences.from_bytes(data, SOURCE)
    assert SOURCE in str(info.value) and field in str(info.value), str(info.value)


POPULATION_CASES = {
    "NaN intercept": (lambda t, m: set_path(m, ("intercept",), float("nan")), "intercept"),
    "Infinity in n_iter": (lambda t, m: set_path(m, ("n_iter",), float("inf")), "n_iter"),
    "object classes": (lambda t, m: set_path(m, ("classes_dtype",), "O"), "classes_dtype"),
    "unknown dtype": (lambda t, m: set_path(m, ("classes_dtype",), "float128x"), "classes_dtype"),
    "one class twice": (lambda t, m: set_path(m, ("classes",), [1, 1]), "classes"),
    "three classes": (lambda t, m: set_path(m, ("classes",), [0, 1, 2]), "classes"),
    "NaN class": (lambda t, m: (set_path(m, ("classes",), [0.0, float("nan")]),
                                set_path(m, ("classes_dtype",), "float64")), "classes"),
    "threads 100000": (lambda t, m: set_path(m, ("params", "threads"), 100_000), "params"),
    "NaN coefficient": (lambda t, m: t["coef"].__setitem__(0, np.nan), "coef"),
}


@pytest.mark.parametrize("case", list(POPULATION_CASES))
def test_preference_model_values_are_checked(rng, case):
    change, field = POPULATION_CASES[case]
    codes = lk.SparseCodes.from_scipy(sp.random(40, 5, density=0.4, format="csr", random_state=rng))
    data = crafted(lk.PreferenceModel().fit(codes, rng.integers(0, 2, 40)), change)
    with pytest.raises(lk.FormatError) as info:
        lk.PreferenceModel.from_bytes(data, SOURCE)
    assert SOURCE in str(info.value) and field in str(info.value), str(info.value)


BANK_CASES = {
    "names as one string": (lambda t, m: set_path(m, ("names",), "ab"), "names"),
    "Infinity l2": (lambda t, m: set_path(m, ("l2",), float("inf")), "l2"),
    "negative l2": (lambda t, m: set_path(m, ("l2",), -1.0), "l2"),
    "NaN direction": (lambda t, m: t["directions"].__setitem__((0, 0), np.nan), "directions"),
    "float64 intercepts": (lambda t, m: t.__setitem__("intercepts", t["intercepts"].astype(np.float64)), "intercepts"),
}


@pytest.mark.parametrize("case", list(BANK_CASES))
def test_attribute_bank_values_are_checked(rng, case):
    change, field = BANK_CASES[case]
    bank = lk.AttributeBank(["a", "b"]).fit(rng.standard_normal((30, 4)), rng.standard_normal((30, 2)))
    with pytest.raises(lk.FormatError) as info:
        lk.AttributeBank.from_bytes(crafted(bank, change), SOURCE)
    assert SOURCE in str(info.value) and field in str(info.value), str(info.value)


def test_encoder_values_are_checked(rng):
    X = rng.standard_normal((60, 5)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=8, k=2, seed=0).fit(X, epochs=1, progress=False)
    for change, field in [(lambda t, m: set_path(m, ("k",), float("inf")), "k"),
                          (lambda t, m: set_path(m, ("kind",), 5), "kind"),
                          (lambda t, m: t["W_dec"].__setitem__((0, 0), np.nan), "W_dec")]:
        with pytest.raises(lk.FormatError, match=field):
            lk.SparseEncoder.from_bytes(crafted(enc, change), SOURCE)


@pytest.mark.parametrize("cls", [lk.UserPreferences, lk.PreferenceModel, lk.AttributeBank])
def test_a_file_without_its_checksum_is_refused(rng, cls):
    if cls is lk.UserPreferences:
        model = users_model(rng)
    elif cls is lk.PreferenceModel:
        codes = lk.SparseCodes.from_scipy(sp.random(40, 5, density=0.4, format="csr", random_state=rng))
        model = lk.PreferenceModel().fit(codes, rng.integers(0, 2, 40))
    else:
        model = lk.AttributeBank(["a"]).fit(rng.standard_normal((20, 3)), rng.standard_normal((20, 1)))
    tensors, meta = tensors_from_bytes(model.to_bytes())
    stripped = save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                    metadata={"likeable": json.dumps(meta, sort_keys=True)})
    with pytest.raises(lk.FormatError, match="checksum"):
        cls.from_bytes(stripped, SOURCE)


def test_the_encoder_file_from_before_checksums_still_loads():
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "data" / "encoder_v1.safetensors"
    assert lk.SparseEncoder.load(fixture).n_features == 10


@pytest.mark.parametrize("cls", [lk.UserPreferences, lk.PreferenceModel, lk.AttributeBank, lk.SparseEncoder])
def test_whitespace_changed_in_a_header_is_caught(rng, cls):
    """The checksum covers the parsed header; a changed space (padding into a newline or a tab)
    parses the same. The header must be written as safetensors writes it."""
    if cls is lk.SparseEncoder:
        X = rng.standard_normal((60, 5)).astype(np.float32)
        data = lk.SparseEncoder(n_features=8, k=2, seed=0).fit(X, epochs=1, progress=False).to_bytes()
    elif cls is lk.UserPreferences:
        data = users_model(rng).to_bytes()
    elif cls is lk.PreferenceModel:
        codes = lk.SparseCodes.from_scipy(sp.random(40, 5, density=0.4, format="csr", random_state=rng))
        data = lk.PreferenceModel().fit(codes, rng.integers(0, 2, 40)).to_bytes()
    else:
        data = lk.AttributeBank(["a"]).fit(rng.standard_normal((20, 3)), rng.standard_normal((20, 1))).to_bytes()
    header_len = int.from_bytes(data[:8], "little")
    header = data[8:8 + header_len]
    outside = [i for i in range(len(header)) if header[i] == 0x20 and i >= len(header.rstrip(b" "))]
    if not outside:  # no padding: make some by inserting a space after the opening brace
        data = data[:8] + b"{ " + data[9:]
        with pytest.raises(lk.FormatError):
            cls.from_bytes(data)
        return
    for i in outside:
        for byte in b"\t\n\r":
            damaged = bytearray(data)
            damaged[8 + i] = byte
            with pytest.raises(lk.FormatError, match="whitespace"):
                cls.from_bytes(bytes(damaged))
    assert type(cls.from_bytes(data)) is cls


# --- deeply nested JSON ----------------------------------------------------------------------
def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def header_file(header: str) -> bytes:
    raw = header.encode()
    return len(raw).to_bytes(8, "little") + raw


@pytest.mark.parametrize("cls", [lk.UserPreferences, lk.PreferenceModel, lk.AttributeBank, lk.SparseEncoder])
def test_a_deeply_nested_safetensors_header_is_a_format_error(cls):
    # Before: RecursionError from json.loads.
    for header in ('{"__metadata__": ' + nested(200_000) + "}", '{"x": {"dtype": "F32", "shape": ' + nested(5_000) + "}}"):
        with pytest.raises(lk.FormatError, match="nest"):
            cls.from_bytes(header_file(header), SOURCE)


def test_deeply_nested_metadata_inside_the_header_is_a_format_error(rng):
    from likeable._io import _checksum, _parse_header

    deep = nested(50_000)  # a JSON string inside the header, parsed on its own
    arrays = {"coef": np.zeros(3)}
    draft = save(arrays, metadata={"likeable": deep})
    header, start = _parse_header(draft, "<draft>")
    data = save(arrays, metadata={"likeable": deep, "likeable_crc32": _checksum(header, memoryview(draft)[start:])})
    with pytest.raises(lk.FormatError, match="nest"):
        lk.PreferenceModel.from_bytes(data, SOURCE)


def test_a_deeply_nested_jsonl_line_is_refused_before_pyarrow_sees_it(isolated, tmp_path):
    # Before: pyarrow's JSON reader overflowed the stack (SIGSEGV) on one line nested 20,000 deep.
    path = tmp_path / "deep.jsonl"
    path.write_text('{"prompt": "a", "response_a": "b", "response_b": "c", "label": 1}\n'
                    + '{"prompt": ' + nested(20_000) + "}\n")
    gz = tmp_path / "deep.jsonl.gz"
    import gzip

    gz.write_bytes(gzip.compress(path.read_bytes()))
    output = isolated.survives(f"""
        import likeable as lk
        for path in ({str(path)!r}, {str(gz)!r}):
            try:
                lk.datasets.load(path)
                print("RETURNED")
            except lk.FormatError as exc:
                print("REFUSED", exc)
        print("SURVIVED")
    """)
    assert output.count("REFUSED") == 2 and "nests" in output


def test_nested_configs_and_reports_are_format_errors(tmp_path):
    folder = tmp_path / "sae"
    folder.mkdir()
    (folder / "cfg.json").write_text('{"architecture": "topk", "k": ' + nested(100_000) + "}")
    (folder / "sae_weights.safetensors").write_bytes(save({"W_enc": np.zeros((2, 3), np.float32)}))
    with pytest.raises(lk.FormatError, match="nest"):
        lk.SparseEncoder.load(folder)
    report = tmp_path / "report.json"
    report.write_text('{"x": ' + nested(100_000) + "}")
    with pytest.raises(lk.FormatError, match="nest"):
        lk.Report.from_json(str(report))
    with pytest.raises(lk.FormatError, match="nest"):
        lk.Report.from_json('{"x": ' + nested(100_000) + "}")


@pytest.mark.parametrize("field, value", [("k", float("inf")), ("k", "5"), ("k", True), ("k", float("nan")),
                                          ("k", -2), ("activation_fn_kwargs", [1, 2])])
def test_sae_lens_config_values_are_format_errors(tmp_path, rng, field, value):
    d, m = 4, 6
    cfg = {"architecture": "topk", "d_in": d, "d_sae": m, "k": 2, "apply_b_dec_to_input": True,
           "normalize_activations": "none"}
    if field == "activation_fn_kwargs":
        del cfg["k"]
        cfg["architecture"] = "standard"
        cfg["activation_fn_str"] = "topk"
    cfg[field] = value
    folder = tmp_path / "sae"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps(cfg))
    weights = {"W_enc": rng.standard_normal((d, m)), "b_enc": np.zeros(m), "W_dec": rng.standard_normal((m, d)),
               "b_dec": np.zeros(d)}
    (folder / "sae_weights.safetensors").write_bytes(save({k: v.astype(np.float32) for k, v in weights.items()}))
    with pytest.raises(lk.FormatError):
        lk.SparseEncoder.load(folder)


def test_sparsify_k_of_infinity_is_a_format_error(tmp_path, rng):
    folder = tmp_path / "coder"
    folder.mkdir()
    (folder / "cfg.json").write_text('{"activation": "topk", "k": Infinity, "d_in": 4}')
    (folder / "sae.safetensors").write_bytes(save({
        "encoder.weight": rng.standard_normal((6, 4)).astype(np.float32), "encoder.bias": np.zeros(6, np.float32),
        "W_dec": rng.standard_normal((6, 4)).astype(np.float32), "b_dec": np.zeros(4, np.float32)}))
    with pytest.raises(lk.FormatError, match="'k'"):  # before: OverflowError
        lk.SparseEncoder.load(folder)


# --- FIFOs and devices: refused, never waited on -----------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_loaders_refuse_a_fifo_instead_of_blocking(isolated, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    names = {}
    for name in ("index.sidx", "users.likeable", "data.jsonl", "data.csv", "data.parquet", "report.json"):
        names[name] = tmp_path / name
        os.mkfifo(names[name])
    sae = tmp_path / "sae"
    sae.mkdir()
    os.mkfifo(sae / "cfg.json")
    output = isolated.survives(f"""
        import likeable as lk
        calls = {{
            "SparseIndex.load": lambda: lk.SparseIndex.load({str(names["index.sidx"])!r}),
            "SparseIndex.load mmap": lambda: lk.SparseIndex.load({str(names["index.sidx"])!r}, mmap=True),
            "UserPreferences.load": lambda: lk.UserPreferences.load({str(names["users.likeable"])!r}),
            "PreferenceModel.load": lambda: lk.PreferenceModel.load({str(fifo)!r}),
            "AttributeBank.load": lambda: lk.AttributeBank.load({str(fifo)!r}),
            "SparseEncoder.load": lambda: lk.SparseEncoder.load({str(fifo)!r}),
            "SparseEncoder.load folder": lambda: lk.SparseEncoder.load({str(sae)!r}),
            "datasets.load jsonl": lambda: lk.datasets.load({str(names["data.jsonl"])!r}),
            "datasets.load csv": lambda: lk.datasets.load({str(names["data.csv"])!r}),
            "datasets.load parquet": lambda: lk.datasets.load({str(names["data.parquet"])!r}),
            "Report.from_json": lambda: lk.Report.from_json({str(names["report.json"])!r}),
        }}
        for name, call in calls.items():
            try:
                call()
                print("RETURNED", name)
            except (ValueError, OSError) as exc:  # a cfg.json that is a FIFO: "no cfg.json" is fine too
                print("REFUSED", name, "|", exc)
        print("SURVIVED")
    """, timeout=120)
    assert output.count("REFUSED") == 11, output
    assert "not a regular file" in output
