// Block summaries stored by feature (file format version 6), chosen at build time wherever they
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
// Layout. A block is named by a u8 within its chunk of kChunkBlocks consecutive blocks of its
// list (a u16 would add a byte to each of ~110M entries of a 1M-row index). List j, with
// n_chunks = chunks_of(its blocks), keeps its entries [list_entry_ptr[j], list_entry_ptr[j+1])
// in groups g = f * n_chunks + k (feature f, chunk k), groups in order, blocks ascending within
// one; each entry is (block within its chunk, hi[, lo]) u8s side by side. Its bit vector (words
// [list_word_ptr[j], list_word_ptr[j+1]) of `bits`) holds, for each group in order, one 1 per
// entry and then a 0 (E_j + n_cols * n_chunks bits, the rest of the last word 1s). So one lookup
// of the 0 that ends group f * n_chunks - 1 finds all of feature f's entries, contiguous, and the
// next n_chunks 0s (a word or two on) split them by chunk. Format 5 split lists into chunks with
// a bit vector each, so a query feature cost one lookup per chunk: lists of over 256 blocks (1M
// rows, n_postings 4000) paid two and more, and search slowed with list length (legacy format
// 5 files are converted on load). zero_samples (computed when built or loaded, not stored) holds
// every 32nd 0's position per list, from which a lookup scans a word or two.
#pragma once

#include <cstdint>
#include <string>

#include "index/layout.h"

namespace likeable {

struct BlockLayout;

constexpr std::int64_t kChunkBlocks = 256;
constexpr std::int64_t kZeroSample = 32;

struct FeatureSummaries {
  Array<std::int64_t> list_entry_ptr;   // n_cols + 1 (empty: summaries are stored by block)
  Array<std::int64_t> list_word_ptr;    // n_cols + 1
  Array<std::uint64_t> bits;
  Array<std::uint8_t> entries;          // entry_width(signed) u8s per entry: block, hi[, lo]
  Array<std::int64_t> list_sample_ptr;  // n_cols + 1: list j's samples in zero_samples
  Array<std::uint32_t> zero_samples;    // every 32nd 0's position in its list's bits

  bool present() const { return !list_entry_ptr.empty(); }
  std::int64_t n_entries() const { return present() ? list_entry_ptr[static_cast<std::int64_t>(list_entry_ptr.size()) - 1] : 0; }
  static std::int64_t chunks_of(std::int64_t n_blocks) { return (n_blocks + kChunkBlocks - 1) / kChunkBlocks; }
  static std::int64_t entry_width(bool is_signed) { return is_signed ? 3 : 2; }
  static std::int64_t words_of(std::int64_t n_bits) { return (n_bits + 63) / 64; }
  static std::int64_t samples_of(std::int64_t n_zeros) { return (n_zeros + kZeroSample - 1) / kZeroSample; }

  const std::uint64_t* words(std::int64_t j) const { return bits.data() + list_word_ptr[j]; }
  // Where group g (> 0) of list j starts: just after its list's (g-1)-th 0 (the sample to read
  // first is sample_for(j, g)).
  const std::uint32_t* sample_for(std::int64_t j, std::int64_t g) const {
    return zero_samples.data() + list_sample_ptr[j] + (g - 1) / kZeroSample;
  }
  std::int64_t group_start(std::int64_t j, std::int64_t g) const { return g == 0 ? 0 : zero(j, g - 1) + 1; }
  // The first 0 at or after bit `from` (one must follow: every group ends with one).
  static std::int64_t next_zero(const std::uint64_t* words, std::int64_t from) {
    std::int64_t w = from >> 6;
    std::uint64_t zeros = ~words[w] & (~std::uint64_t{0} << (from & 63));
    while (zeros == 0) zeros = ~words[++w];
    return (w << 6) + __builtin_ctzll(zeros);
  }

 private:
  // Position of list j's i-th 0.
  std::int64_t zero(std::int64_t j, std::int64_t i) const {
    const std::uint64_t* words = this->words(j);
    const std::int64_t from = zero_samples[list_sample_ptr[j] + i / kZeroSample];
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

// Checks the summaries of a loaded file against its lists (every list's bits hold one 0 per
// group within their length and one 1 per entry, every entry's block lies in its chunk, every
// scale is a finite number >= 0 and 0 only where every entry of its block is 0, else the bound
// would be 0 and search would skip rows it must score; lo_scale: signed indexes, else null), and
// computes the samples. Returns what is wrong, or an empty string.
std::string index_feature_summaries(FeatureSummaries& s, const Array<std::int64_t>& list_block_ptr,
                                    std::int64_t n_cols, bool is_signed, const float* hi_scale,
                                    const float* lo_scale);

// Format 5's summaries by feature, in chunks of 256 blocks each with its own bit vector of one 0
// per feature: checked (one 0 per feature and one 1 per entry in each chunk's bits, every
// entry's block in its chunk) and regrouped into format 6's lists (the same entries, moved).
// Returns what is wrong, or an empty string.
struct FeatureSummariesV5 {
  const std::int64_t* list_chunk_ptr;  // n_cols + 1
  const std::int64_t* chunk_entry_ptr;  // n_chunks + 1
  const std::int64_t* chunk_word_ptr;   // n_chunks + 1
  const std::uint64_t* bits;
  const std::uint8_t* entries;
  std::int64_t n_chunks;
};
std::string migrate_feature_summaries_v5(const FeatureSummariesV5& v5, const Array<std::int64_t>& list_block_ptr,
                                         std::int64_t n_cols, bool is_signed, FeatureSummaries& out);

}  // namespace likeable
