// Inverted index over sparse codes: top activations per feature, and maximum inner product
// search (exact, or approximate with the Seismic recipe: pruned posting lists split into
// clustered blocks, each with a quantised summary giving an upper bound on its scores).
//
// Signed data: a summary stores, per feature, max(0, max x_j) and min(0, min x_j) over the
// block, so max(q_j * hi_j, q_j * lo_j) bounds q_j * x_j for either sign of q_j and x_j.
//
// Immutable after construction; every const method is safe to call from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/io.h"
#include "core/sparse.h"

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

class SparseIndex {
 public:
  // Builds from validated CSR codes (copies what it keeps).
  SparseIndex(const CsrView& codes, const IndexParams& params);
  // From a file written by save()/to_bytes(): the arrays point into `buffer` (no copy).
  static std::shared_ptr<SparseIndex> load(std::shared_ptr<io::Buffer> buffer, const std::string& source,
                                           bool verify_checksums);

  std::int64_t n_rows() const { return n_rows_; }
  std::int64_t n_cols() const { return n_cols_; }
  std::int64_t nnz() const { return fwd_indptr_[n_rows_]; }
  bool approximate() const { return approximate_; }
  bool is_signed() const { return signed_; }
  const IndexParams& params() const { return params_; }
  std::int64_t n_blocks() const { return n_blocks_; }
  std::vector<std::int64_t> block_lengths() const;  // rows per block (approximate mode)
  std::int64_t n_postings_stored() const;
  // The forward index as float32 CSR (exact indexes); an empty view (null arrays) for
  // approximate ones, which hold it compact. Used by the GPU path.
  CsrView forward_view() const;
  std::int64_t n_summary_entries() const;
  std::size_t file_bytes() const;

  // ids/scores: n_queries x k, row-major, sorted by score (ties: lower row id), padded -1/-inf.
  void search(const QueryBatch& queries, const SearchParams& params, std::int64_t* ids, float* scores) const;
  // Rows with the largest (sign > 0) or most negative (sign < 0) values of `feature`, at most n.
  void top_activations(std::int32_t feature, std::int64_t n, int sign, std::vector<std::int64_t>& rows,
                       std::vector<float>& values) const;

  std::vector<std::uint8_t> to_bytes() const;
  void save(const std::string& path) const;

 private:
  SparseIndex() = default;
  void build_forward(const CsrView& codes);
  void build_columns(std::vector<std::int64_t>& col_ptr, std::vector<std::int32_t>& col_rows,
                     std::vector<float>& col_values) const;
  void build_blocks(const std::vector<std::int64_t>& col_ptr, const std::vector<std::int32_t>& col_rows,
                    const std::vector<float>& col_values);
  io::SectionWriter writer(std::vector<std::int64_t>& meta, std::vector<double>& fparams) const;
  void point_at_owned();

  // Approximate mode: the row records and posting locations (see below) from a row source.
  // fill(r, id_units, halves) writes row r's ids and half values and returns its scale s_r.
  template <class RowFill>
  void pack_forward(RowFill&& fill, const std::int32_t* post_rows, std::int64_t n_post);
  void set_location_width(std::int64_t longest_row, std::int64_t units);  // loc_len_bits_, narrow_loc_
  void pack_from_floats(const std::int32_t* ids, const float* values, const std::int32_t* post_rows,
                        std::int64_t n_post);
  float row_dot(std::int64_t row, const float* q_dense) const;
  float record_dot(const std::uint16_t* rec, std::int64_t len, const float* q_dense) const;
  float record_value(const std::uint16_t* rec, std::int64_t len, std::int32_t feature) const;
  float value_at(std::int64_t row, std::int32_t feature) const;
  std::int64_t record_unit(std::int64_t row) const { return row_unit_[row]; }
  // Records in the order search is likely to read them: see pack_forward.
  std::vector<std::int32_t> record_order(const std::int32_t* post_rows) const;
  std::int64_t record_width() const { return n_cols_ <= 65536 ? 2 : 3; }  // u16 units per entry
  std::uint64_t loc_at(std::int64_t p) const { return post_loc32_ ? post_loc32_[p] : post_loc64_[p]; }
  static constexpr std::int64_t kRecordHeader = 4;  // u16 units: row id (u32), scale (f32)

  struct Scratch;
  void search_exact_one(const std::int32_t* q_idx, const float* q_val, std::int64_t q_nnz, Scratch& s,
                        std::int64_t k, std::int64_t* ids, float* scores) const;
  void search_approx_one(const std::int32_t* q_idx, const float* q_val, std::int64_t q_nnz, Scratch& s,
                         const SearchParams& params, std::int64_t* ids, float* scores) const;

  IndexParams params_;
  bool approximate_ = true;
  bool signed_ = false;
  std::int64_t n_rows_ = 0;
  std::int64_t n_cols_ = 0;
  std::int64_t n_blocks_ = 0;

  // Forward index (rows sorted by feature id, duplicates summed; fwd_indptr_ in both modes).
  // Exact mode keeps int32 ids and float32 values; approximate mode only the compact records
  // below (half the bytes per entry: re-scoring scattered rows is memory-latency bound).
  const std::int64_t* fwd_indptr_ = nullptr;
  const std::int32_t* fwd_indices_ = nullptr;
  const float* fwd_values_ = nullptr;
  // Exact mode: every column (rows ascending).
  const std::int64_t* col_ptr_ = nullptr;
  const std::int32_t* col_rows_ = nullptr;
  const float* col_values_ = nullptr;
  // Both modes: full column lengths (tells whether a pruned list is complete).
  const std::int64_t* col_nnz_ = nullptr;
  // Approximate mode (file version 4): the compact forward index is one array of u16 units
  // holding a record per row, at unit row_unit_[r] (version 3: in row order, without
  // row_unit; version 4: in the order of record_order): row id (u32), s_r (f32), the row's
  // feature ids (u16, or u32 as two units when n_cols > 65536), then its half values of x / s_r
  // (s_r a power of two, so the division is exact and |x / s_r| < 1; relative error <= 2^-11
  // of the row's largest |x|). A posting is the location of its row's record,
  // (unit << loc_len_bits_) | length, in u32 when that fits, else u64: re-scoring reads a row
  // with no dependent load of its offsets, and the row id comes from the record itself.
  const std::uint16_t* fwd_rows_ = nullptr;
  const std::int64_t* row_unit_ = nullptr;  // where row r's record starts (file version 4)
  std::int64_t fwd_units_ = 0;              // length of fwd_rows_
  const std::uint32_t* post_loc32_ = nullptr;
  const std::uint64_t* post_loc64_ = nullptr;
  bool narrow_loc_ = true;  // post_loc holds u32 (else u64); also decides an empty array's type
  int loc_len_bits_ = 0;
  // List j has blocks [list_block_ptr[j], list_block_ptr[j+1]); block b holds postings
  // [block_row_ptr[b], block_row_ptr[b+1]) and summary entries [block_sum_ptr[b], ..+1).
  const std::int64_t* list_block_ptr_ = nullptr;
  const std::int64_t* block_row_ptr_ = nullptr;
  const std::int64_t* block_sum_ptr_ = nullptr;
  const std::uint16_t* sum_features16_ = nullptr;  // feature ids when n_cols <= 65536 (Seismic does the same)
  const std::int32_t* sum_features32_ = nullptr;
  const std::uint8_t* sum_hi_ = nullptr;  // quantised max(0, max x_j), scale block_hi_scale[b]
  const std::uint8_t* sum_lo_ = nullptr;  // quantised -min(0, min x_j) (signed indexes only)
  const float* block_hi_scale_ = nullptr;
  const float* block_lo_scale_ = nullptr;

  struct Owned {
    std::vector<std::int64_t> fwd_indptr, col_ptr, col_nnz, list_block_ptr, block_row_ptr, block_sum_ptr, row_unit;
    std::vector<std::int32_t> fwd_indices, col_rows, post_rows, sum_features32;
    std::vector<std::uint16_t> sum_features16, fwd_rows;
    std::vector<std::uint32_t> post_loc32;
    std::vector<std::uint64_t> post_loc64;
    std::vector<float> fwd_values, col_values, block_hi_scale, block_lo_scale;
    std::vector<std::uint8_t> sum_hi, sum_lo;
  };
  std::shared_ptr<Owned> owned_;
  std::shared_ptr<io::Buffer> mapped_;
};

// Reference (the brute-force path every fast path is tested against): dense scores of every row.
void brute_force_search(const CsrView& codes, const QueryBatch& queries, std::int64_t k, int threads,
                        std::int64_t* ids, float* scores);

}  // namespace likeable
