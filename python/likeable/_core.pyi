"""
likeable's compiled core (private: use the likeable package)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['FormatError', 'SaeTrainer', 'SparseIndexCore', 'blas_config', 'brute_force_search', 'build_options', 'encoder_decode', 'encoder_encode', 'encoder_folded_bias', 'encoder_folds_decoder_bias', 'encoder_reconstruction_stats', 'feature_effects', 'fit_logistic', 'fit_user_offsets', 'gather_weights', 'openmp', 'predict_pairs', 'resolve_threads', 'score_users_items', 'validate_csr']
class FormatError(ValueError):
    pass
class SaeTrainer:
    """
    Adam state and dead-latent counters of one SAE fit.
    """
    def __init__(self, n_dims: typing.SupportsInt | typing.SupportsIndex, n_features: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, batch_topk: bool, signed: bool, prefixes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], aux_k: typing.SupportsInt | typing.SupportsIndex, aux_coef: typing.SupportsFloat | typing.SupportsIndex, dead_after_rows: typing.SupportsInt | typing.SupportsIndex, lr: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def run_epoch(self, W_encT: typing.Any, b_enc: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threshold: typing.Any, X: typing.Any, order: typing.Any, batch_size: typing.SupportsInt | typing.SupportsIndex, norm: typing.SupportsFloat | typing.SupportsIndex) -> dict:
        """
        One epoch over X[order] in batches; updates the weight arrays in place.
        """
class SparseIndexCore:
    """
    Compiled inverted index (use likeable.SparseIndex).
    """
    @staticmethod
    def from_bytes(data: bytes, verify: bool) -> SparseIndexCore:
        ...
    @staticmethod
    def load(path: str, mmap: bool, verify: bool) -> SparseIndexCore:
        ...
    def __init__(self, codes: typing.Any, approximate: bool, n_postings: typing.SupportsInt | typing.SupportsIndex, block_fraction: typing.SupportsFloat | typing.SupportsIndex, summary_energy: typing.SupportsFloat | typing.SupportsIndex, doc_cut: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def block_lengths(self) -> numpy.typing.NDArray[numpy.int64]:
        ...
    def forward_csr(self) -> typing.Any:
        """
        Copies of the float32 forward CSR (indptr, indices, values), or None when it is compact.
        """
    def save(self, path: str) -> None:
        ...
    def search(self, queries: typing.Any, dense: bool, k: typing.SupportsInt | typing.SupportsIndex, query_cut: typing.SupportsInt | typing.SupportsIndex, heap_factor: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
        ...
    def to_bytes(self) -> bytes:
        ...
    def top_activations(self, feature: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, sign: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
        ...
    @property
    def approximate(self) -> bool:
        ...
    @property
    def n_blocks(self) -> int:
        ...
    @property
    def n_features(self) -> int:
        ...
    @property
    def n_postings_stored(self) -> int:
        ...
    @property
    def n_rows(self) -> int:
        ...
    @property
    def n_summary_entries(self) -> int:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def nnz(self) -> int:
        ...
    @property
    def params(self) -> dict:
        ...
    @property
    def signed(self) -> bool:
        ...
def _crc32c(data: bytes) -> int:
    """
    CRC32C of bytes (the index file checksum; exposed for tests).
    """
def blas_config() -> str:
    ...
def brute_force_search(codes: typing.Any, queries: typing.Any, dense: bool, k: typing.SupportsInt | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
    """
    Reference search: float64 dot products with every row (slow; for tests).
    """
def encoder_decode(codes: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    codes @ W_dec + b_dec as float32 (n_rows x d).
    """
def encoder_encode(X: typing.Any, W_encT: typing.Any, b_enc: typing.Any, b_dec: typing.Any, threshold: typing.Any, k: typing.SupportsInt | typing.SupportsIndex, signed: bool, use_threshold: bool, threads: typing.SupportsInt | typing.SupportsIndex = 0, tile_rows: typing.SupportsInt | typing.SupportsIndex = 0, tile_features: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.int32], numpy.typing.NDArray[numpy.float32]]:
    """
    Sparse codes (indptr, indices, values) of X; rows sorted by feature id.
    """
def encoder_folded_bias(W_encT: typing.Any, b_enc: typing.Any, b_dec: typing.Any) -> numpy.typing.NDArray[numpy.float32]:
    """
    b_enc - b_dec @ W_enc accumulated in float64 (the fold the CPU and GPU paths share).
    """
def encoder_folds_decoder_bias(n_features: typing.SupportsInt | typing.SupportsIndex, input_bits: typing.SupportsInt | typing.SupportsIndex = 32) -> bool:
    """
    Whether encode folds b_dec into the bias (the rule the CPU and GPU paths share).
    """
def encoder_reconstruction_stats(X: typing.Any, W_encT: typing.Any, b_enc: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threshold: typing.Any, mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], k: typing.SupportsInt | typing.SupportsIndex, signed: bool, use_threshold: bool, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Squared reconstruction error, squared deviation from `mean`, and per-latent fire counts.
    """
def feature_effects(codes: typing.Any, controls: typing.Any, labels: typing.Any, l2: typing.SupportsFloat | typing.SupportsIndex, fit_intercept: bool, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Per-feature logistic (feature + controls) with Hessian standard errors and two-sided p-values.
    """
def fit_logistic(codes: typing.Any, controls: typing.Any, labels: typing.Any, row_offset: typing.Any, l2: typing.SupportsFloat | typing.SupportsIndex, l1: typing.SupportsFloat | typing.SupportsIndex, fit_intercept: bool, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, init: typing.Any = None) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], float, int, bool]:
    """
    Regularised logistic fit (IRLS + coordinate descent). Returns (coef, control_coef, intercept, n_iter, converged).
    """
def fit_user_offsets(codes: typing.Any, base_logit: typing.Any, labels: typing.Any, row_ptr: typing.Any, rows: typing.Any, shrinkage: typing.SupportsFloat | typing.SupportsIndex, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.float32], int]:
    """
    Batched per-user offsets (Newton per user). Returns (offsets n_users x n_features, n_not_converged).
    """
def gather_weights(population: typing.Any, offsets: typing.Any, user_rows: typing.Any, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    Dense weights population + offsets[user_rows] (n_users x n_features).
    """
def predict_pairs(population: typing.Any, offsets: typing.Any, user_rows: typing.Any, pairs: typing.Any, base_logit: typing.Any = None, threads: typing.SupportsInt | typing.SupportsIndex = 0, logits: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    """
    P(first response preferred) per (pair, user) row (its logit with logits=True).
    """
def resolve_threads(requested: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
    """
    Threads a call will use: requested > 0, else LIKEABLE_NUM_THREADS, else all cores.
    """
def score_users_items(population: typing.Any, offsets: typing.Any, user_rows: typing.Any, items: typing.Any, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    Utilities (n_users x n_items) of sparse items under population + offsets[user_rows] (-1: population).
    """
def validate_csr(codes: typing.Any) -> None:
    """
    Structural check of CSR arrays; raises ValueError naming the first problem.
    """
build_options: dict  # {'cuda': 'AUTO' | 'ON' | 'OFF', 'cuda_built': bool}
openmp: bool = True
