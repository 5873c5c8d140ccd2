#include "encoder/encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/blas.h"
#include "encoder/bias.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "core/topk.h"

namespace likeable {
namespace {

constexpr std::int64_t kL2Floats = 128 * 1024;  // 512 KiB: a tile and a row block stay in L2
// Below this many multiply-adds a call runs on one thread: waking a team costs more than it
// saves, and on a busy machine spinning OpenMP workers steal the core from the caller.
constexpr double kSerialWork = 1 << 24;

int threads_for(double work, int requested) { return work < kSerialWork ? 1 : requested; }

struct Tiles {
  std::int64_t rows;
  std::int64_t features;
};

Tiles choose_tiles(std::int64_t d, std::int64_t M, const EncodeOptions& opt) {
  Tiles t{};
  t.features = opt.tile_features > 0 ? opt.tile_features : std::min<std::int64_t>(M, 1024);
  t.features = std::max<std::int64_t>(1, std::min(t.features, M));
  if (opt.tile_rows > 0) {
    t.rows = opt.tile_rows;
  } else {
    // The pre-activation tile sets the row count; the centred row block (rows x d) may spill
    // to L3, which measured faster than thin GEMMs for wide d and small M.
    (void)d;
    t.rows = std::clamp<std::int64_t>(kL2Floats / t.features, 16, 256);
  }
  return t;
}

void check_weights(const EncoderWeights& w) {
  LIKEABLE_CHECK(w.n_dims > 0 && w.n_features > 0, "encoder has shape d=", w.n_dims,
                 ", n_features=", w.n_features, "; both must be positive");
  LIKEABLE_CHECK(w.n_features <= std::numeric_limits<std::int32_t>::max(),
                 "n_features exceeds int32 feature ids");
}

inline float key_of(float a, bool is_signed) { return is_signed ? std::fabs(a) : a; }

// Folds one pre-activation tile row into its running top-K while the tile is in cache.
// Feature ids arrive in increasing order, so a strict "key > bar" test is exact.
template <bool Signed, bool WithBias = true>
void fold_topk(const float* pre, const float* bias, std::int64_t n, std::int32_t first_id,
               TopKHeap& heap) {
  float bar = std::max(0.0f, heap.bar());
  constexpr std::int64_t kBlock = 16;
  std::int64_t j0 = 0;
  for (; j0 + kBlock <= n; j0 += kBlock) {
    // Branch-free scan first (vectorises): most blocks hold nothing that beats the bar.
    bool any = false;
    for (std::int64_t j = 0; j < kBlock; ++j) {
      const float a = WithBias ? pre[j0 + j] + bias[j0 + j] : pre[j0 + j];
      any |= (Signed ? std::fabs(a) : a) > bar;
    }
    if (!any) continue;
    for (std::int64_t j = j0; j < j0 + kBlock; ++j) {
      const float a = WithBias ? pre[j] + bias[j] : pre[j];
      const float key = Signed ? std::fabs(a) : a;
      if (key > bar) {
        heap.push(key, first_id + static_cast<std::int32_t>(j), a);
        bar = std::max(0.0f, heap.bar());
      }
    }
  }
  for (std::int64_t j = j0; j < n; ++j) {
    const float a = WithBias ? pre[j] + bias[j] : pre[j];
    const float key = Signed ? std::fabs(a) : a;
    if (key > bar) {
      heap.push(key, first_id + static_cast<std::int32_t>(j), a);
      bar = std::max(0.0f, heap.bar());
    }
  }
}

struct RowBlockCodes {
  std::vector<std::int64_t> counts;
  std::vector<std::int32_t> ids;
  std::vector<float> values;
};

CsrMatrix assemble(std::vector<RowBlockCodes>& blocks, std::int64_t n_rows, std::int64_t M,
                   int threads) {
  CsrMatrix out;
  out.n_rows = n_rows;
  out.n_cols = M;
  out.indptr.assign(static_cast<std::size_t>(n_rows) + 1, 0);
  std::vector<std::int64_t> block_start(blocks.size() + 1, 0);
  std::int64_t r = 0;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    for (std::int64_t c : blocks[b].counts) {
      out.indptr[r + 1] = out.indptr[r] + c;
      ++r;
    }
    block_start[b + 1] = block_start[b] + static_cast<std::int64_t>(blocks[b].ids.size());
  }
  const std::int64_t nnz = out.indptr[n_rows];
  out.indices.resize(nnz);
  out.values.resize(nnz);
  parallel_for(static_cast<std::int64_t>(blocks.size()), 8, threads,
               [&](std::int64_t b0, std::int64_t b1, int) {
                 for (std::int64_t b = b0; b < b1; ++b) {
                   auto& blk = blocks[b];
                   std::copy(blk.ids.begin(), blk.ids.end(), out.indices.begin() + block_start[b]);
                   std::copy(blk.values.begin(), blk.values.end(), out.values.begin() + block_start[b]);
                   RowBlockCodes().counts.swap(blk.counts);  // free as we go
                   std::vector<std::int32_t>().swap(blk.ids);
                   std::vector<float>().swap(blk.values);
                 }
               });
  return out;
}

}  // namespace

CsrMatrix encode(const EncoderWeights& w, const float* X, std::int64_t n_rows,
                 const EncodeOptions& opt) {
  check_weights(w);
  const std::int64_t d = w.n_dims, M = w.n_features;
  const bool topk = opt.mode == SelectMode::kTopK;
  LIKEABLE_CHECK(!topk || (opt.k >= 1 && opt.k <= M), "k=", opt.k, " must be in [1, n_features=", M, "]");
  LIKEABLE_CHECK(topk || w.threshold != nullptr, "threshold mode needs a threshold vector");
  const Tiles tiles = choose_tiles(d, M, opt);
  const int threads = resolve_threads(
      threads_for(static_cast<double>(n_rows) * d * M, opt.threads));
  const std::int64_t n_blocks = (n_rows + tiles.rows - 1) / tiles.rows;
  const int k = topk ? opt.k : 0;
  // Fold b_dec into the bias or centre each row block: the rule the GPU path shares (bias.h).
  const bool fold_b_dec = folds_decoder_bias(M);
  std::vector<float> folded_bias;
  if (fold_b_dec) {
    folded_bias.resize(M);
    fold_decoder_bias(w, folded_bias.data());
  }
  const float* bias = fold_b_dec ? folded_bias.data() : w.b_enc;

  // Per-thread scratch, indexed by thread id.
  const int n_scratch = std::max(1, threads);
  std::vector<std::vector<float>> xc(n_scratch), pre(n_scratch), heap_keys(n_scratch), heap_vals(n_scratch);
  std::vector<std::vector<std::int32_t>> heap_ids(n_scratch);
  std::vector<RowBlockCodes> blocks(n_blocks);

  parallel_for(n_blocks, 1, threads, [&](std::int64_t b0, std::int64_t b1, int tid) {
    auto& xcb = xc[tid];
    auto& preb = pre[tid];
    if (!fold_b_dec) xcb.resize(checked_mul(tiles.rows, d));
    preb.resize(checked_mul(tiles.rows, tiles.features));
    if (topk) {
      heap_keys[tid].resize(checked_mul(tiles.rows, k));
      heap_vals[tid].resize(checked_mul(tiles.rows, k));
      heap_ids[tid].resize(checked_mul(tiles.rows, k));
    }
    std::vector<TopKHeap> heaps;
    std::vector<std::vector<std::pair<std::int32_t, float>>> kept;  // threshold mode rows
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t r0 = b * tiles.rows;
      const std::int64_t nr = std::min(tiles.rows, n_rows - r0);
      // Centre the row block once: exact (x - b_dec) rather than a folded bias.
      for (std::int64_t i = 0; !fold_b_dec && i < nr; ++i) {
        const float* x = X + (r0 + i) * d;
        float* dst = xcb.data() + i * d;
        for (std::int64_t c = 0; c < d; ++c) dst[c] = x[c] - w.b_dec[c];
      }
      const float* rows_in = fold_b_dec ? X + r0 * d : xcb.data();
      heaps.clear();
      kept.assign(topk ? 0 : nr, {});
      for (std::int64_t i = 0; topk && i < nr; ++i)
        heaps.emplace_back(heap_keys[tid].data() + i * k, heap_ids[tid].data() + i * k,
                           heap_vals[tid].data() + i * k, k);
      for (std::int64_t f0 = 0; f0 < M; f0 += tiles.features) {
        const std::int64_t nf = std::min(tiles.features, M - f0);
        blas::sgemm(false, true, nr, nf, d, 1.0f, rows_in, d, w.W_encT + f0 * d, d, 0.0f,
                    preb.data(), nf);
        for (std::int64_t i = 0; i < nr; ++i) {
          const float* row = preb.data() + i * nf;
          // NaN/Inf anywhere in a row of X makes its products non-finite: checking the hot tile
          // here replaces a separate pass over all of X (a quarter of the time when M is small).
          float poison = 0.0f;
          for (std::int64_t j = 0; j < nf; ++j) poison += row[j] * 0.0f;
          if (poison != poison)
            throw InvalidArgument(concat("X contains NaN or Inf (first in row ", r0 + i,
                                         "), or values so large their products overflow float32"));
          if (topk) {
            if (opt.is_signed)
              fold_topk<true>(row, bias + f0, nf, static_cast<std::int32_t>(f0), heaps[i]);
            else
              fold_topk<false>(row, bias + f0, nf, static_cast<std::int32_t>(f0), heaps[i]);
          } else {
            for (std::int64_t j = 0; j < nf; ++j) {
              const float a = row[j] + bias[f0 + j];
              const float key = key_of(a, opt.is_signed);
              if (key > 0.0f && key > w.threshold[f0 + j])
                kept[i].emplace_back(static_cast<std::int32_t>(f0 + j), a);
            }
          }
        }
      }
      RowBlockCodes& out = blocks[b];
      out.counts.resize(nr);
      for (std::int64_t i = 0; i < nr; ++i) {
        if (topk) {
          heaps[i].sort_by_id();
          out.counts[i] = heaps[i].size();
          out.ids.insert(out.ids.end(), heaps[i].ids(), heaps[i].ids() + heaps[i].size());
          out.values.insert(out.values.end(), heaps[i].values(), heaps[i].values() + heaps[i].size());
        } else {
          out.counts[i] = static_cast<std::int64_t>(kept[i].size());
          for (auto& [id, a] : kept[i]) {
            out.ids.push_back(id);
            out.values.push_back(a);
          }
        }
      }
    }
  });
  return assemble(blocks, n_rows, M, threads);
}

void decode(const EncoderWeights& w, const CsrView& codes, float* out, int threads) {
  check_weights(w);
  LIKEABLE_CHECK(codes.n_cols == w.n_features, "codes have ", codes.n_cols,
                 " features but the encoder has ", w.n_features);
  validate_csr(codes);  // O(nnz), far below the O(nnz * d) of the decode itself
  const std::int64_t d = w.n_dims;
  threads = threads_for(static_cast<double>(codes.nnz()) * d, threads);
  parallel_for(codes.n_rows, 256, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float* y = out + r * d;
      std::copy(w.b_dec, w.b_dec + d, y);
      for (std::int64_t e = codes.row_begin(r); e < codes.row_end(r); ++e) {
        const float z = codes.values[e];
        const float* row = w.W_dec + static_cast<std::int64_t>(codes.indices[e]) * d;
        for (std::int64_t c = 0; c < d; ++c) y[c] += z * row[c];
      }
    }
  });
}

ReconstructionStats reconstruction_stats(const EncoderWeights& w, const float* X,
                                         std::int64_t n_rows, const double* mean,
                                         const EncodeOptions& opt) {
  const CsrMatrix codes = encode(w, X, n_rows, opt);
  const CsrView view = codes.view();
  const std::int64_t d = w.n_dims;
  constexpr std::int64_t kChunk = 256;
  const std::int64_t n_chunks = (n_rows + kChunk - 1) / kChunk;
  std::vector<double> err(n_chunks, 0.0), dev(n_chunks, 0.0);
  const int threads = threads_for(static_cast<double>(n_rows) * d * w.n_features, opt.threads);
  parallel_for(n_chunks, 1, threads, [&](std::int64_t c0, std::int64_t c1, int) {
    std::vector<float> y(d);
    for (std::int64_t c = c0; c < c1; ++c) {
      double e_sum = 0.0, d_sum = 0.0;
      for (std::int64_t r = c * kChunk; r < std::min(n_rows, (c + 1) * kChunk); ++r) {
        std::copy(w.b_dec, w.b_dec + d, y.begin());
        for (std::int64_t e = view.row_begin(r); e < view.row_end(r); ++e) {
          const float z = view.values[e];
          const float* row = w.W_dec + static_cast<std::int64_t>(view.indices[e]) * d;
          for (std::int64_t i = 0; i < d; ++i) y[i] += z * row[i];
        }
        const float* x = X + r * d;
        for (std::int64_t i = 0; i < d; ++i) {
          const double diff = static_cast<double>(x[i]) - y[i];
          const double dv = static_cast<double>(x[i]) - mean[i];
          e_sum += diff * diff;
          d_sum += dv * dv;
        }
      }
      err[c] = e_sum;
      dev[c] = d_sum;
    }
  });
  ReconstructionStats stats;
  for (std::int64_t c = 0; c < n_chunks; ++c) {  // fixed order: deterministic sums
    stats.squared_error += err[c];
    stats.squared_deviation += dev[c];
  }
  stats.n_active = view.nnz();
  stats.fire_counts.assign(w.n_features, 0);
  for (std::int64_t e = 0; e < view.nnz(); ++e) ++stats.fire_counts[view.indices[e]];
  return stats;
}

// ---- training ---------------------------------------------------------------------------

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
// for std::sqrt; Adam over the touched rows is a large share of a training step.
inline void adam_update(float* p, float* m, float* v, const float* g, std::int64_t n, float lr,
                        float b1, float b2, float eps, std::int64_t t) {
  const float c1 = 1.0f - std::pow(b1, static_cast<float>(t));
  const float c2 = 1.0f - std::pow(b2, static_cast<float>(t));
  const float step = lr / c1;
  const float inv_c2 = 1.0f / c2;
  std::int64_t i = 0;
#ifdef __SSE2__
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

double SaeTrainer::step(const MutableWeights& w, const float* X, const std::int64_t* rows,
                        std::int64_t B, double norm, double* aux_loss) {
  const std::int64_t d = cfg_.n_dims, M = cfg_.n_features;
  const int threads = threads_for(static_cast<double>(B) * d * M, cfg_.threads);
  const bool is_signed = cfg_.is_signed;
  const std::int64_t P = static_cast<std::int64_t>(cfg_.prefixes.size());
  const std::int64_t* prefixes = cfg_.prefixes.data();

  // 1. Centre the batch.
  xc_.resize(checked_mul(B, d));
  parallel_for(B, 64, threads, [&](std::int64_t r0, std::int64_t r1, int) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* x = X + rows[r] * d;
      for (std::int64_t c = 0; c < d; ++c) xc_[r * d + c] = x[c] - w.b_dec[c];
    }
  });

  // 2. Pre-activations for the batch (B x M), one GEMM per column block.
  pre_.resize(checked_mul(B, M));
  parallel_for(M, 256, threads, [&](std::int64_t f0, std::int64_t f1, int) {
    blas::sgemm(false, true, B, f1 - f0, d, 1.0f, xc_.data(), d, w.W_encT + f0 * d, d, 0.0f,
                pre_.data() + f0, M);
    for (std::int64_t r = 0; r < B; ++r) {
      float* row = pre_.data() + r * M;
      for (std::int64_t j = f0; j < f1; ++j) row[j] += w.b_enc[j];
    }
  });

  // 3. Select the active latents -> act_ptr_/act_id_/act_z_ (rows sorted by id).
  act_ptr_.assign(B + 1, 0);
  act_id_.clear();
  act_z_.clear();
  if (!cfg_.batch_topk) {
    const int k = cfg_.k;
    slot_key_.resize(checked_mul(B, k));
    slot_val_.resize(checked_mul(B, k));
    slot_id_.resize(checked_mul(B, k));
    std::vector<std::int64_t> counts(B);
    parallel_for(B, 16, threads, [&](std::int64_t r0, std::int64_t r1, int) {
      for (std::int64_t r = r0; r < r1; ++r) {
        TopKHeap heap(slot_key_.data() + r * k, slot_id_.data() + r * k, slot_val_.data() + r * k, k);
        const float* row = pre_.data() + r * M;  // the bias is already in
        if (is_signed)
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
  } else {
    // BatchTopK: the k*B largest keys over the whole batch; ties go to the earlier (row, id).
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
  // 4. Reconstructions at each Matryoshka prefix and their loss gradients. For row r and
  // prefix group p (latents in [prefixes[p-1], prefixes[p])), grad_rows_ holds
  // G[r][p] = sum_{q >= p} dLoss/dxhat_q, the gradient every latent of group p sees.
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
  loss /= B;

  // 5. Aux-K: the dead latents' top aux_k pre-activations try to explain the residual.
  std::vector<std::int64_t> aux_ptr(B + 1, 0);
  std::vector<std::int32_t> aux_id;
  std::vector<float> aux_z;
  *aux_loss = 0.0;
  std::vector<char> dead(M, 0);
  std::int64_t n_dead = 0;
  if (cfg_.aux_k > 0 && cfg_.dead_after_rows > 0) {
    for (std::int64_t j = 0; j < M; ++j) {
      dead[j] = silent_rows_[j] >= cfg_.dead_after_rows;
      n_dead += dead[j];
    }
  }
  if (n_dead > 0) {
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
        for (int e = 0; e < heap.size(); ++e) {
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
      aux_ptr[r + 1] = aux_ptr[r] + counts[r];
      aux_id.insert(aux_id.end(), ids.begin() + r * ak, ids.begin() + r * ak + counts[r]);
      aux_z.insert(aux_z.end(), vals.begin() + r * ak, vals.begin() + r * ak + counts[r]);
    }
    if (nrm > 0.0 && !aux_id.empty()) {
      *aux_loss = cfg_.aux_coef * err / nrm;
      const float g_scale = static_cast<float>(2.0 * cfg_.aux_coef / nrm);
      for (std::int64_t i = 0; i < B * d; ++i) aux_grad_[i] *= g_scale;
    } else {
      aux_id.clear();
      aux_z.clear();
      std::fill(aux_ptr.begin(), aux_ptr.end(), 0);
    }
  }

  // 6. Group the entries by latent (counting sort, rows in order: deterministic sums).
  lat_ptr_.assign(M + 1, 0);
  for (std::int32_t id : act_id_) ++lat_ptr_[id + 1];
  for (std::int32_t id : aux_id) ++lat_ptr_[id + 1];
  for (std::int64_t j = 0; j < M; ++j) lat_ptr_[j + 1] += lat_ptr_[j];
  const std::int64_t n_entries = lat_ptr_[M];
  entry_row_.resize(n_entries);
  entry_z_.resize(n_entries);
  entry_dpre_.resize(n_entries);
  entry_grad_.resize(n_entries);
  {
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
      for (std::int64_t e = aux_ptr[r]; e < aux_ptr[r + 1]; ++e) {
        const std::int64_t slot = fill[aux_id[e]]++;
        entry_row_[slot] = static_cast<std::int32_t>(r);
        entry_z_[slot] = aux_z[e];
        entry_grad_[slot] = aux_grad_.data() + r * d;
      }
    }
  }
  std::vector<std::int32_t> touched;
  for (std::int64_t j = 0; j < M; ++j)
    if (lat_ptr_[j + 1] > lat_ptr_[j]) touched.push_back(static_cast<std::int32_t>(j));
  const std::int64_t n_touched = static_cast<std::int64_t>(touched.size());

  // 7a. dLoss/da for every entry (only active latents carry gradient): a = z for the kept
  // entries of both ReLU and signed codes, so dL/da = <dL/dxhat, W_dec[j]>.
  gb_.assign(M, 0.0f);
  parallel_for(n_touched, 64, threads, [&](std::int64_t t0, std::int64_t t1, int) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int32_t j = touched[t];
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

  // 7b. Per touched latent: gradients of its decoder and encoder rows, then lazy Adam.
  const int n_scratch = std::max(1, resolve_threads(threads));
  std::vector<std::vector<float>> gd(n_scratch, std::vector<float>(d)),
      ge(n_scratch, std::vector<float>(d));
  parallel_for(n_touched, 64, threads, [&](std::int64_t t0, std::int64_t t1, int tid) {
    float* g_dec = gd[tid].data();
    float* g_enc = ge[tid].data();
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int32_t j = touched[t];
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
      adam_update(wd, m_dec_.data() + off, v_dec_.data() + off, g_dec, d, cfg_.lr, cfg_.beta1,
                  cfg_.beta2, cfg_.eps, tt);
      adam_update(we, m_enc_.data() + off, v_enc_.data() + off, g_enc, d, cfg_.lr, cfg_.beta1,
                  cfg_.beta2, cfg_.eps, tt);
      adam_update(w.b_enc + j, m_benc_.data() + j, v_benc_.data() + j, gb_.data() + j, 1, cfg_.lr,
                  cfg_.beta1, cfg_.beta2, cfg_.eps, tt);
      const float nrm = std::sqrt(dot(wd, wd, d));
      if (nrm > 0.0f)
        for (std::int64_t c = 0; c < d; ++c) wd[c] /= nrm;
    }
  });
  ++t_bdec_;
  adam_update(w.b_dec, m_bdec_.data(), v_bdec_.data(), gbdec_.data(), d, cfg_.lr, cfg_.beta1,
              cfg_.beta2, cfg_.eps, t_bdec_);

  // 9. Dead-latent bookkeeping: a latent fires when it is among the main active entries.
  std::vector<char> fired(M, 0);
  for (std::int32_t id : act_id_) fired[id] = 1;
  for (std::int64_t j = 0; j < M; ++j) {
    silent_rows_[j] = fired[j] ? 0 : silent_rows_[j] + B;
    fired_this_epoch_[j] |= fired[j];
  }
  return loss;
}

}  // namespace likeable
