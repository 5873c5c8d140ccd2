// The exact index: the forward index and every column in float32; a query scores every row
// its features touch (scatter, or a pass over the forward index for dense-ish queries).
#pragma once

#include <memory>

#include "index/index.h"

namespace likeable {

struct ExactLayout {
  Array<std::int32_t> fwd_indices;  // the forward index (rows by common.fwd_indptr)
  Array<float> fwd_values;
  Array<std::int64_t> col_ptr;      // every column, rows ascending
  Array<std::int32_t> col_rows;
  Array<float> col_values;
};

class ExactIndex final : public SparseIndex {
 public:
  ExactIndex(IndexCommon common, ExactLayout layout) : SparseIndex(std::move(common)), layout_(std::move(layout)) {}
  // From validated codes with params already checked (SparseIndex::build does).
  static std::shared_ptr<ExactIndex> build(const CsrView& codes, const IndexParams& params);

  bool approximate() const override { return false; }
  std::int64_t n_postings_stored() const override { return nnz(); }
  CsrView forward_view() const override;
  void for_each_row_chunk(const RowChunkFn& fn, int threads) const override;
  // Past half of all entries a scatter costs more than reading every row once per tile.
  std::int64_t all_rows_cost(bool) const override { return nnz() / 2; }
  void add_sections(io::SectionWriter& writer) const override;  // format.cpp
  const ExactLayout& layout() const { return layout_; }

 protected:
  void search_one(const Query& q, SearchScratch& s, const SearchParams& params, std::int64_t* ids,
                  float* scores) const override;
  void collect_feature(std::int32_t feature, std::int64_t n, int sign,
                       std::vector<std::pair<float, std::int64_t>>& hits) const override;

 private:
  ExactLayout layout_;
};

}  // namespace likeable
