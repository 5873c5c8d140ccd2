// The sparse encoder (TopK / BatchTopK sparse autoencoder): tiled encode with a running
// top-K per row (encode.cpp), sparse decode, and reconstruction statistics. Training: train.h.
//
// Layout: the encoder is held transposed, W_encT (M x d, row j = latent j's encoder vector),
// so a latent's encoder and decoder rows are both contiguous; sae_lens' W_enc (d x M) is its
// transpose. Pre-activation a = (x - b_dec) @ W_enc + b_enc.
#pragma once

#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "core/sparse.h"

namespace likeable {

struct EncoderWeights {
  std::int64_t n_dims = 0;       // d
  std::int64_t n_features = 0;   // M
  const float* W_encT = nullptr; // M x d
  const float* b_enc = nullptr;  // M
  const float* W_dec = nullptr;  // M x d
  const float* b_dec = nullptr;  // d
  const float* threshold = nullptr;  // M, used by threshold (BatchTopK inference) mode
};

enum class SelectMode {
  kTopK,       // the k largest keys per row
  kThreshold,  // every entry whose key exceeds threshold[j]
};

struct EncodeOptions {
  SelectMode mode = SelectMode::kTopK;
  int k = 32;
  bool is_signed = false;  // key = |a| and the sign is kept; otherwise key = a, kept only if > 0
  int threads = 0;
  // Tile sizes (0: chosen from d and M so a tile stays in L2).
  std::int64_t tile_rows = 0;
  std::int64_t tile_features = 0;
};

// Codes for n rows of X (n x d, row-major). Each row's entries are sorted by feature id.
// Never materialises the n x M pre-activations: extra memory is O(threads * tile + n * k).
CsrMatrix encode(const EncoderWeights& w, const float* X, std::int64_t n_rows,
                 const EncodeOptions& opt);

// out (n_rows x d) = codes @ W_dec + b_dec.
void decode(const EncoderWeights& w, const CsrView& codes, float* out, int threads);

// Sum over rows of ||x - decode(encode(x))||^2 and of ||x - mean||^2 (float64), without
// keeping the reconstruction; `mean` has d entries. Also counts how often each latent fires.
struct ReconstructionStats {
  double squared_error = 0.0;
  double squared_deviation = 0.0;
  std::int64_t n_active = 0;
  std::vector<std::int64_t> fire_counts;  // M
};
ReconstructionStats reconstruction_stats(const EncoderWeights& w, const float* X,
                                         std::int64_t n_rows, const double* mean,
                                         const EncodeOptions& opt);

}  // namespace likeable
