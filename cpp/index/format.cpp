// Saving and loading indexes (format.h): the current version's sections, with every length and
// every stored value that search trusts checked on load.
#include "index/format.h"

#include <algorithm>
#include <cmath>

#include "index/approximate.h"
#include "index/exact.h"
#include "core/simd.h"
#include "index/kernels.h"

namespace likeable {

using index_kernels::read_f32;
using index_kernels::read_u32;
using namespace index_format;

namespace {

// The file of one index: shared sections, then the kind's own (SparseIndex::add_sections).
// The writer keeps pointers to meta and fparams, so this object stays where it was made.
struct IndexFileWriter {
  std::vector<std::int64_t> meta;
  std::vector<double> fparams;
  io::SectionWriter sections{kKind, kVersion};

  explicit IndexFileWriter(const SparseIndex& index) {
    const IndexCommon& c = index.common();
    const IndexParams& p = c.params;
    meta = {c.n_rows, c.n_cols, index.approximate() ? 1 : 0, c.is_signed ? 1 : 0, index.n_blocks(), p.n_postings,
            p.doc_cut, static_cast<std::int64_t>(p.seed)};
    fparams = {p.block_fraction, p.summary_energy};
    sections.add("meta", meta);
    sections.add("params", fparams);
    sections.add("fwd_indptr", c.fwd_indptr.data(), c.n_rows + 1);
    sections.add("col_nnz", c.col_nnz.data(), c.n_cols);
    index.add_sections(sections);
  }
  IndexFileWriter(const IndexFileWriter&) = delete;
};

// meta, params and the arrays both kinds share.
IndexCommon read_common(const io::SectionReader& rd, const std::string& source) {
  IndexCommon c;
  c.file = rd.buffer();
  const std::int64_t* meta = rd.get<std::int64_t>("meta", 8);
  const double* fparams = rd.get<double>("params", 2);
  c.n_rows = meta[0];
  c.n_cols = meta[1];
  c.params.approximate = meta[2] != 0;
  c.is_signed = meta[3] != 0;
  c.params.n_postings = meta[5];
  c.params.doc_cut = meta[6];
  c.params.seed = static_cast<std::uint64_t>(meta[7]);
  c.params.block_fraction = fparams[0];
  c.params.summary_energy = fparams[1];
  if (c.n_rows < 0 || c.n_rows > INT32_MAX || c.n_cols < 0 || c.n_cols > INT32_MAX || meta[4] < 0)
    throw FormatError(concat(source, ": implausible sizes in the header"));
  if ((meta[2] != 0 && meta[2] != 1) || (meta[3] != 0 && meta[3] != 1))
    throw FormatError(concat(source, ": the approximate/signed flags in meta are not 0 or 1"));
  // The build parameters are reported back (get_params) and build new indexes: the ranges build accepts.
  const IndexParams& p = c.params;
  if (!(p.n_postings >= 1 && p.doc_cut >= 1 && p.block_fraction > 0 && p.block_fraction <= 1 &&
        p.summary_energy > 0 && p.summary_energy <= 1))
    throw FormatError(concat(source, ": build parameters out of range in params/meta (n_postings=", p.n_postings,
                             ", doc_cut=", p.doc_cut, ", block_fraction=", p.block_fraction, ", summary_energy=",
                             p.summary_energy, ")"));
  c.fwd_indptr = Array<std::int64_t>::view(rd.get<std::int64_t>("fwd_indptr", c.n_rows + 1), c.n_rows + 1);
  c.col_nnz = Array<std::int64_t>::view(rd.get<std::int64_t>("col_nnz", c.n_cols), c.n_cols);
  return c;
}

ExactLayout read_exact(const io::SectionReader& rd, const IndexCommon& c) {
  const std::string& source = rd.source();
  const std::int64_t n_rows = c.n_rows, n_cols = c.n_cols;
  ExactLayout L;
  const std::int64_t nnz = static_cast<std::int64_t>(rd.count<float>("fwd_values"));
  check_monotone(c.fwd_indptr.data(), n_rows, nnz, source, "fwd_indptr");
  L.fwd_indices = Array<std::int32_t>::view(rd.get<std::int32_t>("fwd_indices", nnz), nnz);
  L.fwd_values = Array<float>::view(rd.get<float>("fwd_values", nnz), nnz);
  check_ids(L.fwd_indices.data(), nnz, n_cols, source, "fwd_indices");
  L.col_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("col_ptr", n_cols + 1), n_cols + 1);
  check_monotone(L.col_ptr.data(), n_cols, nnz, source, "col_ptr");
  L.col_rows = Array<std::int32_t>::view(rd.get<std::int32_t>("col_rows", nnz), nnz);
  L.col_values = Array<float>::view(rd.get<float>("col_values", nnz), nnz);
  check_ids(L.col_rows.data(), nnz, n_rows, source, "col_rows");
  for (std::int64_t j = 0; j < n_cols; ++j)
    if (c.col_nnz[j] != L.col_ptr[j + 1] - L.col_ptr[j])
      throw FormatError(concat(source, ": col_nnz disagrees with col_ptr at ", j));
  check_stored_values(L.fwd_values.data(), nnz, c.is_signed, source, "fwd_values");
  check_stored_values(L.col_values.data(), nnz, c.is_signed, source, "col_values");
  return L;
}

// Summaries by feature (feature_summaries.h): version 6's as stored, version 5's (chunks of 256
// blocks with a bit vector each) regrouped by list. Their structure is checked here, their values
// against the block scales once those are read (read_blocks).
void read_feature_summaries(const io::SectionReader& rd, BlockLayout& L, const IndexCommon& c) {
  const std::string& source = rd.source();
  const std::int64_t n_cols = c.n_cols;
  FeatureSummaries& fs = L.by_feature;
  const std::int64_t width = FeatureSummaries::entry_width(c.is_signed);
  const std::int64_t n_bytes = static_cast<std::int64_t>(rd.count<std::uint8_t>("sum_entries"));
  if (n_bytes % width != 0) throw FormatError(concat(source, ": sum_entries is not a whole number of entries"));
  const std::int64_t n_words = static_cast<std::int64_t>(rd.count<std::uint64_t>("sum_bits"));
  const std::uint64_t* bits = rd.get<std::uint64_t>("sum_bits", n_words);
  const std::uint8_t* entries = rd.get<std::uint8_t>("sum_entries", n_bytes);
  if (!rd.has("sum_list_chunk_ptr")) {
    fs.list_entry_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("sum_list_entry_ptr", n_cols + 1), n_cols + 1);
    check_monotone(fs.list_entry_ptr.data(), n_cols, n_bytes / width, source, "sum_list_entry_ptr");
    fs.list_word_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("sum_list_word_ptr", n_cols + 1), n_cols + 1);
    check_monotone(fs.list_word_ptr.data(), n_cols, n_words, source, "sum_list_word_ptr");
    fs.bits = Array<std::uint64_t>::view(bits, n_words);
    fs.entries = Array<std::uint8_t>::view(entries, n_bytes);
    return;
  }
  FeatureSummariesV5 v5{};
  v5.list_chunk_ptr = rd.get<std::int64_t>("sum_list_chunk_ptr", n_cols + 1);
  v5.n_chunks = static_cast<std::int64_t>(rd.count<std::int64_t>("sum_chunk_entry_ptr")) - 1;
  if (v5.n_chunks < 0) throw FormatError(concat(source, ": sum_chunk_entry_ptr is empty"));
  check_monotone(v5.list_chunk_ptr, n_cols, v5.n_chunks, source, "sum_list_chunk_ptr");
  v5.chunk_entry_ptr = rd.get<std::int64_t>("sum_chunk_entry_ptr", v5.n_chunks + 1);
  check_monotone(v5.chunk_entry_ptr, v5.n_chunks, n_bytes / width, source, "sum_chunk_entry_ptr");
  v5.chunk_word_ptr = rd.get<std::int64_t>("sum_chunk_word_ptr", v5.n_chunks + 1);
  check_monotone(v5.chunk_word_ptr, v5.n_chunks, n_words, source, "sum_chunk_word_ptr");
  v5.bits = bits;
  v5.entries = entries;
  const std::string wrong = migrate_feature_summaries_v5(v5, L.list_block_ptr, n_cols, c.is_signed, fs);
  if (!wrong.empty()) throw FormatError(concat(source, ": the summaries by feature are damaged: ", wrong));
}

// A block's summary entries are u8 multiples of its scale: a scale that is not a finite
// number >= 0, or one of 0 under non-zero entries, would make its bound wrong (search would
// skip rows it must score).
void check_scales(const float* scale, const std::uint8_t* entries, const std::int64_t* sum_ptr, std::int64_t n_blocks,
                  const std::string& source, const char* name) {
  for (std::int64_t b = 0; b < n_blocks; ++b) {
    const float s = scale[b];
    bool ok = std::isfinite(s) && s >= 0;
    if (ok && s == 0)
      for (std::int64_t e = sum_ptr[b]; e < sum_ptr[b + 1]; ++e) ok &= entries[e] == 0;
    if (!ok) throw FormatError(concat(source, ": ", name, "[", b, "] = ", s, " does not scale the block's summary"));
  }
}

// Posting lists, blocks and summaries (the same sections in every version but 5's and 6's choice).
BlockLayout read_blocks(const io::SectionReader& rd, const IndexCommon& c, std::int64_t n_blocks) {
  const std::string& source = rd.source();
  const std::int64_t n_cols = c.n_cols;
  // The count in meta must match the stored arrays before it sizes anything (n_blocks + 1 of
  // a crafted 2^63 - 1 would overflow).
  if (n_blocks != static_cast<std::int64_t>(rd.count<std::int64_t>("block_row_ptr")) - 1)
    throw FormatError(concat(source, ": meta says ", n_blocks, " blocks but block_row_ptr holds ",
                             rd.count<std::int64_t>("block_row_ptr"), " entries"));
  BlockLayout L;
  L.n_blocks = n_blocks;
  L.list_block_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("list_block_ptr", n_cols + 1), n_cols + 1);
  check_monotone(L.list_block_ptr.data(), n_cols, n_blocks, source, "list_block_ptr");
  L.block_row_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("block_row_ptr", n_blocks + 1), n_blocks + 1);
  if (rd.has("sum_bits")) {
    read_feature_summaries(rd, L, c);
  } else {
    const std::int64_t n_sum = static_cast<std::int64_t>(rd.count<std::uint8_t>("sum_hi"));
    L.block_sum_ptr = Array<std::int64_t>::view(rd.get<std::int64_t>("block_sum_ptr", n_blocks + 1), n_blocks + 1);
    check_monotone(L.block_sum_ptr.data(), n_blocks, n_sum, source, "block_sum_ptr");
    if (n_cols <= 65536) {
      L.sum_features16 = Array<std::uint16_t>::view(rd.get<std::uint16_t>("sum_features", n_sum), n_sum);
      check_ids(L.sum_features16.data(), n_sum, n_cols, source, "sum_features");
    } else {
      L.sum_features32 = Array<std::int32_t>::view(rd.get<std::int32_t>("sum_features", n_sum), n_sum);
      check_ids(L.sum_features32.data(), n_sum, n_cols, source, "sum_features");
    }
    L.sum_hi = Array<std::uint8_t>::view(rd.get<std::uint8_t>("sum_hi", n_sum), n_sum);
    if (c.is_signed) L.sum_lo = Array<std::uint8_t>::view(rd.get<std::uint8_t>("sum_lo", n_sum), n_sum);
  }
  L.block_hi_scale = Array<float>::view(rd.get<float>("block_hi_scale", n_blocks), n_blocks);
  if (c.is_signed) L.block_lo_scale = Array<float>::view(rd.get<float>("block_lo_scale", n_blocks), n_blocks);
  if (L.by_feature.present()) {
    const std::string wrong = index_feature_summaries(L.by_feature, L.list_block_ptr, n_cols, c.is_signed,
                                                      L.block_hi_scale.data(),
                                                      c.is_signed ? L.block_lo_scale.data() : nullptr);
    if (!wrong.empty()) throw FormatError(concat(source, ": the summaries by feature are damaged: ", wrong));
  } else {
    check_scales(L.block_hi_scale.data(), L.sum_hi.data(), L.block_sum_ptr.data(), n_blocks, source, "block_hi_scale");
    if (c.is_signed)
      check_scales(L.block_lo_scale.data(), L.sum_lo.data(), L.block_sum_ptr.data(), n_blocks, source,
                   "block_lo_scale");
  }
  return L;
}

// Every row's record (any version, after migration): a positive finite scale and finite half
// values, none negative in an index whose signed flag is clear (its summaries have no negative
// part, so a negative value would be scored but never bounded). Returns the largest |value|.
float check_record_values(const IndexCommon& c, const RecordLayout& records, const std::string& source) {
  const std::int64_t width = record_width(c.n_cols);
  float largest = 0;
  for (std::int64_t r = 0; r < c.n_rows; ++r) {
    const std::uint16_t* rec = records.units.data() + records.row_unit[r];
    const std::int64_t len = c.row_length(r);
    const float scale = read_f32(rec + 2);
    if (!(scale > 0) || !std::isfinite(scale))
      throw FormatError(concat(source, ": the record of row ", r, " has scale ", scale));
    const std::uint16_t* halves = rec + kRecordHeader + (width - 1) * len;
    std::uint16_t widest = 0;
    for (std::int64_t i = 0; i < len; ++i) {
      const std::uint16_t h = halves[i];
      if ((h & 0x7c00u) == 0x7c00u || (!c.is_signed && (h & 0x8000u) && (h & 0x7fffu)))
        throw FormatError(concat(source, ": row ", r, " stores ",
                                 (h & 0x7c00u) == 0x7c00u ? "a NaN or infinite value" : "a negative value",
                                 (h & 0x7c00u) == 0x7c00u ? "" : " but the index is marked unsigned"));
      widest = std::max<std::uint16_t>(widest, h & 0x7fffu);  // the order of |half| is that of its bits
    }
    largest = std::max(largest, scale * simd::half_to_float(widest));
  }
  return largest;
}

}  // namespace

namespace index_format {

void check_stored_values(const float* values, std::int64_t n, bool is_signed, const std::string& source,
                         const char* name) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i]) || (!is_signed && values[i] < 0))
      throw FormatError(concat(source, ": ", name, "[", i, "] = ", values[i],
                               std::isfinite(values[i]) ? " is negative but the index is marked unsigned" : ""));
}

RecordLayout view_records(const io::SectionReader& rd, const IndexCommon& c, const BlockLayout& blocks,
                          const std::function<Array<std::int64_t>()>& row_units) {
  const std::string& source = rd.source();
  const std::int64_t n_rows = c.n_rows, n_cols = c.n_cols, width = record_width(n_cols);
  const bool narrow = n_cols <= 65536;
  const std::int64_t units = static_cast<std::int64_t>(rd.count<std::uint16_t>("fwd_rows"));
  const std::int64_t entry_units = units - kRecordHeader * n_rows;
  if (entry_units < 0 || entry_units % width != 0)
    throw FormatError(concat(source, ": fwd_rows holds ", units, " units, not ", kRecordHeader,
                             " per row plus whole entries"));
  check_monotone(c.fwd_indptr.data(), n_rows, entry_units / width, source, "fwd_indptr");
  const std::uint16_t* fwd_rows = rd.get<std::uint16_t>("fwd_rows", units);
  RecordLayout L;
  L.units = Array<std::uint16_t>::view(fwd_rows, units);
  L.row_unit = row_units();
  std::int64_t longest = 0;
  for (std::int64_t r = 0; r < n_rows; ++r) {
    const std::int64_t len = c.row_length(r);
    longest = std::max(longest, len);
    const std::int64_t unit = L.row_unit[r];
    if (unit < 0 || unit > units - kRecordHeader - width * len)
      throw FormatError(concat(source, ": row_unit[", r, "] = ", unit, " puts its record outside fwd_rows"));
    const std::uint16_t* rec = fwd_rows + unit;
    const float scale = read_f32(rec + 2);
    if (read_u32(rec) != static_cast<std::uint32_t>(r) || !(scale > 0) || !std::isfinite(scale))
      throw FormatError(concat(source, ": the record of row ", r, " is damaged"));
    const std::uint16_t* ids = rec + kRecordHeader;
    for (std::int64_t i = 0; i < len; ++i) {
      const std::int64_t id = narrow ? ids[i] : static_cast<std::int64_t>(read_u32(ids + 2 * i));
      if (id >= n_cols)
        throw FormatError(concat(source, ": row ", r, " holds feature ", id, ", outside [0, ", n_cols, ")"));
    }
  }
  L.loc = RecordLocations::for_records(longest, units);
  const std::int64_t n_post = static_cast<std::int64_t>(L.loc.narrow ? rd.count<std::uint32_t>("post_loc")
                                                                     : rd.count<std::uint64_t>("post_loc"));
  check_monotone(blocks.block_row_ptr.data(), blocks.n_blocks, n_post, source, "block_row_ptr");
  if (L.loc.narrow) L.post_loc32 = Array<std::uint32_t>::view(rd.get<std::uint32_t>("post_loc", n_post), n_post);
  else L.post_loc64 = Array<std::uint64_t>::view(rd.get<std::uint64_t>("post_loc", n_post), n_post);
  const std::uint64_t len_mask = L.loc.len_mask();
  for (std::int64_t p = 0; p < n_post; ++p) {
    // Every posting must name the start of a record and that row's length.
    const std::uint64_t loc = L.location(p);
    const std::uint64_t unit = loc >> L.loc.len_bits;
    const std::uint32_t r = unit + kRecordHeader <= static_cast<std::uint64_t>(units) ? read_u32(fwd_rows + unit) : ~0u;
    if (r >= static_cast<std::uint64_t>(n_rows) || static_cast<std::uint64_t>(L.row_unit[r]) != unit ||
        (loc & len_mask) != static_cast<std::uint64_t>(c.row_length(r)))
      throw FormatError(concat(source, ": post_loc[", p, "] does not point at a row's record"));
  }
  return L;
}

}  // namespace index_format

std::shared_ptr<SparseIndex> SparseIndex::load(std::shared_ptr<io::Buffer> buffer, const std::string& source,
                                               bool verify_checksums) {
  io::SectionReader rd(std::move(buffer), kKind, kVersion, source, verify_checksums);
  IndexCommon common = read_common(rd, source);
  if (!common.params.approximate) {
    ExactLayout layout = read_exact(rd, common);
    common.max_abs_value = max_abs(layout.fwd_values.data(), static_cast<std::int64_t>(layout.fwd_values.size()));
    return std::make_shared<ExactIndex>(std::move(common), std::move(layout));
  }
  ApproxLayout layout;
  layout.blocks = read_blocks(rd, common, rd.get<std::int64_t>("meta", 8)[4]);
  if (!rd.has("fwd_rows")) {
    layout.records = migrate_records_v1_v2(rd, common, layout.blocks);
  } else if (!rd.has("row_unit")) {
    layout.records = migrate_records_v3(rd, common, layout.blocks);
  } else {
    const std::int64_t n_rows = common.n_rows;
    layout.records = view_records(rd, common, layout.blocks, [&] {
      return Array<std::int64_t>::view(rd.get<std::int64_t>("row_unit", n_rows), n_rows);
    });
  }
  common.max_abs_value = check_record_values(common, layout.records, source);
  return std::make_shared<ApproxIndex>(std::move(common), std::move(layout));
}

void ExactIndex::add_sections(io::SectionWriter& w) const {
  const std::int64_t n_cols = this->n_cols(), nnz = this->nnz();
  w.add("fwd_indices", layout_.fwd_indices.data(), nnz);
  w.add("fwd_values", layout_.fwd_values.data(), nnz);
  w.add("col_ptr", layout_.col_ptr.data(), n_cols + 1);
  w.add("col_rows", layout_.col_rows.data(), nnz);
  w.add("col_values", layout_.col_values.data(), nnz);
}

void ApproxIndex::add_sections(io::SectionWriter& w) const {
  const BlockLayout& b = layout_.blocks;
  const RecordLayout& r = layout_.records;
  const std::int64_t n_blocks = b.n_blocks, n_post = b.n_postings(), n_sum = b.n_summary_entries();
  w.add("fwd_rows", r.units.data(), r.units.size());
  w.add("row_unit", r.row_unit.data(), n_rows());
  w.add("list_block_ptr", b.list_block_ptr.data(), n_cols() + 1);
  w.add("block_row_ptr", b.block_row_ptr.data(), n_blocks + 1);
  if (r.loc.narrow) w.add("post_loc", r.post_loc32.data(), n_post);
  else w.add("post_loc", r.post_loc64.data(), n_post);
  if (b.by_feature.present()) {
    const FeatureSummaries& fs = b.by_feature;
    w.add("sum_list_entry_ptr", fs.list_entry_ptr.data(), n_cols() + 1);
    w.add("sum_list_word_ptr", fs.list_word_ptr.data(), n_cols() + 1);
    w.add("sum_bits", fs.bits.data(), fs.bits.size());
    w.add("sum_entries", fs.entries.data(), fs.entries.size());
  } else {
    w.add("block_sum_ptr", b.block_sum_ptr.data(), n_blocks + 1);
    if (n_cols() <= 65536) w.add("sum_features", b.sum_features16.data(), n_sum);
    else w.add("sum_features", b.sum_features32.data(), n_sum);
    w.add("sum_hi", b.sum_hi.data(), n_sum);
    if (is_signed()) w.add("sum_lo", b.sum_lo.data(), n_sum);
  }
  w.add("block_hi_scale", b.block_hi_scale.data(), n_blocks);
  if (is_signed()) w.add("block_lo_scale", b.block_lo_scale.data(), n_blocks);
}

std::vector<std::uint8_t> SparseIndex::to_bytes() const { return IndexFileWriter(*this).sections.to_bytes(); }
void SparseIndex::save(const std::string& path) const { IndexFileWriter(*this).sections.save(path); }
std::size_t SparseIndex::file_bytes() const { return IndexFileWriter(*this).sections.total_bytes(); }

}  // namespace likeable
