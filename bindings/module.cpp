// The private extension module likeable._core: errors, the core's shared helpers (threads,
// CSR validation and results, the SIMD switch, checksums), then each concept's file.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/blas.h"
#include "core/errors.h"
#include "core/io.h"
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
        "Threads a call will use: requested > 0, else LIKEABLE_NUM_THREADS, else all cores.");
  m.def("blas_config", []() { return std::string(blas::config()); });
  m.def(
      "validate_csr",
      [](const py::handle& codes) {
        auto arrays = py_bind::csr_from_codes(codes, false);
        py::gil_scoped_release release;
        validate_csr(arrays.view);
      },
      py::arg("codes"), "Structural check of CSR arrays; raises ValueError naming the first problem.");
  m.def(
      "_crc32c", [](const py::bytes& data) { std::string_view v = data; return io::crc32c(v.data(), v.size()); },
      py::arg("data"), "CRC32C of bytes (the file section checksum; exposed for tests).");
  bind_simd(m);

  py::class_<CsrMatrix> csr(m, "Csr", "CSR arrays made by the core (read into likeable.SparseCodes).");
  py_bind::view_property(csr, "indptr", &CsrMatrix::indptr, "int64, n_rows + 1");
  py_bind::view_property(csr, "indices", &CsrMatrix::indices, "int32 feature ids");
  py_bind::view_property(csr, "values", &CsrMatrix::values, "float32");
  csr.def_property_readonly("shape", [](const CsrMatrix& c) { return std::make_pair(c.n_rows, c.n_cols); },
                            "(n_rows, n_features)");
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
