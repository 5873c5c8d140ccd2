// Training the sparse encoder (train.cpp): one pass over the rows in batches, each batch a
// forward pass, Matryoshka and aux-K losses, a backward pass that touches only the active
// latents, and lazy Adam on the rows it touched.
#pragma once

#include <cstdint>
#include <vector>

#include "encoder/encoder.h"

namespace likeable {

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
  // One batch of B rows (rows[i] indexes X); returns its reconstruction loss, aux-K's in
  // *aux_loss. The steps below run in this order, each reading what the previous ones left.
  double step(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
              double norm, double* aux_loss);
  // x - b_dec for the batch -> xc_.
  void centre_batch(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B, int threads);
  // xc_ @ W_enc + b_enc -> pre_ (B x M).
  void compute_preactivations(const MutableWeights& w, std::int64_t B, int threads);
  // The active latents of each row -> act_ptr_/act_id_/act_z_ (rows sorted by id): the k
  // largest keys per row, or (BatchTopK) the k * B largest of the batch, which also moves the
  // threshold estimate.
  void select_topk(std::int64_t B, int threads);
  void select_batch_topk(const MutableWeights& w, std::int64_t B);
  // Reconstructions at each Matryoshka prefix -> their loss gradients in grad_rows_ and the
  // residual x - xhat in aux_grad_; returns the mean loss.
  double reconstruct(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
                     double norm, int threads);
  // Aux-K: the dead latents' top aux_k pre-activations try to explain the residual ->
  // aux_ptr_/aux_id_/aux_z_, aux_grad_ turned into their gradient; returns the aux loss.
  double explain_residual(const MutableWeights& w, std::int64_t B, int threads);
  // Active and aux entries grouped by latent -> lat_ptr_, entry_*, touched_.
  void group_by_latent(std::int64_t B);
  // dLoss/da per entry (entry_dpre_), per latent (gb_), and b_dec's gradient (gbdec_).
  void bias_gradients(const MutableWeights& w, std::int64_t B, int threads);
  // Decoder and encoder rows of every touched latent: gradients, lazy Adam, unit-norm decoder.
  void update_latents(const MutableWeights& w, int threads);
  void update_decoder_bias(const MutableWeights& w);
  // A latent fires when it is among the main active entries.
  void track_dead_latents(std::int64_t B);

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
  std::vector<std::int64_t> act_ptr_, aux_ptr_, lat_ptr_;
  std::vector<std::int32_t> act_id_, aux_id_, touched_;
  std::vector<float> act_z_, aux_z_, row_loss_, row_aux_err_, row_aux_norm_;
  std::vector<std::int32_t> entry_row_;
  std::vector<float> entry_z_, entry_dpre_;
  std::vector<const float*> entry_grad_;
};

}  // namespace likeable
