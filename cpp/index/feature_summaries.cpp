#include "index/feature_summaries.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "index/approximate_layout.h"

namespace likeable {
namespace {

std::int64_t chunks_of(std::int64_t n_blocks) { return (n_blocks + kChunkBlocks - 1) / kChunkBlocks; }
std::int64_t words_of(std::int64_t n_entries, std::int64_t n_cols) { return (n_entries + n_cols + 63) / 64; }

// Calls fn(list, chunk within the list, first block, block count) for every chunk, lists in order.
template <class Fn>
void for_each_chunk(const BlockLayout& b, std::int64_t n_cols, Fn&& fn) {
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t b0 = b.list_block_ptr[j], b1 = b.list_block_ptr[j + 1];
    for (std::int64_t i = 0; i < chunks_of(b1 - b0); ++i)
      fn(j, i, b0 + i * kChunkBlocks, std::min(kChunkBlocks, b1 - b0 - i * kChunkBlocks));
  }
}

}  // namespace

std::int64_t summary_bytes_by_block(const BlockLayout& b, std::int64_t n_cols, bool is_signed) {
  const std::int64_t per_entry = (n_cols <= 65536 ? 2 : 4) + 1 + (is_signed ? 1 : 0);
  return 8 * (b.n_blocks + 1) + per_entry * b.n_summary_entries();
}

std::int64_t summary_bytes_by_feature(const BlockLayout& b, std::int64_t n_cols, bool is_signed) {
  std::int64_t chunks = 0, words = 0;
  for_each_chunk(b, n_cols, [&](std::int64_t, std::int64_t, std::int64_t first, std::int64_t count) {
    ++chunks;
    words += words_of(b.block_sum_ptr[first + count] - b.block_sum_ptr[first], n_cols);
  });
  const std::int64_t per_entry = 2 + (is_signed ? 1 : 0);
  return 8 * (n_cols + 1) + 16 * (chunks + 1) + 8 * words + 4 * chunks * FeatureSummaries::samples_per_chunk(n_cols) +
         per_entry * b.n_summary_entries();
}

void store_summaries_by_feature(BlockLayout& b, std::int64_t n_cols, bool is_signed, int threads) {
  // Where each list's chunks, entries and words go.
  std::vector<std::int64_t> list_chunk_ptr(n_cols + 1, 0), chunk_entry_ptr{0}, chunk_word_ptr{0};
  std::vector<std::int64_t> chunk_first, chunk_blocks;
  for_each_chunk(b, n_cols, [&](std::int64_t j, std::int64_t, std::int64_t first, std::int64_t count) {
    const std::int64_t n_entries = b.block_sum_ptr[first + count] - b.block_sum_ptr[first];
    chunk_first.push_back(first);
    chunk_blocks.push_back(count);
    chunk_entry_ptr.push_back(chunk_entry_ptr.back() + n_entries);
    chunk_word_ptr.push_back(chunk_word_ptr.back() + words_of(n_entries, n_cols));
    list_chunk_ptr[j + 1] = static_cast<std::int64_t>(chunk_first.size());
  });
  for (std::int64_t j = 0; j < n_cols; ++j) list_chunk_ptr[j + 1] = std::max(list_chunk_ptr[j + 1], list_chunk_ptr[j]);
  const std::int64_t n_chunks = static_cast<std::int64_t>(chunk_first.size()), n_entries = chunk_entry_ptr.back();
  const std::int64_t samples = FeatureSummaries::samples_per_chunk(n_cols);
  std::vector<std::uint64_t> bits(static_cast<std::size_t>(chunk_word_ptr.back()), ~std::uint64_t{0});
  const std::int64_t width = FeatureSummaries::entry_width(is_signed);
  std::vector<std::uint8_t> entries(static_cast<std::size_t>(n_entries * width));
  std::vector<std::uint32_t> zero_samples(static_cast<std::size_t>(n_chunks * samples), 0);
  const bool narrow = n_cols <= 65536;
  parallel_for(n_chunks, 16, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<std::int64_t> count(static_cast<std::size_t>(n_cols) + 1, 0);
    for (std::int64_t c = begin; c < end; ++c) {
      const std::int64_t first = chunk_first[c];
      // Counting sort of the chunk's entries by feature (blocks ascending within a feature).
      const std::int64_t e0 = b.block_sum_ptr[first], e1 = b.block_sum_ptr[first + chunk_blocks[c]];
      auto feature = [&](std::int64_t e) -> std::int64_t {
        return narrow ? b.sum_features16[e] : b.sum_features32[e];
      };
      std::fill(count.begin(), count.end(), 0);
      for (std::int64_t e = e0; e < e1; ++e) ++count[feature(e) + 1];
      for (std::int64_t f = 0; f < n_cols; ++f) count[f + 1] += count[f];
      // Zeros: feature f's ends at count[f + 1] + f.
      std::uint64_t* words = bits.data() + chunk_word_ptr[c];
      for (std::int64_t f = 0; f < n_cols; ++f) {
        const std::int64_t at = count[f + 1] + f;
        words[at >> 6] &= ~(std::uint64_t{1} << (at & 63));
        if (f % kZeroSample == 0) zero_samples[c * samples + f / kZeroSample] = static_cast<std::uint32_t>(at);
      }
      for (std::int64_t blk = first; blk < first + chunk_blocks[c]; ++blk) {
        for (std::int64_t e = b.block_sum_ptr[blk]; e < b.block_sum_ptr[blk + 1]; ++e) {
          const std::int64_t pos = chunk_entry_ptr[c] + count[feature(e)]++;
          std::uint8_t* entry = entries.data() + pos * width;
          entry[0] = static_cast<std::uint8_t>(blk - first);
          entry[1] = b.sum_hi[e];
          if (is_signed) entry[2] = b.sum_lo[e];
        }
      }
    }
  });
  FeatureSummaries& s = b.by_feature;
  s.list_chunk_ptr = Array<std::int64_t>(std::move(list_chunk_ptr));
  s.chunk_entry_ptr = Array<std::int64_t>(std::move(chunk_entry_ptr));
  s.chunk_word_ptr = Array<std::int64_t>(std::move(chunk_word_ptr));
  s.bits = Array<std::uint64_t>(std::move(bits));
  s.entries = Array<std::uint8_t>(std::move(entries));
  s.zero_samples = Array<std::uint32_t>(std::move(zero_samples));
  b.sum_hi = Array<std::uint8_t>();
  b.sum_lo = Array<std::uint8_t>();
  b.block_sum_ptr = Array<std::int64_t>();
  b.sum_features16 = Array<std::uint16_t>();
  b.sum_features32 = Array<std::int32_t>();
}

bool index_feature_summaries(FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr, std::int64_t n_cols,
                             bool is_signed) {
  const std::int64_t width = FeatureSummaries::entry_width(is_signed);
  const std::int64_t n_chunks = s.n_chunks(), samples = FeatureSummaries::samples_per_chunk(n_cols);
  std::vector<std::uint32_t> zero_samples(static_cast<std::size_t>(n_chunks * samples), 0);
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t n_blk = list_block_ptr[j + 1] - list_block_ptr[j];
    if (s.list_chunk_ptr[j + 1] - s.list_chunk_ptr[j] != chunks_of(n_blk)) return false;
    for (std::int64_t c = s.list_chunk_ptr[j]; c < s.list_chunk_ptr[j + 1]; ++c) {
      const std::int64_t e0 = s.chunk_entry_ptr[c], e1 = s.chunk_entry_ptr[c + 1];
      const std::int64_t w0 = s.chunk_word_ptr[c], w1 = s.chunk_word_ptr[c + 1];
      if (w1 - w0 != words_of(e1 - e0, n_cols)) return false;
      const std::int64_t chunk_blocks = std::min(kChunkBlocks, n_blk - (c - s.list_chunk_ptr[j]) * kChunkBlocks);
      for (std::int64_t e = e0; e < e1; ++e)
        if (s.entries[e * width] >= chunk_blocks) return false;
      // Exactly n_cols zeros among the first (entries + n_cols) bits; note every 32nd.
      const std::int64_t length = e1 - e0 + n_cols;
      std::int64_t zeros = 0;
      for (std::int64_t w = 0; w * 64 < length; ++w) {
        const std::int64_t valid = std::min<std::int64_t>(64, length - w * 64);
        std::uint64_t z = ~s.bits[w0 + w] & (valid == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << valid) - 1);
        const std::int64_t n = __builtin_popcountll(z);
        if (zeros + n > n_cols) return false;
        if ((zeros + n - 1) / kZeroSample != (zeros - 1) / kZeroSample || zeros == 0) {  // a sample falls here
          for (std::int64_t k = zeros; z != 0; ++k, z &= z - 1)
            if (k % kZeroSample == 0)
              zero_samples[c * samples + k / kZeroSample] = static_cast<std::uint32_t>(w * 64 + __builtin_ctzll(z));
        }
        zeros += n;
      }
      if (zeros != n_cols) return false;
    }
  }
  s.zero_samples = Array<std::uint32_t>(std::move(zero_samples));
  return true;
}

bool feature_summary_scales_ok(const FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr,
                               std::int64_t n_cols, bool is_signed, const float* hi_scale, const float* lo_scale,
                               std::int64_t n_blocks) {
  auto ok = [](float x) { return std::isfinite(x) && x >= 0; };
  for (std::int64_t b = 0; b < n_blocks; ++b)
    if (!ok(hi_scale[b]) || (is_signed && !ok(lo_scale[b]))) return false;
  const std::int64_t width = FeatureSummaries::entry_width(is_signed);
  for (std::int64_t j = 0; j < n_cols; ++j) {
    for (std::int64_t c = s.list_chunk_ptr[j]; c < s.list_chunk_ptr[j + 1]; ++c) {
      const std::int64_t first = list_block_ptr[j] + (c - s.list_chunk_ptr[j]) * kChunkBlocks;
      for (std::int64_t e = s.chunk_entry_ptr[c]; e < s.chunk_entry_ptr[c + 1]; ++e) {
        const std::uint8_t* entry = s.entries.data() + e * width;
        if (entry[1] != 0 && hi_scale[first + entry[0]] == 0) return false;
        if (is_signed && entry[2] != 0 && lo_scale[first + entry[0]] == 0) return false;
      }
    }
  }
  return true;
}

}  // namespace likeable
