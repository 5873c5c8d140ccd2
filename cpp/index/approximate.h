// The approximate index (the Seismic recipe): a global threshold prunes the posting lists, each
// list is split into blocks of rows clustered together, and each block carries a quantised
// summary whose dot product with the query bounds its rows' scores; search visits the lists of
// the query's largest components, blocks in descending bound, and stops at the first block that
// cannot beat the k-th score (scaled by heap_factor). Rows are re-scored from compact records.
// Layout: approximate_layout.h; build: approximate_build.cpp; search: approximate_search.cpp.
#pragma once

#include <limits>
#include <memory>

#include "index/approximate_layout.h"
#include "index/index.h"

namespace likeable {

class ApproxIndex final : public SparseIndex {
 public:
  ApproxIndex(IndexCommon common, ApproxLayout layout) : SparseIndex(std::move(common)), layout_(std::move(layout)) {}
  // From validated codes with params already checked (SparseIndex::build does).
  static std::shared_ptr<ApproxIndex> build(const CsrView& codes, const IndexParams& params);

  bool approximate() const override { return true; }
  std::int64_t n_blocks() const override { return layout_.blocks.n_blocks; }
  std::vector<std::int64_t> block_lengths() const override;
  std::int64_t n_postings_stored() const override { return layout_.blocks.n_postings(); }
  std::int64_t n_summary_entries() const override { return layout_.blocks.n_summary_entries(); }
  void add_sections(io::SectionWriter& writer) const override;  // format.cpp
  // Rows decoded from their records (halves times the row's scale), 65,536 rows a chunk.
  void for_each_row_chunk(const RowChunkFn& fn, int threads) const override;
  // Dense arrays (a user's weights) past an eighth of all entries: sparse codes as queries touch
  // 1-2% (SAE, HH, synthetic corpora); past an eighth, block summaries (each keeps its block's
  // largest components) miss too much of a query that weighs nearly every feature to bound it.
  // CSR queries are codes: they always take the approximate path as asked (query_cut,
  // heap_factor), so old files search exactly as they did.
  std::int64_t all_rows_cost(bool dense) const override {
    return dense ? nnz() / 8 : std::numeric_limits<std::int64_t>::max();
  }
  const ApproxLayout& layout() const { return layout_; }

 protected:
  void search_one(const Query& q, SearchScratch& s, const SearchParams& params, std::int64_t* ids,
                  float* scores) const override;
  void collect_feature(std::int32_t feature, std::int64_t n, int sign,
                       std::vector<std::pair<float, std::int64_t>>& hits) const override;

 private:
  // q . x for a record of a row with `len` entries.
  float record_dot(const std::uint16_t* rec, std::int64_t len, const float* q_dense, bool use_avx2) const;
  // The value of `feature` in a record (0 when absent).
  float record_value(const std::uint16_t* rec, std::int64_t len, std::int32_t feature) const;
  // Upper bound of q . x over the rows of block `blk` (summaries by block).
  float block_bound(std::int64_t blk, const float* q, bool use_avx2) const;
  // Every block's bound in each of `lists` (summaries by feature), into s.list_bounds, list l's
  // at [s.list_bound_ptr[l], s.list_bound_ptr[l + 1]).
  void bounds_by_feature(const std::int32_t* lists, std::size_t n_lists, SearchScratch& s, const float* q) const;

  ApproxLayout layout_;
};

}  // namespace likeable
