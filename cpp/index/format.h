// The index file (a core/io.h section file of kind "SIDX"): what format.cpp reads and writes
// for the current version, shared with legacy_format.cpp, which migrates older versions.
//
// Versions: 6: summaries by feature are grouped per list (sum_list_entry_ptr, sum_list_word_ptr,
// sum_bits, sum_entries; feature_summaries.h), so that a query feature costs one lookup per list;
// version-5 files are regrouped on load. 5: block summaries may be stored by feature (feature_summaries.h: sections
// sum_list_chunk_ptr, sum_chunk_entry_ptr, sum_chunk_word_ptr, sum_bits, sum_entries) instead of
// by block (block_sum_ptr, sum_features, sum_hi, sum_lo); whichever
// the file holds is used as it is. 4: the records are stored in search order (record_order), row r's at row_unit[r].
// 3: approximate indexes store one record per row (fwd_rows, in row order) and postings as
// record locations (post_loc). 2: compact forward index in separate arrays (fwd_indices as u16
// when n_cols <= 65536, fwd_half, fwd_row_scale) and postings as row ids (post_rows).
// 1: float32 forward index. Version-1 to -3 approximate files are converted to the version-4
// layout on load; exact indexes have not changed since version 1.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/io.h"
#include "index/approximate_layout.h"

namespace likeable::index_format {

constexpr std::uint32_t kVersion = 6;
constexpr const char* kKind = "SIDX";

// Structure is checked as well as checksums: a file that passes both cannot make search read
// outside its arrays (O(size of the index), a fraction of the checksum pass).
template <class T>
void check_monotone(const T* ptr, std::int64_t n, std::int64_t last, const std::string& source, const char* name) {
  if (ptr[0] != 0) throw FormatError(concat(source, ": ", name, " does not start at 0"));
  for (std::int64_t i = 0; i < n; ++i)
    if (ptr[i + 1] < ptr[i]) throw FormatError(concat(source, ": ", name, " decreases at ", i));
  if (ptr[n] != last) throw FormatError(concat(source, ": ", name, " ends at ", ptr[n], ", expected ", last));
}
template <class T>
void check_ids(const T* ids, std::int64_t n, std::int64_t bound, const std::string& source, const char* name) {
  for (std::int64_t i = 0; i < n; ++i)
    if (static_cast<std::int64_t>(ids[i]) < 0 || static_cast<std::int64_t>(ids[i]) >= bound)
      throw FormatError(concat(source, ": ", name, "[", i, "] = ", static_cast<std::int64_t>(ids[i]),
                               " is outside [0, ", bound, ")"));
}

// Stored float32 values: finite, and none negative where the signed flag is clear.
void check_stored_values(const float* values, std::int64_t n, bool is_signed, const std::string& source,
                         const char* name);

// Versions 3 and 4: views of the records (fwd_rows) and postings (post_loc), every record and
// posting checked; row_units() gives where each row's record starts.
RecordLayout view_records(const io::SectionReader& rd, const IndexCommon& common, const BlockLayout& blocks,
                          const std::function<Array<std::int64_t>()>& row_units);

// legacy_format.cpp: versions 1 and 2 (no fwd_rows), and version 3 (no row_unit).
RecordLayout migrate_records_v1_v2(const io::SectionReader& rd, const IndexCommon& common, const BlockLayout& blocks);
RecordLayout migrate_records_v3(const io::SectionReader& rd, const IndexCommon& common, const BlockLayout& blocks);

}  // namespace likeable::index_format
