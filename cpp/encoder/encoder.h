// The sparse encoder (TopK / BatchTopK sparse autoencoder): tiled encode with a running
// top-K per row, sparse decode, and a training step whose backward pass touches only the
// active latents.
//
// Layout: the encoder is held transposed, W_encT (M x d, row j = latent j's encoder vector),
// so a latent's encoder and decoder rows are both contiguous; sae_lens' W_enc (d x M) is its
// transpose. Pre-activation a = (x - b_dec) @ W_enc + b_enc.
#pragma once

#include <cstdint>
#include <vector>

#include "core/errors.h"
#include "core/parallel.h"
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

// ---- training ---------------------------------------------------------------------------

struct TrainConfig {
  std::int64_t n_dims = 0;
  std::int64_t n_features = 0;
  int k = 32;
  bool batch_topk = false;
  bool is_signed = false;
  // Matryoshka prefix ends (strictly increasing, last == n_features); {n_features} = plain.
  std::vector<std::int64_t> prefixes;
  int aux_k = 0;               // 0 disables the aux-K loss
  float aux_coef = 1.0f / 32;  // weight of the aux-K loss
  std::int64_t dead_after_rows = 0;  // a latent silent for this many training rows is dead
  float lr = 5e-4f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float threshold_decay = 0.99f;  // EMA of the smallest kept key (BatchTopK)
  int threads = 0;
};

struct MutableWeights {
  float* W_encT = nullptr;
  float* b_enc = nullptr;
  float* W_dec = nullptr;
  float* b_dec = nullptr;
  float* threshold = nullptr;  // M (BatchTopK only; may be null otherwise)
};

struct EpochStats {
  double loss = 0.0;      // mean reconstruction loss (normalized MSE, Matryoshka mean)
  double aux_loss = 0.0;  // mean aux-K loss
  std::int64_t n_batches = 0;
  double dead_fraction = 0.0;  // at the end of the epoch
};

// Adam state and dead-latent counters for one training run. Not thread-safe: one fit owns it.
class SaeTrainer {
 public:
  explicit SaeTrainer(TrainConfig config);

  // One pass over X's rows in the given order, in batches of batch_size. `norm` is the
  // dataset's mean ||x - mean||^2, which turns squared error into normalized MSE.
  EpochStats run_epoch(const MutableWeights& w, const float* X, std::int64_t n_rows,
                       const std::int64_t* order, std::int64_t n_order, std::int64_t batch_size,
                       double norm);

  const TrainConfig& config() const { return cfg_; }
  double threshold_estimate() const { return threshold_ema_; }

 private:
  double step(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
              double norm, double* aux_loss);

  TrainConfig cfg_;
  // Lazy (sparse) Adam: a latent's moments move only in steps where it carries gradient,
  // as torch.optim.SparseAdam does; t_ counts those steps per latent for bias correction.
  std::vector<float> m_enc_, v_enc_, m_dec_, v_dec_, m_benc_, v_benc_, m_bdec_, v_bdec_;
  std::vector<std::int64_t> t_latent_;
  std::int64_t t_bdec_ = 0;
  std::vector<std::int64_t> silent_rows_;  // rows since each latent last fired
  double threshold_ema_ = -1.0;            // < 0: not yet estimated
  std::vector<char> fired_this_epoch_;
  // Scratch reused across steps (sizes depend only on the batch size).
  std::vector<float> xc_, pre_, slot_key_, slot_val_, grad_rows_, aux_grad_, gb_, gbdec_;
  std::vector<std::int32_t> slot_id_;
  std::vector<std::int64_t> act_ptr_, lat_ptr_;
  std::vector<std::int32_t> act_id_;
  std::vector<float> act_z_, row_loss_, row_aux_err_, row_aux_norm_;
  std::vector<std::int32_t> entry_row_;
  std::vector<float> entry_z_, entry_dpre_;
  std::vector<const float*> entry_grad_;
};

}  // namespace likeable
