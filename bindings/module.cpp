// The private extension module likeable._core: errors, thread helpers, and each concept.
#include <pybind11/pybind11.h>

#include "core/blas.h"
#include "core/errors.h"
#include "core/parallel.h"
#include "core/sparse.h"
#include "arrays.h"
#include "bindings.h"

namespace py = pybind11;
using namespace likeable;

PYBIND11_MODULE(_core, m) {
  m.doc() = "likeable's compiled core (private: use the likeable package)";
  blas::use_single_thread();

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
