// The arrays of an approximate index, and how its row records are laid out.
//
// Posting lists (BlockLayout): list j has blocks [list_block_ptr[j], list_block_ptr[j+1]); block
// b holds postings [block_row_ptr[b], block_row_ptr[b+1]). A summary stores, per feature,
// max(0, max x_j) (sum_hi) and, for signed indexes, -min(0, min x_j) (sum_lo) over the block,
// quantised to u8 with the block's scales, so max(q_j * hi_j, -q_j * lo_j) bounds q_j * x_j for
// either sign. Summaries are stored one of two ways, whichever takes fewer bytes: by block
// (block b's entries [block_sum_ptr[b], block_sum_ptr[b+1]) with their feature ids), or by
// feature (feature_summaries.h: per list, each feature's run of (block, value) entries).
//
// Row records (RecordLayout): the compact forward index is one array of u16 units holding a
// record per row, at unit row_unit[r], in the order search is likely to read them
// (record_order): row id (u32), s_r (f32), the row's feature ids (u16, or u32 as two units when
// n_cols > 65536), then its half values of x / s_r (s_r a power of two, so the division is exact
// and |x / s_r| < 1; relative error <= 2^-11 of the row's largest |x|). Half the bytes per entry
// of float32 ids and values: re-scoring scattered rows is memory-latency bound. A posting is the
// location of its row's record, (unit << len_bits) | length, in u32 when that fits, else u64:
// re-scoring reads a row with no dependent load of its offsets, and the row id comes from the
// record itself.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "index/feature_summaries.h"
#include "index/index.h"

namespace likeable {

struct BlockLayout {
  std::int64_t n_blocks = 0;
  Array<std::int64_t> list_block_ptr;
  Array<std::int64_t> block_row_ptr;
  Array<std::int64_t> block_sum_ptr;   // by block only (else empty)
  Array<std::uint16_t> sum_features16;  // feature ids when n_cols <= 65536 (Seismic does the same)
  Array<std::int32_t> sum_features32;   // feature ids otherwise
  Array<std::uint8_t> sum_hi;           // quantised max(0, max x_j), scale block_hi_scale[b] (by block)
  Array<std::uint8_t> sum_lo;           // quantised -min(0, min x_j) (signed indexes only; by block)
  Array<float> block_hi_scale;
  Array<float> block_lo_scale;          // signed indexes only
  FeatureSummaries by_feature;          // by feature only (else empty)

  std::int64_t n_postings() const { return block_row_ptr[n_blocks]; }
  std::int64_t n_summary_entries() const {
    return by_feature.present() ? by_feature.n_entries() : static_cast<std::int64_t>(sum_hi.size());
  }
};

constexpr std::int64_t kRecordHeader = 4;  // u16 units: row id (u32), scale (f32)
// u16 units per record entry: a u16 id and a half, or a u32 id (two units) and a half.
inline std::int64_t record_width(std::int64_t n_cols) { return n_cols <= 65536 ? 2 : 3; }

// How a posting packs its row's record location: (unit << len_bits) | row length.
struct RecordLocations {
  int len_bits = 0;
  bool narrow = true;  // u32 postings (else u64); also decides an empty post_loc's type

  // The one rule for both building and loading: as narrow as the longest row and the number of
  // units allow.
  static RecordLocations for_records(std::int64_t longest_row, std::int64_t units) {
    auto bit_width = [](std::uint64_t x) {
      int w = 0;
      for (; x != 0; x >>= 1) ++w;
      return w;
    };
    RecordLocations loc;
    loc.len_bits = std::max(1, bit_width(static_cast<std::uint64_t>(longest_row)));
    loc.narrow = bit_width(static_cast<std::uint64_t>(units)) + loc.len_bits <= 32;
    return loc;
  }
  std::uint64_t len_mask() const { return (std::uint64_t{1} << len_bits) - 1; }
};

struct RecordLayout {
  Array<std::uint16_t> units;     // every row's record (file section fwd_rows)
  Array<std::int64_t> row_unit;   // where row r's record starts
  RecordLocations loc;
  Array<std::uint32_t> post_loc32;  // one of the two holds the postings, by loc.narrow
  Array<std::uint64_t> post_loc64;

  std::uint64_t location(std::int64_t p) const { return loc.narrow ? post_loc32[p] : post_loc64[p]; }
  // The first two cache lines of postings from p on (a block's, as search is about to read them).
  void prefetch_postings(std::int64_t p) const {
    const char* at = loc.narrow ? reinterpret_cast<const char*>(post_loc32.data() + p)
                                : reinterpret_cast<const char*>(post_loc64.data() + p);
    __builtin_prefetch(at);
    __builtin_prefetch(at + 64);
  }
};

struct ApproxLayout {
  BlockLayout blocks;
  RecordLayout records;
};

// Round-to-nearest-even halves of values / s, s the power of two just above the largest |value|
// (so the division is exact and every |value / s| < 1); returns s.
float halves_of_row(const float* values, std::int64_t n, std::uint16_t* out);

// Rows in the order search is likely to read their records (see approximate_build.cpp).
std::vector<std::int32_t> record_order(const IndexCommon& common, const BlockLayout& blocks,
                                       const std::int32_t* post_rows);

// Lays out every row's record in record_order and the postings as record locations.
// fill(r, id_units, halves) writes row r's ids and half values and returns its scale s_r.
template <class RowFill>
RecordLayout pack_records(const IndexCommon& common, const BlockLayout& blocks, const std::int32_t* post_rows,
                          std::int64_t n_post, RowFill&& fill) {
  const std::int64_t n_rows = common.n_rows, width = record_width(common.n_cols);
  std::vector<std::int64_t> row_unit(static_cast<std::size_t>(n_rows), 0);
  std::int64_t n_units = 0;
  for (std::int32_t r : record_order(common, blocks, post_rows)) {
    row_unit[r] = n_units;
    n_units += kRecordHeader + width * common.row_length(r);
  }
  std::vector<std::uint16_t> units(static_cast<std::size_t>(n_units), 0);
  std::int64_t longest = 0;
  for (std::int64_t r = 0; r < n_rows; ++r) longest = std::max(longest, common.row_length(r));
  RecordLayout out;
  out.loc = RecordLocations::for_records(longest, n_units);
  parallel_for(n_rows, 4096, common.params.threads, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::uint16_t* rec = units.data() + row_unit[r];
      const std::int64_t len = common.row_length(r);
      const std::uint32_t id = static_cast<std::uint32_t>(r);
      std::memcpy(rec, &id, 4);
      const float scale = fill(r, rec + kRecordHeader, rec + kRecordHeader + (width - 1) * len);
      std::memcpy(rec + 2, &scale, 4);
    }
  });
  std::vector<std::uint32_t> loc32(out.loc.narrow ? n_post : 0);
  std::vector<std::uint64_t> loc64(out.loc.narrow ? 0 : n_post);
  for (std::int64_t p = 0; p < n_post; ++p) {
    const std::int64_t r = post_rows[p];
    const std::uint64_t loc = (static_cast<std::uint64_t>(row_unit[r]) << out.loc.len_bits) |
                              static_cast<std::uint64_t>(common.row_length(r));
    if (out.loc.narrow) loc32[p] = static_cast<std::uint32_t>(loc);
    else loc64[p] = loc;
  }
  out.units = Array<std::uint16_t>(std::move(units));
  out.row_unit = Array<std::int64_t>(std::move(row_unit));
  out.post_loc32 = Array<std::uint32_t>(std::move(loc32));
  out.post_loc64 = Array<std::uint64_t>(std::move(loc64));
  return out;
}

// pack_records from a float32 forward index (rows by common.fwd_indptr).
RecordLayout pack_records_from_floats(const IndexCommon& common, const BlockLayout& blocks,
                                      const std::int32_t* post_rows, std::int64_t n_post,
                                      const std::int32_t* indices, const float* values);

}  // namespace likeable
