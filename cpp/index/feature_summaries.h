// Block summaries stored by feature (file format version 5), chosen at build time wherever they
// take fewer bytes than block by block: SAE codes (4096 features, 32 active per row) are such a
// case, learned sparse text vectors over 30k terms are not.
//
// Why: search bounds the blocks of each visited list with the query. Block by block, that reads
// every summary entry of the list (8,600 per list on the 200k-row SAE corpus at n_postings 1000,
// twice that at 2000: the cost grew with list length), though only ~190 of them name a feature
// of the query. By feature, it reads just those: for each query feature, the run of entries
// (block, u8 value) holding it, added into the blocks' bounds (Seismic's QuantizedSummary does
// the same). The bounds are the same sums (in ascending feature order, as the portable
// block-by-block loop adds them).
//
// Layout. A list's blocks are summarised in chunks of at most kChunkBlocks consecutive blocks
// (so a block is a u8 within its chunk); list j's chunks are [list_chunk_ptr[j],
// list_chunk_ptr[j+1]), chunk i of the list covers blocks list_block_ptr[j] + i * kChunkBlocks
// onward. A chunk's entries [chunk_entry_ptr[c], chunk_entry_ptr[c+1]) are sorted by feature,
// then block, each stored as (block within the chunk, hi[, lo]) u8s side by side (one cache
// line holds a run's blocks and values); its bit vector (words [chunk_word_ptr[c], chunk_word_ptr[c+1]) of `bits`) holds, for
// each feature f in order, one 1 per entry of f and then a 0 (E_c + n_cols bits, the rest of the
// last word 1s). So f's entries are [zero(f-1) + 1 - f, zero(f) - f), zero(i) being the position
// of the i-th 0; zero_samples (computed when built or loaded, not stored) holds every 32nd zero's
// position, from which a lookup scans a word or two.
#pragma once

#include <cstdint>

#include "index/layout.h"

namespace likeable {

struct BlockLayout;

constexpr std::int64_t kChunkBlocks = 256;
constexpr std::int64_t kZeroSample = 32;

struct FeatureSummaries {
  Array<std::int64_t> list_chunk_ptr;   // n_cols + 1 (empty: summaries are stored by block)
  Array<std::int64_t> chunk_entry_ptr;  // n_chunks + 1
  Array<std::int64_t> chunk_word_ptr;   // n_chunks + 1
  Array<std::uint64_t> bits;
  Array<std::uint8_t> entries;          // entry_width(signed) u8s per entry: block, hi[, lo]
  Array<std::uint32_t> zero_samples;    // samples_per_chunk(n_cols) per chunk

  bool present() const { return !list_chunk_ptr.empty(); }
  std::int64_t n_chunks() const { return static_cast<std::int64_t>(chunk_entry_ptr.size()) - 1; }
  static std::int64_t samples_per_chunk(std::int64_t n_cols) { return n_cols / kZeroSample + 1; }
  static std::int64_t entry_width(bool is_signed) { return is_signed ? 3 : 2; }

  // Entries [begin, end) of feature f in chunk c.
  void run(std::int64_t c, std::int64_t n_cols, std::int32_t f, std::int64_t& begin, std::int64_t& end) const {
    const std::uint64_t* words = bits.data() + chunk_word_ptr[c];
    const std::int64_t after = f == 0 ? 0 : zero(words, c, n_cols, f - 1) + 1;  // where f's run starts
    // The next 0 at or after `after` ends it.
    std::int64_t w = after >> 6;
    std::uint64_t zeros = ~words[w] & (~std::uint64_t{0} << (after & 63));
    while (zeros == 0) zeros = ~words[++w];
    const std::int64_t at = (w << 6) + __builtin_ctzll(zeros);
    begin = chunk_entry_ptr[c] + after - f;
    end = chunk_entry_ptr[c] + at - f;
  }

 private:
  // Position of the i-th 0 of the chunk's bits (i < n_cols).
  std::int64_t zero(const std::uint64_t* words, std::int64_t c, std::int64_t n_cols, std::int64_t i) const {
    const std::int64_t from = zero_samples[c * samples_per_chunk(n_cols) + i / kZeroSample];
    std::int64_t left = i % kZeroSample;  // zeros still to pass after `from`
    std::int64_t w = from >> 6;
    std::uint64_t zeros = ~words[w] & (~std::uint64_t{0} << (from & 63));
    for (;;) {
      const std::int64_t n = __builtin_popcountll(zeros);
      if (left < n) break;
      left -= n;
      zeros = ~words[++w];
    }
    for (; left > 0; --left) zeros &= zeros - 1;
    return (w << 6) + __builtin_ctzll(zeros);
  }
};

// The bytes each way of storing `blocks`' summaries takes (files and memory).
std::int64_t summary_bytes_by_block(const BlockLayout& blocks, std::int64_t n_cols, bool is_signed);
std::int64_t summary_bytes_by_feature(const BlockLayout& blocks, std::int64_t n_cols, bool is_signed);

// Re-stores block-by-block summaries by feature (block_sum_ptr, the feature ids and the
// values arrays are dropped).
void store_summaries_by_feature(BlockLayout& blocks, std::int64_t n_cols, bool is_signed, int threads);

// Computes zero_samples from the bits, checking that every chunk holds exactly n_cols zeros and
// one 1 per entry, and that every entry's block lies in its chunk; false if not.
bool index_feature_summaries(FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr, std::int64_t n_cols,
                             bool is_signed);

// The blocks' scales (lo_scale: signed indexes, else null): each a finite number >= 0, and 0
// only where every entry of its block is 0 (else the bound would be 0 and search would skip rows
// it must score); false if not.
bool feature_summary_scales_ok(const FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr,
                               std::int64_t n_cols, bool is_signed, const float* hi_scale, const float* lo_scale,
                               std::int64_t n_blocks);

}  // namespace likeable
