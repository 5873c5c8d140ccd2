// The private extension module likeable._core: errors, the core's shared helpers (threads,
// CSR validation and results, the SIMD switch, checksums), then each concept's file.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/blas.h"
#include "core/errors.h"
#include "core/io.h"
#include "core/json_scan.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "core/sparse.h"
#include "arrays.h"
#include "bindings.h"

namespace py = pybind11;
using namespace likeable;

namespace {

void bind_errors(py::module_& m) {
  static py::exception<FormatError> format_error(m, "FormatError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FormatError& e) {
      py::set_error(format_error, e.what());
    } catch (const MemoryLimitError& e) {
      py::set_error(PyExc_MemoryError, e.what());
    } catch (const InvalidArgument& e) {
      py::set_error(PyExc_ValueError, e.what());
    }
  });
}

void bind_simd(py::module_& m) {
  m.def(
      "simd_features",
      []() {
        const unsigned f = simd::detected();
        py::dict d;
        d["sse2"] = (f & simd::kSse2) != 0;
        d["sse4.2"] = (f & simd::kSse42) != 0;
        d["avx2"] = (f & simd::kAvx2) != 0;
        d["f16c"] = (f & simd::kF16c) != 0;
        d["fma"] = (f & simd::kFma) != 0;
        return d;
      },
      "The CPU features the kernels can use here, whatever the switch says.");
  m.def("simd_enabled", &simd::enabled, "Whether the kernels use the CPU's SIMD features (the core's one switch).");
  m.def("set_simd_enabled", &simd::set_enabled, py::arg("enabled"),
        "Turns every SIMD kernel on or off (off: the portable loops) for the whole process; LIKEABLE_NO_SIMD=1 "
        "starts it off. For tests comparing the two paths.");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "likeable's compiled core (private: use the likeable package)";
  blas::use_single_thread();
  bind_errors(m);

  m.def("resolve_threads", &resolve_threads, py::arg("requested") = 0,
        "Threads a call will use: requested > 0, else LIKEABLE_NUM_THREADS, else all cores; at most max_threads().");
  m.def("max_threads", &max_threads, "The most threads any call runs: MAX_THREADS_PER_CORE per core.");
  m.attr("MAX_THREADS_PER_CORE") = kMaxThreadsPerCore;
  m.def("blas_config", []() { return std::string(blas::config()); });

  py::class_<CsrMatrix> csr(m, "Csr",
                            "CSR arrays owned by the core, immutable (read-only views): encode's output and the "
                            "snapshots SparseCodes holds. Calls use them without copying or re-checking.");
  py_bind::view_property(csr, "indptr", &CsrMatrix::indptr, "int64, n_rows + 1", true);
  py_bind::view_property(csr, "indices", &CsrMatrix::indices, "int32 feature ids", true);
  py_bind::view_property(csr, "values", &CsrMatrix::values, "float32", true);
  csr.def_property_readonly("shape", [](const CsrMatrix& c) { return std::make_pair(c.n_rows, c.n_cols); },
                            "(n_rows, n_features)");
  m.def(
      "validate_csr", [](const py::handle& codes) { py_bind::csr_from_codes(codes); }, py::arg("codes"),
      "Structural check of CSR arrays (codes.indptr/indices/values/shape); raises ValueError naming the first "
      "problem.");
  m.def(
      "snapshot_codes",
      [](const py::handle& indptr, const py::handle& indices, const py::handle& values, const py::handle& shape) {
        const py_bind::CodesSnapshot s = py_bind::snapshot_codes(indptr, indices, values, shape);
        return py::make_tuple(s.indptr, s.indices, s.values);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("shape"),
      "(indptr, indices, values) as read-only views of a checked, core-owned copy; arrays that already are such "
      "views come back as they are (no copy). Raises ValueError/TypeError naming the first problem.");
  py::class_<JsonScan>(m, "JsonScan", "Nesting depth of JSON text fed in pieces, without parsing it.")
      .def(py::init<>())
      .def(
          "feed",
          [](JsonScan& self, const py::buffer& data) {
            const py::buffer_info info = data.request();
            if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize))
              throw py::type_error("JsonScan.feed needs contiguous bytes");
            const auto* p = static_cast<const char*>(info.ptr);
            const std::size_t n = static_cast<std::size_t>(info.size * info.itemsize);
            py::gil_scoped_release release;
            self.feed(p, n);
          },
          py::arg("data"), "Scan the next piece (bytes-like).")
      .def_readonly("depth", &JsonScan::depth)
      .def_readonly("max_depth", &JsonScan::max_depth)
      .def_readonly("first_space", &JsonScan::first_space, "offset of the first whitespace outside strings (-1: none)")
      .def_readonly("in_string", &JsonScan::in_string);
  m.def(
      "_crc32c", [](const py::bytes& data) { std::string_view v = data; return io::crc32c(v.data(), v.size()); },
      py::arg("data"), "CRC32C of bytes (the file section checksum; exposed for tests).");
  bind_simd(m);

  {
    py::dict options;
    options["cuda"] = LIKEABLE_CUDA_OPTION;           // the LIKEABLE_ENABLE_CUDA setting
    options["cuda_built"] = LIKEABLE_CUDA_BUILT != 0;  // whether likeable._cuda was built
    m.attr("build_options") = options;
  }
  m.attr("openmp") =
#ifdef _OPENMP
      true;
#else
      false;
#endif

  py_bind::bind_encoder(m);
  py_bind::bind_index(m);
  py_bind::bind_preferences(m);
}
