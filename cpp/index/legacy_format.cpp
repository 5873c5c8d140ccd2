// Older approximate-index files (format.h), converted on load into the current records: a
// copy, with values bit for bit (version 1's floats round to halves as a build does), so
// results do not change. Exact indexes and the posting-list sections have not changed.
#include <algorithm>
#include <cstring>

#include "index/format.h"
#include "index/kernels.h"

namespace likeable::index_format {

using index_kernels::read_f32;
using index_kernels::read_u32;

// Versions 1 and 2: row ids as postings and a separate forward index (v1 float32; v2 u16/u32
// ids, halves and a scale per row).
RecordLayout migrate_records_v1_v2(const io::SectionReader& rd, const IndexCommon& c, const BlockLayout& blocks) {
  const std::string& source = rd.source();
  const std::int64_t n_rows = c.n_rows, n_cols = c.n_cols;
  const bool narrow = n_cols <= 65536;
  const std::int64_t n_post = static_cast<std::int64_t>(rd.count<std::int32_t>("post_rows"));
  check_monotone(blocks.block_row_ptr.data(), blocks.n_blocks, n_post, source, "block_row_ptr");
  const std::int32_t* post_rows = rd.get<std::int32_t>("post_rows", n_post);
  check_ids(post_rows, n_post, n_rows, source, "post_rows");
  if (!rd.has("fwd_half")) {  // version 1
    const std::int64_t nnz = static_cast<std::int64_t>(rd.count<float>("fwd_values"));
    check_monotone(c.fwd_indptr.data(), n_rows, nnz, source, "fwd_indptr");
    const std::int32_t* ids = rd.get<std::int32_t>("fwd_indices", nnz);
    check_ids(ids, nnz, n_cols, source, "fwd_indices");
    check_stored_values(rd.get<float>("fwd_values", nnz), nnz, c.is_signed, source, "fwd_values");
    return pack_records_from_floats(c, blocks, post_rows, n_post, ids, rd.get<float>("fwd_values", nnz));
  }
  const std::int64_t nnz = static_cast<std::int64_t>(rd.count<std::uint16_t>("fwd_half"));
  check_monotone(c.fwd_indptr.data(), n_rows, nnz, source, "fwd_indptr");
  const std::uint16_t* half = rd.get<std::uint16_t>("fwd_half", nnz);
  const float* row_scale = rd.get<float>("fwd_row_scale", n_rows);
  const std::uint16_t* ids16 = narrow ? rd.get<std::uint16_t>("fwd_indices", nnz) : nullptr;
  const std::int32_t* ids32 = narrow ? nullptr : rd.get<std::int32_t>("fwd_indices", nnz);
  if (narrow) check_ids(ids16, nnz, n_cols, source, "fwd_indices");
  else check_ids(ids32, nnz, n_cols, source, "fwd_indices");
  const std::int64_t* indptr = c.fwd_indptr.data();
  return pack_records(c, blocks, post_rows, n_post, [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
    const std::int64_t b = indptr[r], len = indptr[r + 1] - b;
    if (narrow) std::copy_n(ids16 + b, len, id_units);
    else std::memcpy(id_units, ids32 + b, static_cast<std::size_t>(4 * len));
    std::copy_n(half + b, len, halves);
    return row_scale[r];
  });
}

// Version 3: the current records, but in row order (row r's at unit 4 r + width fwd_indptr[r],
// no row_unit): checked like version 4's, then re-laid in search order.
RecordLayout migrate_records_v3(const io::SectionReader& rd, const IndexCommon& c, const BlockLayout& blocks) {
  const std::int64_t n_rows = c.n_rows, width = record_width(c.n_cols);
  const RecordLayout old = view_records(rd, c, blocks, [&] {
    std::vector<std::int64_t> row_unit(static_cast<std::size_t>(n_rows));
    for (std::int64_t r = 0; r < n_rows; ++r) row_unit[r] = kRecordHeader * r + width * c.fwd_indptr[r];
    return Array<std::int64_t>(std::move(row_unit));
  });
  const std::int64_t n_post = blocks.n_postings();
  const std::uint16_t* units = old.units.data();
  std::vector<std::int32_t> post_rows(static_cast<std::size_t>(n_post));
  for (std::int64_t p = 0; p < n_post; ++p)
    post_rows[p] = static_cast<std::int32_t>(read_u32(units + (old.location(p) >> old.loc.len_bits)));
  return pack_records(c, blocks, post_rows.data(), n_post,
                      [&](std::int64_t r, std::uint16_t* id_units, std::uint16_t* halves) {
                        const std::uint16_t* rec = units + old.row_unit[r];
                        const std::int64_t len = c.row_length(r);
                        std::copy_n(rec + kRecordHeader, (width - 1) * len, id_units);
                        std::copy_n(rec + kRecordHeader + (width - 1) * len, len, halves);
                        return read_f32(rec + 2);
                      });
}

}  // namespace likeable::index_format
