// Training the sparse encoder (train.h).
#include "encoder/train.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "encoder/select.h"

#ifdef LIKEABLE_X86_KERNELS
#include <emmintrin.h>
#endif

namespace likeable {

using encoder_select::fold_topk;
using encoder_select::key_of;

SaeTrainer::SaeTrainer(TrainConfig config) : cfg_(std::move(config)) {
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  LIKEABLE_CHECK(d > 0 && M > 0, "trainer needs d > 0 and n_features > 0");
  LIKEABLE_CHECK(M <= std::numeric_limits<std::int32_t>::max(), "n_features exceeds int32 ids");
  LIKEABLE_CHECK(cfg_.k >= 1 && cfg_.k <= M, "k=", cfg_.k, " must be in [1, n_features=", M, "]");
  if (cfg_.prefixes.empty()) cfg_.prefixes = {M};
  for (std::size_t i = 0; i < cfg_.prefixes.size(); ++i) {
    LIKEABLE_CHECK(cfg_.prefixes[i] >= 1 && cfg_.prefixes[i] <= M &&
                       (i == 0 || cfg_.prefixes[i] > cfg_.prefixes[i - 1]),
                   "matryoshka prefixes must be strictly increasing in [1, n_features]");
  }
  LIKEABLE_CHECK(cfg_.prefixes.back() == M, "the last matryoshka prefix must be n_features=", M);
  LIKEABLE_CHECK(cfg_.aux_k >= 0 && cfg_.aux_k <= M, "aux_k=", cfg_.aux_k, " must be in [0, ", M, "]");
  LIKEABLE_CHECK(cfg_.lr > 0 && std::isfinite(cfg_.lr), "lr must be a positive number");
  const std::size_t md = checked_mul(M, d);
  m_enc_.assign(md, 0.0f);
  v_enc_.assign(md, 0.0f);
  m_dec_.assign(md, 0.0f);
  v_dec_.assign(md, 0.0f);
  m_benc_.assign(M, 0.0f);
  v_benc_.assign(M, 0.0f);
  m_bdec_.assign(d, 0.0f);
  v_bdec_.assign(d, 0.0f);
  t_latent_.assign(M, 0);
  silent_rows_.assign(M, 0);
  fired_this_epoch_.assign(M, 0);
}

EpochStats SaeTrainer::run_epoch(const MutableWeights& w, const float* X, std::int64_t n_rows,
                                 const std::int64_t* order, std::int64_t n_order,
                                 std::int64_t batch_size, double norm) {
  LIKEABLE_CHECK(batch_size >= 1, "batch_size must be >= 1");
  LIKEABLE_CHECK(norm > 0 && std::isfinite(norm), "normalizer must be positive, got ", norm);
  LIKEABLE_CHECK(!cfg_.batch_topk || w.threshold != nullptr, "BatchTopK training needs a threshold");
  for (std::int64_t i = 0; i < n_order; ++i)
    LIKEABLE_CHECK(order[i] >= 0 && order[i] < n_rows, "row order entry ", order[i],
                   " is outside [0, ", n_rows, ")");
  std::fill(fired_this_epoch_.begin(), fired_this_epoch_.end(), 0);
  EpochStats stats;
  double loss_sum = 0.0, aux_sum = 0.0;
  for (std::int64_t s = 0; s < n_order; s += batch_size) {
    const std::int64_t B = std::min(batch_size, n_order - s);
    double aux = 0.0;
    loss_sum += step(w, X, order + s, B, norm, &aux) * B;
    aux_sum += aux * B;
    ++stats.n_batches;
  }
  if (n_order > 0) {
    stats.loss = loss_sum / n_order;
    stats.aux_loss = aux_sum / n_order;
  }
  std::int64_t silent = 0;
  for (char f : fired_this_epoch_) silent += f ? 0 : 1;
  stats.dead_fraction = static_cast<double>(silent) / cfg_.n_features;
  return stats;
}

namespace {
// Hand-vectorised (SSE, part of every x86-64) because the compiler keeps a scalar errno path
// for std::sqrt; Adam over the touched rows is a large share of a training step. The portable
// loop (non-x86 builds, or the core's SIMD switch off) rounds (1 - b2) g g in another order.
inline void adam_update(float* p, float* m, float* v, const float* g, std::int64_t n, float lr,
                        float b1, float b2, float eps, std::int64_t t, bool use_sse) {
  const float c1 = 1.0f - std::pow(b1, static_cast<float>(t));
  const float c2 = 1.0f - std::pow(b2, static_cast<float>(t));
  const float step = lr / c1;
  const float inv_c2 = 1.0f / c2;
  std::int64_t i = 0;
#ifdef LIKEABLE_X86_KERNELS
  if (use_sse) {
  const __m128 vb1 = _mm_set1_ps(b1), vb1c = _mm_set1_ps(1.0f - b1), vb2 = _mm_set1_ps(b2),
               vb2c = _mm_set1_ps(1.0f - b2), vstep = _mm_set1_ps(step), vinv = _mm_set1_ps(inv_c2),
               veps = _mm_set1_ps(eps);
  for (; i + 4 <= n; i += 4) {
    const __m128 gi = _mm_loadu_ps(g + i);
    const __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vb1c, gi));
    const __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(vb2c, _mm_mul_ps(gi, gi)));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    const __m128 denom = _mm_add_ps(_mm_sqrt_ps(_mm_mul_ps(vi, vinv)), veps);
    _mm_storeu_ps(p + i, _mm_sub_ps(_mm_loadu_ps(p + i), _mm_div_ps(_mm_mul_ps(vstep, mi), denom)));
  }
  }
#else
  (void)use_sse;
#endif
  for (; i < n; ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= step * m[i] / (std::sqrt(v[i] * inv_c2) + eps);
  }
}

inline float dot(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
}  // namespace


double SaeTrainer::step(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
                        double norm, double* aux_loss) {
  const int threads = threads_for_work(static_cast<double>(B) * cfg_.n_dims * cfg_.n_features, cfg_.threads);
  centre_batch(w, X, rows, B, threads);
  compute_preactivations(w, B, threads);
  if (cfg_.batch_topk) select_batch_topk(w, B);
  else select_topk(B, threads);
  const double loss = reconstruct(w, X, rows, B, norm, threads);
  *aux_loss = explain_residual(w, B, threads);
  group_by_latent(B);
  bias_gradients(w, B, threads);
  update_latents(w, threads);
  update_decoder_bias(w);
  track_dead_latents(B);
  return loss;
}

void SaeTrainer::centre_batch(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
                              int threads) {
  const std::int64_t d = cfg_.n_dims;
  xc_.resize(checked_mul(B, d));
  parallel_for(B, 64, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* x = X + rows[r] * d;
      for (std::int64_t c = 0; c < d; ++c) xc_[r * d + c] = x[c] - w.b_dec[c];
    }
  });
}

void SaeTrainer::compute_preactivations(const MutableWeights& w, std::int64_t B, int threads) {
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  pre_.resize(checked_mul(B, M));
  parallel_for(M, 256, threads, [&](std::int64_t f0, std::int64_t f1, int) {  // one GEMM per column block
    blas::sgemm(false, true, B, f1 - f0, d, 1.0f, xc_.data(), d, w.W_encT + f0 * d, d, 0.0f,
                pre_.data() + f0, M);
    for (std::int64_t r = 0; r < B; ++r) {
      float* row = pre_.data() + r * M;
      for (std::int64_t j = f0; j < f1; ++j) row[j] += w.b_enc[j];
    }
  });
}

void SaeTrainer::select_topk(std::int64_t B, int threads) {
  const std::int64_t M = cfg_.n_features;
  const int k = cfg_.k;
  act_ptr_.assign(B + 1, 0);
  act_id_.clear();
  act_z_.clear();
  slot_key_.resize(checked_mul(B, k));
  slot_val_.resize(checked_mul(B, k));
  slot_id_.resize(checked_mul(B, k));
  std::vector<std::int64_t> counts(B);
  parallel_for(B, 16, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    for (std::int64_t r = r0; r < r1; ++r) {
      TopKHeap heap(slot_key_.data() + r * k, slot_id_.data() + r * k, slot_val_.data() + r * k, k);
      const float* row = pre_.data() + r * M;  // the bias is already in
      if (cfg_.is_signed)
        fold_topk<true, false>(row, nullptr, M, 0, heap);
      else
        fold_topk<false, false>(row, nullptr, M, 0, heap);
      heap.sort_by_id();
      counts[r] = heap.size();
    }
  });
  for (std::int64_t r = 0; r < B; ++r) {
    act_ptr_[r + 1] = act_ptr_[r] + counts[r];
    act_id_.insert(act_id_.end(), slot_id_.begin() + r * k, slot_id_.begin() + r * k + counts[r]);
    act_z_.insert(act_z_.end(), slot_val_.begin() + r * k, slot_val_.begin() + r * k + counts[r]);
  }
}

void SaeTrainer::select_batch_topk(const MutableWeights& w, std::int64_t B) {
  // The k*B largest keys over the whole batch; ties go to the earlier (row, id).
  const std::int64_t M = cfg_.n_features;
  const bool is_signed = cfg_.is_signed;
  act_ptr_.assign(B + 1, 0);
  act_id_.clear();
  act_z_.clear();
  const std::int64_t want = checked_mul(cfg_.k, B);
  std::vector<float> keys;
  keys.reserve(B * M / 8);
  for (std::int64_t i = 0; i < B * M; ++i) {
    const float key = key_of(pre_[i], is_signed);
    if (key > 0.0f) keys.push_back(key);
  }
  float cut = 0.0f;  // keep key > cut, plus `ties` entries equal to cut
  std::int64_t ties = 0;
  if (static_cast<std::int64_t>(keys.size()) > want) {
    std::nth_element(keys.begin(), keys.begin() + (want - 1), keys.end(), std::greater<float>());
    cut = keys[want - 1];
    std::int64_t above = 0;
    for (float kk : keys) above += kk > cut ? 1 : 0;
    ties = want - above;
  }
  float smallest = std::numeric_limits<float>::infinity();
  for (std::int64_t r = 0; r < B; ++r) {
    const float* row = pre_.data() + r * M;
    for (std::int64_t j = 0; j < M; ++j) {
      const float key = key_of(row[j], is_signed);
      bool take = key > cut;
      if (!take && key == cut && ties > 0 && key > 0.0f) {
        take = true;
        --ties;
      }
      if (take) {
        act_id_.push_back(static_cast<std::int32_t>(j));
        act_z_.push_back(row[j]);
        smallest = std::min(smallest, key);
      }
    }
    act_ptr_[r + 1] = static_cast<std::int64_t>(act_id_.size());
  }
  if (std::isfinite(smallest)) {
    threshold_ema_ = threshold_ema_ < 0.0
                         ? smallest
                         : cfg_.threshold_decay * threshold_ema_ + (1.0 - cfg_.threshold_decay) * smallest;
    std::fill(w.threshold, w.threshold + M, static_cast<float>(threshold_ema_));
  }
}

double SaeTrainer::reconstruct(const MutableWeights& w, const float* X, const std::int64_t* rows, std::int64_t B,
                               double norm, int threads) {
  // For row r and prefix group p (latents in [prefixes[p-1], prefixes[p])), grad_rows_ holds
  // G[r][p] = sum_{q >= p} dLoss/dxhat_q, the gradient every latent of group p sees.
  const std::int64_t d = cfg_.n_dims;
  const std::int64_t P = static_cast<std::int64_t>(cfg_.prefixes.size());
  const std::int64_t* prefixes = cfg_.prefixes.data();
  grad_rows_.resize(checked_mul(checked_mul(B, P), d));
  aux_grad_.resize(checked_mul(B, d));  // first the residual x - xhat, later the aux gradient
  row_loss_.assign(B, 0.0f);
  const float scale = static_cast<float>(2.0 / (static_cast<double>(P) * B * norm));
  parallel_for(B, 16, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    std::vector<float> xhat(d);
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* x = X + rows[r] * d;
      float* G = grad_rows_.data() + r * P * d;
      std::copy(w.b_dec, w.b_dec + d, xhat.begin());
      std::int64_t q = 0;
      double loss = 0.0;
      auto finish_prefix = [&](std::int64_t q_done) {
        float* g = G + q_done * d;
        double sq = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
          const float diff = xhat[c] - x[c];
          sq += static_cast<double>(diff) * diff;
          g[c] = diff * scale;
        }
        loss += sq;
      };
      for (std::int64_t e = act_ptr_[r]; e < act_ptr_[r + 1]; ++e) {
        const std::int32_t id = act_id_[e];
        while (id >= prefixes[q]) finish_prefix(q++);
        const float z = act_z_[e];
        const float* wd = w.W_dec + static_cast<std::int64_t>(id) * d;
        for (std::int64_t c = 0; c < d; ++c) xhat[c] += z * wd[c];
      }
      while (q < P) finish_prefix(q++);
      for (std::int64_t p = P - 2; p >= 0; --p)  // suffix sums over prefixes
        for (std::int64_t c = 0; c < d; ++c) G[p * d + c] += G[(p + 1) * d + c];
      for (std::int64_t c = 0; c < d; ++c) aux_grad_[r * d + c] = x[c] - xhat[c];
      row_loss_[r] = static_cast<float>(loss / (static_cast<double>(P) * norm));
    }
  });
  double loss = 0.0;
  for (std::int64_t r = 0; r < B; ++r) loss += row_loss_[r];
  return loss / B;
}

double SaeTrainer::explain_residual(const MutableWeights& w, std::int64_t B, int threads) {
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  const bool is_signed = cfg_.is_signed;
  aux_ptr_.assign(B + 1, 0);
  aux_id_.clear();
  aux_z_.clear();
  std::vector<char> dead(M, 0);
  std::int64_t n_dead = 0;
  if (cfg_.aux_k > 0 && cfg_.dead_after_rows > 0) {
    for (std::int64_t j = 0; j < M; ++j) {
      dead[j] = silent_rows_[j] >= cfg_.dead_after_rows;
      n_dead += dead[j];
    }
  }
  if (n_dead == 0) return 0.0;
  const int ak = static_cast<int>(std::min<std::int64_t>(cfg_.aux_k, n_dead));
  std::vector<float> keys(checked_mul(B, ak)), vals(checked_mul(B, ak));
  std::vector<std::int32_t> ids(checked_mul(B, ak));
  std::vector<std::int64_t> counts(B);
  row_aux_err_.assign(B, 0.0f);
  row_aux_norm_.assign(B, 0.0f);
  parallel_for(B, 16, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    std::vector<float> ehat(d);
    for (std::int64_t r = r0; r < r1; ++r) {
      TopKHeap heap(keys.data() + r * ak, ids.data() + r * ak, vals.data() + r * ak, ak);
      const float* row = pre_.data() + r * M;
      for (std::int64_t j = 0; j < M; ++j) {
        if (!dead[j]) continue;
        const float key = key_of(row[j], is_signed);
        if (key > 0.0f && key > heap.bar()) heap.push(key, static_cast<std::int32_t>(j), row[j]);
      }
      heap.sort_by_id();
      counts[r] = heap.size();
      std::fill(ehat.begin(), ehat.end(), 0.0f);
      for (std::int64_t e = 0; e < heap.size(); ++e) {
        const float* wd = w.W_dec + static_cast<std::int64_t>(heap.ids()[e]) * d;
        for (std::int64_t c = 0; c < d; ++c) ehat[c] += heap.values()[e] * wd[c];
      }
      double err = 0.0, nrm = 0.0;
      float* res = aux_grad_.data() + r * d;  // residual e (a constant: no gradient into it)
      for (std::int64_t c = 0; c < d; ++c) {
        const float diff = ehat[c] - res[c];
        err += static_cast<double>(diff) * diff;
        nrm += static_cast<double>(res[c]) * res[c];
        res[c] = diff;  // now ehat - e; scaled below
      }
      row_aux_err_[r] = static_cast<float>(err);
      row_aux_norm_[r] = static_cast<float>(nrm);
    }
  });
  double err = 0.0, nrm = 0.0;
  for (std::int64_t r = 0; r < B; ++r) {
    err += row_aux_err_[r];
    nrm += row_aux_norm_[r];
    aux_ptr_[r + 1] = aux_ptr_[r] + counts[r];
    aux_id_.insert(aux_id_.end(), ids.begin() + r * ak, ids.begin() + r * ak + counts[r]);
    aux_z_.insert(aux_z_.end(), vals.begin() + r * ak, vals.begin() + r * ak + counts[r]);
  }
  if (!(nrm > 0.0 && !aux_id_.empty())) {
    aux_id_.clear();
    aux_z_.clear();
    std::fill(aux_ptr_.begin(), aux_ptr_.end(), 0);
    return 0.0;
  }
  const float g_scale = static_cast<float>(2.0 * cfg_.aux_coef / nrm);
  for (std::int64_t i = 0; i < B * d; ++i) aux_grad_[i] *= g_scale;
  return cfg_.aux_coef * err / nrm;
}

void SaeTrainer::group_by_latent(std::int64_t B) {
  // Counting sort, rows in order: deterministic sums.
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  const std::int64_t P = static_cast<std::int64_t>(cfg_.prefixes.size());
  const std::int64_t* prefixes = cfg_.prefixes.data();
  lat_ptr_.assign(M + 1, 0);
  for (std::int32_t id : act_id_) ++lat_ptr_[id + 1];
  for (std::int32_t id : aux_id_) ++lat_ptr_[id + 1];
  for (std::int64_t j = 0; j < M; ++j) lat_ptr_[j + 1] += lat_ptr_[j];
  const std::int64_t n_entries = lat_ptr_[M];
  entry_row_.resize(n_entries);
  entry_z_.resize(n_entries);
  entry_dpre_.resize(n_entries);
  entry_grad_.resize(n_entries);
  std::vector<std::int64_t> fill(lat_ptr_.begin(), lat_ptr_.end() - 1);
  for (std::int64_t r = 0; r < B; ++r) {
    std::int64_t p = 0;
    for (std::int64_t e = act_ptr_[r]; e < act_ptr_[r + 1]; ++e) {
      const std::int32_t id = act_id_[e];
      while (id >= prefixes[p]) ++p;
      const std::int64_t slot = fill[id]++;
      entry_row_[slot] = static_cast<std::int32_t>(r);
      entry_z_[slot] = act_z_[e];
      entry_grad_[slot] = grad_rows_.data() + (r * P + p) * d;
    }
  }
  for (std::int64_t r = 0; r < B; ++r) {
    for (std::int64_t e = aux_ptr_[r]; e < aux_ptr_[r + 1]; ++e) {
      const std::int64_t slot = fill[aux_id_[e]]++;
      entry_row_[slot] = static_cast<std::int32_t>(r);
      entry_z_[slot] = aux_z_[e];
      entry_grad_[slot] = aux_grad_.data() + r * d;
    }
  }
  touched_.clear();
  for (std::int64_t j = 0; j < M; ++j)
    if (lat_ptr_[j + 1] > lat_ptr_[j]) touched_.push_back(static_cast<std::int32_t>(j));
}

void SaeTrainer::bias_gradients(const MutableWeights& w, std::int64_t B, int threads) {
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  const std::int64_t P = static_cast<std::int64_t>(cfg_.prefixes.size());
  const std::int64_t n_touched = static_cast<std::int64_t>(touched_.size());
  // dLoss/da for every entry (only active latents carry gradient): a = z for the kept entries
  // of both ReLU and signed codes, so dL/da = <dL/dxhat, W_dec[j]>.
  gb_.assign(M, 0.0f);
  parallel_for(n_touched, 64, threads, [&](std::int64_t t0, std::int64_t t1, int) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int32_t j = touched_[t];
      const float* wd = w.W_dec + static_cast<std::int64_t>(j) * d;
      float sum = 0.0f;
      for (std::int64_t e = lat_ptr_[j]; e < lat_ptr_[j + 1]; ++e) {
        entry_dpre_[e] = dot(entry_grad_[e], wd, d);
        sum += entry_dpre_[e];
      }
      gb_[j] = sum;
    }
  });
  // b_dec's gradient: through every reconstruction, and through the centring x - b_dec.
  gbdec_.assign(d, 0.0f);
  for (std::int64_t r = 0; r < B; ++r) {
    const float* G = grad_rows_.data() + r * P * d;  // G[r][0] = sum of all prefix gradients
    for (std::int64_t c = 0; c < d; ++c) gbdec_[c] += G[c];
  }
  blas::sgemv(true, M, d, -1.0f, w.W_encT, d, gb_.data(), 1.0f, gbdec_.data());
}

void SaeTrainer::update_latents(const MutableWeights& w, int threads) {
  const std::int64_t d = cfg_.n_dims;
  const std::int64_t n_touched = static_cast<std::int64_t>(touched_.size());
  const bool use_sse = simd::use(simd::kSse2);
  const int n_scratch = std::max(1, resolve_threads(threads));
  std::vector<std::vector<float>> gd(n_scratch, std::vector<float>(d)),
      ge(n_scratch, std::vector<float>(d));
  parallel_for(n_touched, 64, threads, [&](std::int64_t t0, std::int64_t t1, int tid) {
    float* g_dec = gd[tid].data();
    float* g_enc = ge[tid].data();
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int32_t j = touched_[t];
      float* wd = w.W_dec + static_cast<std::int64_t>(j) * d;
      float* we = w.W_encT + static_cast<std::int64_t>(j) * d;
      std::fill(g_dec, g_dec + d, 0.0f);
      std::fill(g_enc, g_enc + d, 0.0f);
      for (std::int64_t e = lat_ptr_[j]; e < lat_ptr_[j + 1]; ++e) {
        const float z = entry_z_[e], dp = entry_dpre_[e];
        const float* g = entry_grad_[e];
        const float* xr = xc_.data() + static_cast<std::int64_t>(entry_row_[e]) * d;
        for (std::int64_t c = 0; c < d; ++c) {
          g_dec[c] += z * g[c];
          g_enc[c] += dp * xr[c];
        }
      }
      // Unit-norm decoder rows: drop the gradient component along the row itself.
      const float along = dot(g_dec, wd, d);
      for (std::int64_t c = 0; c < d; ++c) g_dec[c] -= along * wd[c];
      const std::int64_t tt = ++t_latent_[j];
      const std::size_t off = static_cast<std::size_t>(j) * d;
      adam_update(wd, m_dec_.data() + off, v_dec_.data() + off, g_dec, d, cfg_.lr, cfg_.beta1, cfg_.beta2,
                  cfg_.eps, tt, use_sse);
      adam_update(we, m_enc_.data() + off, v_enc_.data() + off, g_enc, d, cfg_.lr, cfg_.beta1, cfg_.beta2,
                  cfg_.eps, tt, use_sse);
      adam_update(w.b_enc + j, m_benc_.data() + j, v_benc_.data() + j, gb_.data() + j, 1, cfg_.lr, cfg_.beta1,
                  cfg_.beta2, cfg_.eps, tt, use_sse);
      const float nrm = std::sqrt(dot(wd, wd, d));
      if (nrm > 0.0f)
        for (std::int64_t c = 0; c < d; ++c) wd[c] /= nrm;
    }
  });
}

void SaeTrainer::update_decoder_bias(const MutableWeights& w) {
  ++t_bdec_;
  adam_update(w.b_dec, m_bdec_.data(), v_bdec_.data(), gbdec_.data(), cfg_.n_dims, cfg_.lr, cfg_.beta1,
              cfg_.beta2, cfg_.eps, t_bdec_, simd::use(simd::kSse2));
}

void SaeTrainer::track_dead_latents(std::int64_t B) {
  const std::int64_t M = cfg_.n_features;
  std::vector<char> fired(M, 0);
  for (std::int32_t id : act_id_) fired[id] = 1;
  for (std::int64_t j = 0; j < M; ++j) {
    silent_rows_[j] = fired[j] ? 0 : silent_rows_[j] + B;
    fired_this_epoch_[j] |= fired[j];
  }
}

}  // namespace likeable
