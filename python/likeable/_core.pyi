"""
likeable's compiled core (private: use the likeable package)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['Csr', 'EpochStats', 'FeatureEffects', 'FormatError', 'LogisticFit', 'ReconstructionStats', 'SaeTrainer', 'SparseIndexCore', 'UserOffsets', 'blas_config', 'brute_force_search', 'build_options', 'encoder_decode', 'encoder_encode', 'encoder_folded_bias', 'encoder_folds_decoder_bias', 'encoder_reconstruction_stats', 'feature_effects', 'fit_logistic', 'fit_user_offsets', 'gather_weights', 'openmp', 'predict_pairs', 'resolve_threads', 'score_users_items', 'set_simd_enabled', 'simd_enabled', 'simd_features', 'validate_csr']
class FormatError(ValueError):
    pass
class Csr:
    """
    CSR arrays made by the core (read into likeable.SparseCodes).
    """
    @property
    def indices(self) -> numpy.typing.NDArray[numpy.int32]:
        """
        int32 feature ids
        """
    @property
    def indptr(self) -> numpy.typing.NDArray[numpy.int64]:
        """
        int64, n_rows + 1
        """
    @property
    def shape(self) -> tuple[int, int]:
        """
        (n_rows, n_features)
        """
    @property
    def values(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        float32
        """
class ReconstructionStats:
    """
    What encoder_reconstruction_stats measured.
    """
    @property
    def fire_counts(self) -> numpy.typing.NDArray[numpy.int64]:
        """
        int64 per latent: rows it fired in
        """
    @property
    def n_active(self) -> int:
        """
        active entries over all rows
        """
    @property
    def squared_deviation(self) -> float:
        """
        sum of ||x - mean||^2
        """
    @property
    def squared_error(self) -> float:
        """
        sum of ||x - decode(encode(x))||^2
        """
class EpochStats:
    """
    What SaeTrainer.run_epoch measured.
    """
    @property
    def aux_loss(self) -> float:
        """
        mean aux-K loss
        """
    @property
    def dead_fraction(self) -> float:
        """
        latents silent all epoch
        """
    @property
    def loss(self) -> float:
        """
        mean reconstruction loss (normalized MSE, Matryoshka mean)
        """
    @property
    def n_batches(self) -> int:
        ...
class SaeTrainer:
    """
    Adam state and dead-latent counters of one SAE fit.
    """
    def __init__(self, n_dims: typing.SupportsInt | typing.SupportsIndex, n_features: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, batch_topk: bool, signed: bool, prefixes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], aux_k: typing.SupportsInt | typing.SupportsIndex, aux_coef: typing.SupportsFloat | typing.SupportsIndex, dead_after_rows: typing.SupportsInt | typing.SupportsIndex, lr: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def run_epoch(self, W_encT: typing.Any, b_enc: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threshold: typing.Any, X: typing.Any, order: typing.Any, batch_size: typing.SupportsInt | typing.SupportsIndex, norm: typing.SupportsFloat | typing.SupportsIndex) -> EpochStats:
        """
        One epoch over X[order] in batches; updates the weight arrays in place (EpochStats).
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
        A copy of the float32 forward index as a Csr, or None where it is held compact.
        """
    def save(self, path: str) -> None:
        ...
    def search(self, queries: typing.Any, dense: bool, k: typing.SupportsInt | typing.SupportsIndex, query_cut: typing.SupportsInt | typing.SupportsIndex, heap_factor: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
        """
        (ids, scores), each n_queries x k (the order of likeable.SparseIndex.search).
        """
    def to_bytes(self) -> bytes:
        ...
    def top_activations(self, feature: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, sign: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
        """
        (rows, values) (the order of likeable.SparseIndex.top_activations).
        """
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
class LogisticFit:
    """
    A fit_logistic result (also its warm start).
    """
    @property
    def coef(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64 per feature
        """
    @property
    def control_coef(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64 per control
        """
    @property
    def converged(self) -> bool:
        ...
    @property
    def intercept(self) -> float:
        ...
    @property
    def n_iter(self) -> int:
        """
        outer (Newton) iterations run
        """
class UserOffsets:
    """
    A fit_user_offsets result.
    """
    @property
    def n_not_converged(self) -> int:
        """
        users whose Newton solve did not converge
        """
    @property
    def offsets(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        float32, n_users x n_features
        """
class FeatureEffects:
    """
    A feature_effects result: per feature.
    """
    @property
    def coef(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64
        """
    @property
    def n_active(self) -> numpy.typing.NDArray[numpy.int64]:
        """
        int64 rows where the feature is non-zero
        """
    @property
    def p_value(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64, two-sided
        """
    @property
    def std_error(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64 (NaN where the feature is never active)
        """
    @property
    def z(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        float64
        """
def _crc32c(data: bytes) -> int:
    """
    CRC32C of bytes (the file section checksum; exposed for tests).
    """
def blas_config() -> str:
    ...
def brute_force_search(codes: typing.Any, queries: typing.Any, dense: bool, k: typing.SupportsInt | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
    """
    Reference search: float64 dot products with every row (slow; for tests). (ids, scores).
    """
def encoder_decode(codes: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float32]:
    """
    codes @ W_dec + b_dec as float32 (n_rows x d).
    """
def encoder_encode(X: typing.Any, W_encT: typing.Any, b_enc: typing.Any, b_dec: typing.Any, threshold: typing.Any, k: typing.SupportsInt | typing.SupportsIndex, signed: bool, use_threshold: bool, threads: typing.SupportsInt | typing.SupportsIndex = 0, tile_rows: typing.SupportsInt | typing.SupportsIndex = 0, tile_features: typing.SupportsInt | typing.SupportsIndex = 0) -> Csr:
    """
    Sparse codes of X (a Csr); rows sorted by feature id.
    """
def encoder_folded_bias(W_encT: typing.Any, b_enc: typing.Any, b_dec: typing.Any) -> numpy.typing.NDArray[numpy.float32]:
    """
    b_enc - b_dec @ W_enc accumulated in float64 (the fold the CPU and GPU paths share).
    """
def encoder_folds_decoder_bias(n_features: typing.SupportsInt | typing.SupportsIndex, input_bits: typing.SupportsInt | typing.SupportsIndex = 32) -> bool:
    """
    Whether encode folds b_dec into the bias (the rule the CPU and GPU paths share).
    """
def encoder_reconstruction_stats(X: typing.Any, W_encT: typing.Any, b_enc: typing.Any, W_dec: typing.Any, b_dec: typing.Any, threshold: typing.Any, mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], k: typing.SupportsInt | typing.SupportsIndex, signed: bool, use_threshold: bool, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> ReconstructionStats:
    """
    Squared reconstruction error, squared deviation from `mean`, and per-latent fire counts (ReconstructionStats).
    """
def feature_effects(codes: typing.Any, controls: typing.Any, labels: typing.Any, l2: typing.SupportsFloat | typing.SupportsIndex, fit_intercept: bool, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> FeatureEffects:
    """
    Per-feature logistic (feature + controls) with Hessian standard errors and two-sided p-values (FeatureEffects).
    """
def fit_logistic(codes: typing.Any, controls: typing.Any, labels: typing.Any, row_offset: typing.Any, l2: typing.SupportsFloat | typing.SupportsIndex, l1: typing.SupportsFloat | typing.SupportsIndex, fit_intercept: bool, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, init: typing.Any = None) -> LogisticFit:
    """
    Regularised logistic fit (IRLS + coordinate descent), warm-started from `init` (a LogisticFit). A LogisticFit.
    """
def fit_user_offsets(codes: typing.Any, base_logit: typing.Any, labels: typing.Any, row_ptr: typing.Any, rows: typing.Any, shrinkage: typing.SupportsFloat | typing.SupportsIndex, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, threads: typing.SupportsInt | typing.SupportsIndex = 0) -> UserOffsets:
    """
    Batched per-user offsets (Newton per user). A UserOffsets.
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
def set_simd_enabled(enabled: bool) -> None:
    """
    Turns every SIMD kernel on or off (off: the portable loops) for the whole process; LIKEABLE_NO_SIMD=1 starts it off. For tests comparing the two paths.
    """
def simd_enabled() -> bool:
    """
    Whether the kernels use the CPU's SIMD features (the core's one switch).
    """
def simd_features() -> dict:
    """
    The CPU features the kernels can use here, whatever the switch says.
    """
def validate_csr(codes: typing.Any) -> None:
    """
    Structural check of CSR arrays; raises ValueError naming the first problem.
    """
build_options: dict  # {'cuda': 'AUTO' | 'ON' | 'OFF', 'cuda_built': bool}
openmp: bool = True
