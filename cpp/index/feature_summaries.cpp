#include "index/feature_summaries.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/errors.h"
#include "core/parallel.h"
#include "index/approximate_layout.h"

namespace likeable {
namespace {

using FS = FeatureSummaries;

// A list's bit vector must stay addressable by the u32 samples.
constexpr std::int64_t kMaxListBits = std::int64_t{1} << 32;

std::int64_t list_blocks(const Array<std::int64_t>& list_block_ptr, std::int64_t j) {
  return list_block_ptr[j + 1] - list_block_ptr[j];
}

// Zeros among the first n_bits bits of words.
std::int64_t zeros_in(const std::uint64_t* words, std::int64_t n_bits) {
  std::int64_t zeros = 0;
  for (std::int64_t w = 0; w * 64 < n_bits; ++w) {
    const std::int64_t valid = std::min<std::int64_t>(64, n_bits - w * 64);
    zeros += __builtin_popcountll(~words[w] & (valid == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << valid) - 1));
  }
  return zeros;
}

// Where list j's entries, words and samples go, each list after the one before.
void lay_out_lists(const Array<std::int64_t>& list_block_ptr, const std::int64_t* entries_of_list, std::int64_t n_cols,
                   std::vector<std::int64_t>& entry_ptr, std::vector<std::int64_t>& word_ptr) {
  entry_ptr.assign(static_cast<std::size_t>(n_cols) + 1, 0);
  word_ptr.assign(static_cast<std::size_t>(n_cols) + 1, 0);
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t groups = n_cols * FS::chunks_of(list_blocks(list_block_ptr, j));
    entry_ptr[j + 1] = entry_ptr[j] + entries_of_list[j];
    word_ptr[j + 1] = word_ptr[j] + FS::words_of(entries_of_list[j] + groups);
  }
}

}  // namespace

std::int64_t summary_bytes_by_block(const BlockLayout& b, std::int64_t n_cols, bool is_signed) {
  const std::int64_t per_entry = (n_cols <= 65536 ? 2 : 4) + 1 + (is_signed ? 1 : 0);
  return 8 * (b.n_blocks + 1) + per_entry * b.n_summary_entries();
}

std::int64_t summary_bytes_by_feature(const BlockLayout& b, std::int64_t n_cols, bool is_signed) {
  std::int64_t words = 0, samples = 0;
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t groups = n_cols * FS::chunks_of(list_blocks(b.list_block_ptr, j));
    const std::int64_t bits =
        b.block_sum_ptr[b.list_block_ptr[j + 1]] - b.block_sum_ptr[b.list_block_ptr[j]] + groups;
    if (bits >= kMaxListBits) return INT64_MAX;  // cannot be stored by feature
    words += FS::words_of(bits);
    samples += FS::samples_of(groups);
  }
  const std::int64_t per_entry = FS::entry_width(is_signed);
  return 3 * 8 * (n_cols + 1) + 8 * words + 4 * samples + per_entry * b.n_summary_entries();
}

void store_summaries_by_feature(BlockLayout& b, std::int64_t n_cols, bool is_signed, int threads) {
  std::vector<std::int64_t> entries_of_list(static_cast<std::size_t>(n_cols));
  for (std::int64_t j = 0; j < n_cols; ++j)
    entries_of_list[j] = b.block_sum_ptr[b.list_block_ptr[j + 1]] - b.block_sum_ptr[b.list_block_ptr[j]];
  std::vector<std::int64_t> entry_ptr, word_ptr;
  lay_out_lists(b.list_block_ptr, entries_of_list.data(), n_cols, entry_ptr, word_ptr);
  const std::int64_t width = FS::entry_width(is_signed);
  std::vector<std::uint64_t> bits(static_cast<std::size_t>(word_ptr.back()), ~std::uint64_t{0});
  std::vector<std::uint8_t> entries(static_cast<std::size_t>(entry_ptr.back() * width));
  const bool narrow = n_cols <= 65536;
  parallel_for(n_cols, 16, threads, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<std::int64_t> count;
    for (std::int64_t j = begin; j < end; ++j) {
      const std::int64_t b0 = b.list_block_ptr[j], b1 = b.list_block_ptr[j + 1];
      const std::int64_t n_chunks = FS::chunks_of(b1 - b0), groups = n_cols * n_chunks;
      // Counting sort of the list's entries by group (feature, chunk); blocks ascend in a group.
      auto group = [&](std::int64_t e, std::int64_t blk) -> std::int64_t {
        const std::int64_t f = narrow ? b.sum_features16[e] : b.sum_features32[e];
        return f * n_chunks + (blk - b0) / kChunkBlocks;
      };
      count.assign(static_cast<std::size_t>(groups) + 1, 0);
      for (std::int64_t blk = b0; blk < b1; ++blk)
        for (std::int64_t e = b.block_sum_ptr[blk]; e < b.block_sum_ptr[blk + 1]; ++e) ++count[group(e, blk) + 1];
      for (std::int64_t g = 0; g < groups; ++g) count[g + 1] += count[g];
      std::uint64_t* words = bits.data() + word_ptr[j];
      for (std::int64_t g = 0; g < groups; ++g) {  // group g ends with a 0 at count[g + 1] + g
        const std::int64_t at = count[g + 1] + g;
        words[at >> 6] &= ~(std::uint64_t{1} << (at & 63));
      }
      for (std::int64_t blk = b0; blk < b1; ++blk) {
        for (std::int64_t e = b.block_sum_ptr[blk]; e < b.block_sum_ptr[blk + 1]; ++e) {
          std::uint8_t* entry = entries.data() + (entry_ptr[j] + count[group(e, blk)]++) * width;
          entry[0] = static_cast<std::uint8_t>((blk - b0) % kChunkBlocks);
          entry[1] = b.sum_hi[e];
          if (is_signed) entry[2] = b.sum_lo[e];
        }
      }
    }
  });
  FeatureSummaries& s = b.by_feature;
  s.list_entry_ptr = Array<std::int64_t>(std::move(entry_ptr));
  s.list_word_ptr = Array<std::int64_t>(std::move(word_ptr));
  s.bits = Array<std::uint64_t>(std::move(bits));
  s.entries = Array<std::uint8_t>(std::move(entries));
  // Built right, so the checks pass; they also compute the samples. The scales were checked
  // when made (the by-block layout's), so they are not passed again.
  const std::string wrong = index_feature_summaries(s, b.list_block_ptr, n_cols, is_signed, nullptr, nullptr);
  LIKEABLE_CHECK(wrong.empty(), "internal error: built summaries by feature fail their check: ", wrong);
  b.sum_hi = Array<std::uint8_t>();
  b.sum_lo = Array<std::uint8_t>();
  b.block_sum_ptr = Array<std::int64_t>();
  b.sum_features16 = Array<std::uint16_t>();
  b.sum_features32 = Array<std::int32_t>();
}

std::string index_feature_summaries(FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr,
                                    std::int64_t n_cols, bool is_signed, const float* hi_scale,
                                    const float* lo_scale) {
  const std::int64_t width = FS::entry_width(is_signed);
  auto scale_ok = [](float x) { return std::isfinite(x) && x >= 0; };
  if (hi_scale != nullptr) {
    const std::int64_t n_blocks = list_block_ptr[n_cols];
    for (std::int64_t blk = 0; blk < n_blocks; ++blk)
      if (!scale_ok(hi_scale[blk]) || (is_signed && !scale_ok(lo_scale[blk])))
        return concat("the scale of block ", blk, " is not a finite number >= 0");
  }
  std::vector<std::int64_t> sample_ptr(static_cast<std::size_t>(n_cols) + 1, 0);
  for (std::int64_t j = 0; j < n_cols; ++j)
    sample_ptr[j + 1] = sample_ptr[j] + FS::samples_of(n_cols * FS::chunks_of(list_blocks(list_block_ptr, j)));
  std::vector<std::uint32_t> samples(static_cast<std::size_t>(sample_ptr.back()));
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t b0 = list_block_ptr[j], n_blocks = list_blocks(list_block_ptr, j);
    const std::int64_t n_chunks = FS::chunks_of(n_blocks), groups = n_cols * n_chunks;
    const std::int64_t e0 = s.list_entry_ptr[j], n_bits = s.list_entry_ptr[j + 1] - e0 + groups;
    if (n_bits >= kMaxListBits) return concat("list ", j, "'s bit vector is too long");
    if (s.list_word_ptr[j + 1] - s.list_word_ptr[j] != FS::words_of(n_bits))
      return concat("list ", j, "'s bit vector has ", s.list_word_ptr[j + 1] - s.list_word_ptr[j], " words, expected ",
                    FS::words_of(n_bits));
    const std::uint64_t* words = s.bits.data() + s.list_word_ptr[j];
    // Exactly one 0 per group within the length, so the walk below stays inside the words.
    if (zeros_in(words, n_bits) != groups) return concat("list ", j, "'s bit vector does not hold ", groups, " groups");
    std::int64_t at = 0;
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::int64_t end = FS::next_zero(words, at);
      if (g % kZeroSample == 0) samples[sample_ptr[j] + g / kZeroSample] = static_cast<std::uint32_t>(end);
      const std::int64_t chunk = g % n_chunks, first = b0 + chunk * kChunkBlocks;
      const std::int64_t chunk_blocks = std::min(kChunkBlocks, n_blocks - chunk * kChunkBlocks);
      for (std::int64_t e = e0 + at - g; e < e0 + end - g; ++e) {
        const std::uint8_t* entry = s.entries.data() + e * width;
        if (entry[0] >= chunk_blocks) return concat("entry ", e, " names a block outside its chunk");
        if (hi_scale != nullptr &&
            ((entry[1] != 0 && hi_scale[first + entry[0]] == 0) || (is_signed && entry[2] != 0 && lo_scale[first + entry[0]] == 0)))
          return concat("the scale of block ", first + entry[0], " is 0 under non-zero entries");
      }
      at = end + 1;
    }
    if (at != n_bits) return concat("list ", j, " holds entries after its last group");
  }
  s.list_sample_ptr = Array<std::int64_t>(std::move(sample_ptr));
  s.zero_samples = Array<std::uint32_t>(std::move(samples));
  return {};
}

std::string migrate_feature_summaries_v5(const FeatureSummariesV5& v5, const Array<std::int64_t>& list_block_ptr,
                                         std::int64_t n_cols, bool is_signed, FeatureSummaries& out) {
  const std::int64_t width = FS::entry_width(is_signed);
  std::vector<std::int64_t> entries_of_list(static_cast<std::size_t>(n_cols));
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t c0 = v5.list_chunk_ptr[j], c1 = v5.list_chunk_ptr[j + 1];
    if (c1 - c0 != FS::chunks_of(list_blocks(list_block_ptr, j)))
      return concat("list ", j, " has ", c1 - c0, " chunks, expected ", FS::chunks_of(list_blocks(list_block_ptr, j)));
    for (std::int64_t c = c0; c < c1; ++c) {  // one 0 per feature within the chunk's length
      const std::int64_t n_bits = v5.chunk_entry_ptr[c + 1] - v5.chunk_entry_ptr[c] + n_cols;
      if (v5.chunk_word_ptr[c + 1] - v5.chunk_word_ptr[c] != FS::words_of(n_bits))
        return concat("chunk ", c, "'s bit vector has the wrong length");
      if (zeros_in(v5.bits + v5.chunk_word_ptr[c], n_bits) != n_cols)
        return concat("chunk ", c, "'s bit vector does not hold ", n_cols, " features");
    }
    entries_of_list[j] = v5.chunk_entry_ptr[c1] - v5.chunk_entry_ptr[c0];
  }
  std::vector<std::int64_t> entry_ptr, word_ptr;
  lay_out_lists(list_block_ptr, entries_of_list.data(), n_cols, entry_ptr, word_ptr);
  std::vector<std::uint64_t> bits(static_cast<std::size_t>(word_ptr.back()), ~std::uint64_t{0});
  std::vector<std::uint8_t> entries(static_cast<std::size_t>(entry_ptr.back() * width));
  std::vector<std::int64_t> run_start;  // per chunk of the list, per feature: its first entry
  for (std::int64_t j = 0; j < n_cols; ++j) {
    const std::int64_t c0 = v5.list_chunk_ptr[j], n_chunks = v5.list_chunk_ptr[j + 1] - c0;
    run_start.resize(static_cast<std::size_t>(n_chunks * (n_cols + 1)));
    for (std::int64_t k = 0; k < n_chunks; ++k) {
      const std::uint64_t* words = v5.bits + v5.chunk_word_ptr[c0 + k];
      std::int64_t at = 0;
      for (std::int64_t f = 0; f < n_cols; ++f) {
        run_start[k * (n_cols + 1) + f] = v5.chunk_entry_ptr[c0 + k] + at - f;
        at = FS::next_zero(words, at) + 1;
      }
      run_start[k * (n_cols + 1) + n_cols] = v5.chunk_entry_ptr[c0 + k] + at - n_cols;
      if (run_start[k * (n_cols + 1) + n_cols] != v5.chunk_entry_ptr[c0 + k + 1])
        return concat("chunk ", c0 + k, " holds entries after its last feature");
    }
    // Group (f, k) is chunk k's run of feature f, moved as it is.
    std::int64_t written = 0;
    std::uint64_t* words = bits.data() + word_ptr[j];
    for (std::int64_t f = 0; f < n_cols; ++f) {
      for (std::int64_t k = 0; k < n_chunks; ++k) {
        const std::int64_t from = run_start[k * (n_cols + 1) + f], to = run_start[k * (n_cols + 1) + f + 1];
        std::copy(v5.entries + from * width, v5.entries + to * width, entries.data() + (entry_ptr[j] + written) * width);
        written += to - from;
        const std::int64_t at = written + f * n_chunks + k;  // the group's closing 0
        words[at >> 6] &= ~(std::uint64_t{1} << (at & 63));
      }
    }
  }
  out.list_entry_ptr = Array<std::int64_t>(std::move(entry_ptr));
  out.list_word_ptr = Array<std::int64_t>(std::move(word_ptr));
  out.bits = Array<std::uint64_t>(std::move(bits));
  out.entries = Array<std::uint8_t>(std::move(entries));
  return {};
}

}  // namespace likeable
