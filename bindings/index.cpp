// SparseIndex binding: convert and check arrays with the GIL held, build/search/serialise with
// it released, allocate outputs before releasing so the core only fills them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "index/brute_force.h"
#include "index/index.h"
#include "core/io.h"
#include "arrays.h"
#include "bindings.h"

namespace likeable::py_bind {

namespace {

using IdArray = py::array_t<std::int64_t>;
using ScoreArray = py::array_t<float>;

std::pair<IdArray, ScoreArray> run_search(const SparseIndex* index, const py::handle& queries, bool dense,
                                          const SearchParams& params) {
  QueryBatch batch;
  batch.n_cols = index->n_cols();
  CsrArrays sparse;
  FloatArray dense_arr;
  if (dense) {
    dense_arr = float_matrix(queries, "queries", index->n_cols());
    batch.dense = dense_arr.data();
    batch.n_queries = dense_arr.shape(0);
  } else {
    sparse = csr_from_codes(queries, true);
    LIKEABLE_CHECK(sparse.view.n_cols == index->n_cols(), "queries have ", sparse.view.n_cols,
                   " features, the index has ", index->n_cols());
    batch.sparse = &sparse.view;
    batch.n_queries = sparse.view.n_rows;
  }
  LIKEABLE_CHECK(params.k >= 1, "k must be >= 1, got ", params.k);
  IdArray ids({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(params.k)});
  ScoreArray scores({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(params.k)});
  std::int64_t* ids_ptr = ids.mutable_data();
  float* scores_ptr = scores.mutable_data();
  {
    py::gil_scoped_release release;
    index->search(batch, params, ids_ptr, scores_ptr);
  }
  return {ids, scores};
}

}  // namespace

void bind_index(py::module_& m) {
  py::class_<SparseIndex, std::shared_ptr<SparseIndex>>(m, "SparseIndexCore",
                                                         "Compiled inverted index (use likeable.SparseIndex).")
      .def(py::init([](const py::handle& codes, bool approximate, std::int64_t n_postings, double block_fraction,
                       double summary_energy, std::int64_t doc_cut, std::uint64_t seed, int threads) {
             CsrArrays arrays = csr_from_codes(codes, true);
             IndexParams p;
             p.approximate = approximate;
             p.n_postings = n_postings;
             p.block_fraction = block_fraction;
             p.summary_energy = summary_energy;
             p.doc_cut = doc_cut;
             p.seed = seed;
             p.threads = threads;
             py::gil_scoped_release release;
             return SparseIndex::build(arrays.view, p);
           }),
           py::arg("codes"), py::arg("approximate"), py::arg("n_postings"), py::arg("block_fraction"),
           py::arg("summary_energy"), py::arg("doc_cut"), py::arg("seed"), py::arg("threads"))
      .def(
          "search",
          [](const SparseIndex& self, const py::handle& queries, bool dense, std::int64_t k, std::int64_t query_cut,
             double heap_factor, int threads) {
            SearchParams p;
            p.k = k;
            p.query_cut = query_cut;
            p.heap_factor = heap_factor;
            p.threads = threads;
            return run_search(&self, queries, dense, p);
          },
          py::arg("queries"), py::arg("dense"), py::arg("k"), py::arg("query_cut"), py::arg("heap_factor"),
          py::arg("threads"))
      .def(
          "top_activations",
          [](const SparseIndex& self, std::int32_t feature, std::int64_t n, int sign) {
            std::vector<std::int64_t> rows;
            std::vector<float> values;
            {
              py::gil_scoped_release release;
              self.top_activations(feature, n, sign, rows, values);
            }
            return std::make_pair(to_numpy(std::move(rows)), to_numpy(std::move(values)));
          },
          py::arg("feature"), py::arg("n"), py::arg("sign"))
      .def(
          "forward_csr",
          [](const SparseIndex& self) -> py::object {
            const CsrView v = self.forward_view();
            if (v.indptr == nullptr) return py::none();
            const auto nnz = static_cast<py::ssize_t>(v.nnz());
            py::array_t<std::int32_t> indices(nnz);
            py::array_t<float> values(nnz);
            if (nnz > 0) {  // an empty index may hold null arrays
              std::copy_n(v.indices, nnz, indices.mutable_data());
              std::copy_n(v.values, nnz, values.mutable_data());
            }
            return py::make_tuple(py::array_t<std::int64_t>(v.n_rows + 1, v.indptr), indices, values);
          },
          "Copies of the float32 forward CSR (indptr, indices, values), or None when it is compact.")
      .def("to_bytes",
           [](const SparseIndex& self) {
             std::vector<std::uint8_t> bytes;
             {
               py::gil_scoped_release release;
               bytes = self.to_bytes();
             }
             return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
           })
      .def(
          "save",
          [](const SparseIndex& self, const std::string& path) {
            py::gil_scoped_release release;
            self.save(path);
          },
          py::arg("path"))
      .def_static(
          "load",
          [](const std::string& path, bool mmap, bool verify) {
            py::gil_scoped_release release;
            auto buffer = mmap ? io::map_file(path) : io::read_file(path);
            return SparseIndex::load(std::move(buffer), path, verify);
          },
          py::arg("path"), py::arg("mmap"), py::arg("verify"))
      .def_static(
          "from_bytes",
          [](const py::bytes& data, bool verify) {
            std::string_view view = data;
            std::shared_ptr<io::Buffer> buffer = io::copy_bytes(view.data(), view.size());
            py::gil_scoped_release release;
            return SparseIndex::load(std::move(buffer), "<bytes>", verify);
          },
          py::arg("data"), py::arg("verify"))
      .def_property_readonly("n_rows", &SparseIndex::n_rows)
      .def_property_readonly("n_features", &SparseIndex::n_cols)
      .def_property_readonly("nnz", &SparseIndex::nnz)
      .def_property_readonly("approximate", &SparseIndex::approximate)
      .def_property_readonly("signed", &SparseIndex::is_signed)
      .def_property_readonly("n_blocks", &SparseIndex::n_blocks)
      .def_property_readonly("n_postings_stored", &SparseIndex::n_postings_stored)
      .def_property_readonly("n_summary_entries", &SparseIndex::n_summary_entries)
      .def("block_lengths", [](const SparseIndex& self) {
        const std::vector<std::int64_t> lengths = self.block_lengths();
        return py::array_t<std::int64_t>(static_cast<py::ssize_t>(lengths.size()), lengths.data());
      })
      .def_property_readonly("nbytes", &SparseIndex::file_bytes)
      .def_property_readonly("params", [](const SparseIndex& self) {
        const IndexParams& p = self.params();
        py::dict d;
        d["n_postings"] = p.n_postings;
        d["block_fraction"] = p.block_fraction;
        d["summary_energy"] = p.summary_energy;
        d["doc_cut"] = p.doc_cut;
        d["seed"] = p.seed;
        return d;
      });

  m.def(
      "_crc32c", [](const py::bytes& data) { std::string_view v = data; return io::crc32c(v.data(), v.size()); },
      py::arg("data"), "CRC32C of bytes (the index file checksum; exposed for tests).");
  m.def(
      "brute_force_search",
      [](const py::handle& codes, const py::handle& queries, bool dense, std::int64_t k, int threads) {
        CsrArrays base = csr_from_codes(codes, false);
        QueryBatch batch;
        batch.n_cols = base.view.n_cols;
        CsrArrays sparse;
        FloatArray dense_arr;
        if (dense) {
          dense_arr = float_matrix(queries, "queries", base.view.n_cols);
          batch.dense = dense_arr.data();
          batch.n_queries = dense_arr.shape(0);
        } else {
          sparse = csr_from_codes(queries, true);
          batch.sparse = &sparse.view;
          batch.n_queries = sparse.view.n_rows;
          batch.n_cols = sparse.view.n_cols;
        }
        LIKEABLE_CHECK(k >= 1, "k must be >= 1, got ", k);
        IdArray ids({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(k)});
        ScoreArray scores({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(k)});
        std::int64_t* ids_ptr = ids.mutable_data();
        float* scores_ptr = scores.mutable_data();
        {
          py::gil_scoped_release release;
          brute_force_search(base.view, batch, k, threads, ids_ptr, scores_ptr);
        }
        return std::make_pair(ids, scores);
      },
      py::arg("codes"), py::arg("queries"), py::arg("dense"), py::arg("k"), py::arg("threads"),
      "Reference search: float64 dot products with every row (slow; for tests).");
}

}  // namespace likeable::py_bind
