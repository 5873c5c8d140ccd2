// Encode (tiled BLAS GEMM, each tile folded into running top-K heaps while it is in cache),
// decode and reconstruction statistics.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/blas.h"
#include "core/parallel.h"
#include "encoder/bias.h"
#include "encoder/encoder.h"
#include "encoder/select.h"

namespace likeable {
namespace {

using encoder_select::fold_topk;
using encoder_select::key_of;

constexpr std::int64_t kL2Floats = 128 * 1024;  // 512 KiB: a tile and a row block stay in L2

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
      threads_for_work(static_cast<double>(n_rows) * d * M, opt.threads));
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
  threads = threads_for_work(static_cast<double>(codes.nnz()) * d, threads);
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
  const int threads = threads_for_work(static_cast<double>(n_rows) * d * w.n_features, opt.threads);
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

}  // namespace likeable
