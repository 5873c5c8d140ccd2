// The approximate index (the Seismic recipe): a global threshold prunes the posting lists, each
// list is split into blocks of rows clustered together, and each block carries a quantised
// summary whose dot product with the query bounds its rows' scores; search visits the lists of
// the query's largest components, blocks in descending bound, and stops at the first block that
// cannot beat the k-th score (scaled by heap_factor). Rows are re-scored from compact records.
// Layout: approximate_layout.h; build: approximate_build.cpp; search: approximate_search.cpp.
#pragma once

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
  // Upper bound of q . x over the rows of block `blk`.
  float block_bound(std::int64_t blk, const float* q, bool use_avx2) const;

  ApproxLayout layout_;
};

}  // namespace likeable
