// The private extension module likeable._cuda. Arrays cross as raw device pointers (Python
// ints from CuPy's `.data.ptr`) plus shapes: the Python layer (likeable.gpu) owns allocation,
// validation and streams, so this module has no CuPy dependency. The GIL is released for
// every call that launches work.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "kernels.h"

namespace py = pybind11;
using namespace likeable::gpu;

namespace {

template <class T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

cudaStream_t stream_of(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

CsrDevice csr(std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::int64_t n_rows) {
  return CsrDevice{ptr<const std::int64_t>(indptr), ptr<const std::int32_t>(indices), ptr<const float>(values),
                   n_rows};
}

EncodeTile tile(std::uintptr_t pre, std::uintptr_t bias, std::int64_t n_rows, std::int64_t n_features,
                std::int64_t first_row, int k, bool is_signed, std::uintptr_t ids, std::uintptr_t values,
                std::uintptr_t counts, std::uintptr_t bad_row) {
  EncodeTile t;
  t.pre = ptr<const float>(pre);
  t.bias = ptr<const float>(bias);
  t.n_rows = n_rows;
  t.n_features = n_features;
  t.first_row = first_row;
  t.k = k;
  t.is_signed = is_signed;
  t.ids = ptr<std::int32_t>(ids);
  t.values = ptr<float>(values);
  t.counts = ptr<std::int32_t>(counts);
  t.bad_row = ptr<unsigned long long>(bad_row);
  return t;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "likeable's CUDA kernels (private: use likeable.gpu)";
  m.attr("max_k") = kMaxGpuK;

  m.def("runtime_version", []() {
    int version = 0;
    LK_CUDA(cudaRuntimeGetVersion(&version));
    return version;
  });
  // (count, reason): no driver or no device is an answer, not an error.
  m.def("device_count", []() -> py::tuple {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so later calls start clean
      return py::make_tuple(0, std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status));
    }
    return py::make_tuple(count, count ? std::string() : std::string("no CUDA device"));
  });
  m.def("device_properties", [](int device) {
    cudaDeviceProp prop{};
    LK_CUDA(cudaGetDeviceProperties(&prop, device));
    py::dict d;
    d["name"] = std::string(prop.name);
    d["compute_capability"] = py::make_tuple(prop.major, prop.minor);
    d["multiprocessors"] = prop.multiProcessorCount;
    d["l2_bytes"] = prop.l2CacheSize;
    d["memory_bytes"] = static_cast<std::uint64_t>(prop.totalGlobalMem);
    return d;
  });

  m.def(
      "encode_select_tile",
      [](std::uintptr_t pre, std::uintptr_t bias, std::int64_t n_rows, std::int64_t n_features,
         std::int64_t first_row, int k, bool is_signed, std::uintptr_t ids, std::uintptr_t values,
         std::uintptr_t counts, std::uintptr_t bad_row, std::uintptr_t stream) {
        const EncodeTile t = tile(pre, bias, n_rows, n_features, first_row, k, is_signed, ids, values, counts, bad_row);
        py::gil_scoped_release release;
        encode_select_tile(t, stream_of(stream));
      },
      py::arg("pre"), py::arg("bias"), py::arg("n_rows"), py::arg("n_features"), py::arg("first_row"), py::arg("k"),
      py::arg("is_signed"), py::arg("ids"), py::arg("values"), py::arg("counts"), py::arg("bad_row"),
      py::arg("stream"));

  m.def(
      "encode_threshold_tile",
      [](std::uintptr_t pre, std::uintptr_t bias, std::uintptr_t threshold, std::int64_t n_rows,
         std::int64_t n_features, std::int64_t first_row, bool is_signed, bool write, std::uintptr_t indptr,
         std::uintptr_t row_counts, std::uintptr_t ids, std::uintptr_t values, std::uintptr_t bad_row,
         std::uintptr_t stream) {
        const EncodeTile t = tile(pre, bias, n_rows, n_features, first_row, 0, is_signed, ids, values, 0, bad_row);
        py::gil_scoped_release release;
        encode_threshold_tile(t, ptr<const float>(threshold), write, ptr<const std::int64_t>(indptr),
                              ptr<std::int64_t>(row_counts), stream_of(stream));
      },
      py::arg("pre"), py::arg("bias"), py::arg("threshold"), py::arg("n_rows"), py::arg("n_features"),
      py::arg("first_row"), py::arg("is_signed"), py::arg("write"), py::arg("indptr"), py::arg("row_counts"),
      py::arg("ids"), py::arg("values"), py::arg("bad_row"), py::arg("stream"));

  m.def(
      "decode",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::int64_t n_rows,
         std::uintptr_t W_dec, std::uintptr_t b_dec, std::int64_t n_dims, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        decode(csr(indptr, indices, values, n_rows), ptr<const float>(W_dec), ptr<const float>(b_dec), n_dims,
               ptr<float>(out), stream_of(stream));
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("W_dec"), py::arg("b_dec"),
      py::arg("n_dims"), py::arg("out"), py::arg("stream"));

  m.def(
      "gather_transpose",
      [](std::uintptr_t base, std::uintptr_t src, std::int64_t src_ld, std::uintptr_t rows, std::int64_t n_cols,
         std::int64_t n_features, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        gather_transpose(ptr<const float>(base), ptr<const float>(src), src_ld, ptr<const std::int64_t>(rows), n_cols,
                         n_features, ptr<float>(out), stream_of(stream));
      },
      py::arg("base"), py::arg("src"), py::arg("src_ld"), py::arg("rows"), py::arg("n_cols"), py::arg("n_features"),
      py::arg("out"), py::arg("stream"));

  m.def(
      "sparse_dense_scores",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::int64_t n_rows,
         std::uintptr_t dense_t, std::int64_t n_cols, std::uintptr_t out, std::int64_t out_ld, std::uintptr_t stream) {
        py::gil_scoped_release release;
        sparse_dense_scores(csr(indptr, indices, values, n_rows), ptr<const float>(dense_t), n_cols, ptr<float>(out),
                            out_ld, stream_of(stream));
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("dense_t"),
      py::arg("n_cols"), py::arg("out"), py::arg("out_ld"), py::arg("stream"));

  m.def(
      "predict_pairs",
      [](std::uintptr_t population, std::uintptr_t offsets, std::int64_t n_features, std::uintptr_t user_rows,
         std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::int64_t n_rows,
         std::uintptr_t base_logit, bool logits, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        predict_pairs(ptr<const float>(population), ptr<const float>(offsets), n_features,
                      ptr<const std::int64_t>(user_rows), csr(indptr, indices, values, n_rows),
                      ptr<const float>(base_logit), logits, ptr<float>(out), stream_of(stream));
      },
      py::arg("population"), py::arg("offsets"), py::arg("n_features"), py::arg("user_rows"), py::arg("indptr"),
      py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("base_logit"), py::arg("logits"),
      py::arg("out"), py::arg("stream"));

  m.def(
      "select_topk",
      [](std::uintptr_t scores, std::int64_t n_rows, std::int64_t length, std::int64_t ld, int k, std::uintptr_t ids,
         std::uintptr_t values, std::uintptr_t counts, std::uintptr_t stream) {
        py::gil_scoped_release release;
        select_topk(ptr<const float>(scores), n_rows, length, ld, k, ptr<std::int32_t>(ids), ptr<float>(values),
                    ptr<std::int32_t>(counts), stream_of(stream));
      },
      py::arg("scores"), py::arg("n_rows"), py::arg("length"), py::arg("ld"), py::arg("k"), py::arg("ids"),
      py::arg("values"), py::arg("counts"), py::arg("stream"));

  m.def(
      "densify",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::int64_t n_rows,
         std::int64_t n_features, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        densify(csr(indptr, indices, values, n_rows), n_features, ptr<float>(out), stream_of(stream));
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("n_rows"), py::arg("n_features"),
      py::arg("out"), py::arg("stream"));
}
