// SparseIndex binding: convert and check arrays with the GIL held, build/search/serialise with
// it released, allocate outputs before releasing so the core only fills them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "core/io.h"
#include "index/brute_force.h"
#include "index/index.h"
#include "arrays.h"
#include "bindings.h"

namespace likeable::py_bind {

namespace {

using IdArray = py::array_t<std::int64_t>;
using ScoreArray = py::array_t<float>;

// A query batch argument: dense rows (float32, n_cols columns) or CSR codes (validated).
struct QueryArrays {
  CodesSnapshot sparse;
  FloatArray dense;
  QueryBatch batch;
};
QueryArrays query_arrays(const py::handle& queries, bool dense, std::int64_t n_cols) {
  QueryArrays out;
  out.batch.n_cols = n_cols;
  if (dense) {
    out.dense = float_matrix_copy(queries, "queries", n_cols);
    out.batch.dense = out.dense.data();
    out.batch.n_queries = out.dense.shape(0);
  } else {
    out.sparse = csr_from_codes(queries);
    LIKEABLE_CHECK(out.sparse.view.n_cols == n_cols, "queries have ", out.sparse.view.n_cols,
                   " features, expected ", n_cols);
    out.batch.sparse = &out.sparse.view;
    out.batch.n_queries = out.sparse.view.n_rows;
  }
  return out;
}

// (ids, scores), n_queries x k each, allocated here and filled by `search` without the GIL.
template <class Search>
std::pair<IdArray, ScoreArray> top_k(const QueryBatch& batch, std::int64_t k, Search&& search) {
  count_at_least(k, 1, "k");
  IdArray ids({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(k)});
  ScoreArray scores({static_cast<py::ssize_t>(batch.n_queries), static_cast<py::ssize_t>(k)});
  std::int64_t* ids_ptr = ids.mutable_data();
  float* scores_ptr = scores.mutable_data();
  {
    py::gil_scoped_release release;
    search(ids_ptr, scores_ptr);
  }
  return {ids, scores};
}

// A getter that first checks a memory-mapped file is unchanged (its arrays are read).
template <class R>
auto checked(R (SparseIndex::*getter)() const) {
  return [getter](const SparseIndex& self) {
    self.check_file();
    return (self.*getter)();
  };
}

}  // namespace

void bind_index(py::module_& m) {
  py::class_<SparseIndex, std::shared_ptr<SparseIndex>>(m, "SparseIndexCore",
                                                         "Compiled inverted index (use likeable.SparseIndex).")
      .def(py::init([](const py::handle& codes, bool approximate, std::int64_t n_postings, double block_fraction,
                       double summary_energy, std::int64_t doc_cut, std::uint64_t seed, int threads) {
             const CodesSnapshot arrays = csr_from_codes(codes);
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
            self.check_file();
            const QueryArrays q = query_arrays(queries, dense, self.n_cols());
            return top_k(q.batch, k, [&](std::int64_t* ids, float* scores) { self.search(q.batch, p, ids, scores); });
          },
          py::arg("queries"), py::arg("dense"), py::arg("k"), py::arg("query_cut"), py::arg("heap_factor"),
          py::arg("threads"), "(ids, scores), each n_queries x k (the order of likeable.SparseIndex.search).")
      .def(
          "top_activations",
          [](const SparseIndex& self, std::int32_t feature, std::int64_t n, int sign) {
            self.check_file();
            std::vector<std::int64_t> rows;
            std::vector<float> values;
            {
              py::gil_scoped_release release;
              self.top_activations(feature, n, sign, rows, values);
            }
            return std::make_pair(py::array_t<std::int64_t>(rows.size(), rows.data()),
                                  py::array_t<float>(values.size(), values.data()));
          },
          py::arg("feature"), py::arg("n"), py::arg("sign"),
          "(rows, values) (the order of likeable.SparseIndex.top_activations).")
      .def(
          "forward_csr",
          [](const SparseIndex& self) -> py::object {
            self.check_file();
            const CsrView v = self.forward_view();
            if (v.indptr == nullptr) return py::none();
            CsrMatrix copy;  // the index may be memory-mapped: the caller gets its own arrays
            copy.n_rows = v.n_rows;
            copy.n_cols = v.n_cols;
            copy.indptr.assign(v.indptr, v.indptr + v.n_rows + 1);
            copy.indices.assign(v.indices, v.indices + v.nnz());
            copy.values.assign(v.values, v.values + v.nnz());
            return py::cast(std::move(copy));
          },
          "A copy of the float32 forward index as a Csr, or None where it is held compact.")
      .def("to_bytes",
           [](const SparseIndex& self) {
             self.check_file();
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
            self.check_file();
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
      .def_property_readonly("nnz", checked(&SparseIndex::nnz))
      .def_property_readonly("approximate", &SparseIndex::approximate)
      .def_property_readonly("signed", &SparseIndex::is_signed)
      .def_property_readonly("n_blocks", &SparseIndex::n_blocks)
      .def_property_readonly("n_postings_stored", checked(&SparseIndex::n_postings_stored))
      .def_property_readonly("n_summary_entries", checked(&SparseIndex::n_summary_entries))
      .def("block_lengths", [](const SparseIndex& self) {
        self.check_file();
        const std::vector<std::int64_t> lengths = self.block_lengths();
        return py::array_t<std::int64_t>(static_cast<py::ssize_t>(lengths.size()), lengths.data());
      })
      .def_property_readonly("nbytes", checked(&SparseIndex::file_bytes))
      .def("check_file", &SparseIndex::check_file,
           "FormatError if a memory-mapped file was truncated or written in place since it was loaded.")
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
      "brute_force_search",
      [](const py::handle& codes, const py::handle& queries, bool dense, std::int64_t k, int threads) {
        const CodesSnapshot base = csr_from_codes(codes);
        const QueryArrays q = query_arrays(queries, dense, base.view.n_cols);
        return top_k(q.batch, k, [&](std::int64_t* ids, float* scores) {
          brute_force_search(base.view, q.batch, k, threads, ids, scores);
        });
      },
      py::arg("codes"), py::arg("queries"), py::arg("dense"), py::arg("k"), py::arg("threads"),
      "Reference search: float64 dot products with every row (slow; for tests). (ids, scores).");
}

}  // namespace likeable::py_bind
