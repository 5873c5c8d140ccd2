// Inverted index over sparse codes: top activations per feature, and maximum inner product
// search. Two kinds share this interface (as faiss's Index or hnswlib's AlgorithmInterface):
//  * ExactIndex (exact.h): every column, scored in full;
//  * ApproxIndex (approximate.h): the Seismic recipe, pruned posting lists split into clustered
//    blocks, each with a quantised summary giving an upper bound on its scores.
// brute_force.h holds the reference both are tested against.
//
// Immutable after construction; every const method is safe to call from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/io.h"
#include "core/sparse.h"
#include "index/layout.h"

namespace likeable {

// No tuning defaults here: the caller passes every value (likeable.SparseIndex documents the
// defaults, the one place they live), and the constructor refuses the zeros left unset.
struct IndexParams {
  bool approximate = false;
  // Mean posting list length: one global threshold on |x_j| keeps n_postings * n_cols entries,
  // no list longer than 1.5 * n_postings (Seismic's GlobalThreshold pruning).
  std::int64_t n_postings = 0;
  double block_fraction = 0.0;      // blocks per list = ceil(block_fraction * list length)
  double summary_energy = 0.0;      // fraction of each summary's L1 mass kept
  std::int64_t doc_cut = 0;         // components of a row used when clustering it into a block
  std::uint64_t seed = 0;
  int threads = 0;                  // <= 0: every core
  // How block summaries are stored (feature_summaries.h): kSmaller (what likeable.SparseIndex
  // builds), or forced one way, for tests of both.
  enum class Summaries { kSmaller, kByBlock, kByFeature } summaries = Summaries::kSmaller;
};

// A query batch: either CSR rows or a dense row-major matrix (n_queries x n_cols).
struct QueryBatch {
  const CsrView* sparse = nullptr;
  const float* dense = nullptr;
  std::int64_t n_queries = 0;
  std::int64_t n_cols = 0;
};

struct SearchParams {
  std::int64_t k = 10;
  std::int64_t query_cut = 0;  // <= 0: every component of the query
  double heap_factor = 1.0;    // a block is scanned when bound >= k-th score scaled by this
  int threads = 0;
};

struct SearchScratch;  // per-thread buffers of search (search_scratch.h)

// What both kinds hold.
struct IndexCommon {
  IndexParams params;
  bool is_signed = false;
  std::int64_t n_rows = 0;
  std::int64_t n_cols = 0;
  // Rows sorted by feature id with duplicates summed: fwd_indptr gives their lengths (the
  // entries themselves are kept by each kind in its own form).
  Array<std::int64_t> fwd_indptr;
  // Each feature's full column length (tells whether a pruned list is complete).
  Array<std::int64_t> col_nnz;
  // The file the arrays view, when loaded; null when built.
  std::shared_ptr<io::Buffer> file;
  // The largest |value| stored (not in the file: found on build and on load), which bounds
  // every score a query can reach (check_score_range).
  float max_abs_value = 0;

  std::int64_t row_length(std::int64_t r) const { return fwd_indptr[r + 1] - fwd_indptr[r]; }
};

// Refuses (InvalidArgument) a query batch whose scores against rows of largest |value| `max_abs`
// could overflow float32: no partial sum of q . x exceeds sum_j |q_j| * max_abs, and keeping that
// far below FLT_MAX keeps every path (exact, approximate, brute force) finite, so none can
// return inf or NaN scores where another would not.
void check_score_range(const QueryBatch& queries, double max_abs);

class SparseIndex {
 public:
  virtual ~SparseIndex() = default;

  // Builds from validated CSR codes (copies what it keeps): an ExactIndex or an ApproxIndex.
  static std::shared_ptr<SparseIndex> build(const CsrView& codes, const IndexParams& params);
  // From a file written by save()/to_bytes() (format.cpp; older versions are migrated by
  // legacy_format.cpp). Current-version arrays point into `buffer` (no copy).
  static std::shared_ptr<SparseIndex> load(std::shared_ptr<io::Buffer> buffer, const std::string& source,
                                           bool verify_checksums);

  std::int64_t n_rows() const { return common_.n_rows; }
  std::int64_t n_cols() const { return common_.n_cols; }
  std::int64_t nnz() const { return common_.fwd_indptr[common_.n_rows]; }
  bool is_signed() const { return common_.is_signed; }
  const IndexParams& params() const { return common_.params; }
  const IndexCommon& common() const { return common_; }
  virtual bool approximate() const = 0;
  virtual std::int64_t n_blocks() const { return 0; }
  virtual std::vector<std::int64_t> block_lengths() const { return {}; }  // rows per block
  virtual std::int64_t n_postings_stored() const = 0;
  virtual std::int64_t n_summary_entries() const { return 0; }
  // The forward index as float32 CSR; an empty view (null arrays) where it is held compact.
  // Used by the GPU path.
  virtual CsrView forward_view() const { return CsrView{}; }

  // Throws FormatError when a memory-mapped file changed since it was loaded (io::Buffer::
  // check_unchanged); callers check before reading the arrays.
  void check_file() const {
    if (common_.file) common_.file->check_unchanged();
  }

  // ids/scores: n_queries x k, row-major, sorted by score (ties: lower row id), padded -1/-inf.
  void search(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids, float* scores) const;
  // Rows with the largest (sign > 0) or most negative (sign < 0) values of `feature`, at most n.
  void top_activations(std::int32_t feature, std::int64_t n, int sign, std::vector<std::int64_t>& rows,
                       std::vector<float>& values) const;

  // Files (format.cpp).
  std::vector<std::uint8_t> to_bytes() const;
  void save(const std::string& path) const;
  std::size_t file_bytes() const;
  // Adds the kind's own sections to a file being written.
  virtual void add_sections(io::SectionWriter& writer) const = 0;

  // Every row as float32 CSR, in chunks of consecutive rows: fn(chunk, first row of the chunk).
  using RowChunkFn = std::function<void(const CsrView&, std::int64_t)>;
  virtual void for_each_row_chunk(const RowChunkFn& fn, int threads) const = 0;
  // Queries whose features' columns hold more than this many entries are answered by scoring
  // every row (all_rows.cpp): where a kind's own path stops paying (exact) or stops being
  // accurate (approximate: block bounds cannot prune a dense query). `dense`: the batch came as
  // a dense array (weights) rather than CSR (codes).
  virtual std::int64_t all_rows_cost(bool dense) const = 0;

  // One query's non-zero components (ids ascending for CSR queries; may repeat).
  struct Query {
    const std::int32_t* idx;
    const float* val;
    std::int64_t nnz;
  };

 protected:
  explicit SparseIndex(IndexCommon common) : common_(std::move(common)) {}
  virtual void search_one(const Query& q, SearchScratch& s, const SearchParams& params, std::int64_t* ids,
                          float* scores) const = 0;
  // Appends (value * sign, row) for every row where value * sign > 0, at least the n largest.
  virtual void collect_feature(std::int32_t feature, std::int64_t n, int sign,
                               std::vector<std::pair<float, std::int64_t>>& hits) const = 0;

  IndexCommon common_;

 private:
  // The queries above all_rows_cost(), scored against every row by the tiled kernel of
  // core/tile_scores.h, a batch at a time; marks them in `done`.
  void search_all_rows(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids, float* scores,
                       std::vector<char>& done) const;
};

}  // namespace likeable
