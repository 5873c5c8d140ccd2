// The private extension module likeable._cuda. Arrays cross as typed device arrays: any object
// with __cuda_array_interface__ (CuPy arrays, and likeable.gpu.DeviceSparseCodes for CSR rows),
// read here with their dtype, shape and strides checked against what each kernel needs; streams
// cross as stream objects (CuPy's `Stream`, anything with an integer `.ptr`). The Python layer
// (likeable._gpu) owns allocation and streams, so this module has no CuPy dependency. The GIL is
// released for every call that launches work.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace py = pybind11;
using namespace likeable::gpu;
using likeable::concat;

namespace {

enum class DType { kFloat32, kFloat16, kInt32, kInt64, kUInt64, kUInt16 };

struct DTypeInfo {
  DType type;
  const char* typestr;  // little-endian __cuda_array_interface__ type string
  const char* name;
  std::int64_t itemsize;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, "<f4", "float32", 4}, {DType::kFloat16, "<f2", "float16", 2},
    {DType::kInt32, "<i4", "int32", 4},     {DType::kInt64, "<i8", "int64", 8},
    {DType::kUInt64, "<u8", "uint64", 8},   {DType::kUInt16, "<u2", "uint16", 2},
};

const DTypeInfo& info(DType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d;
  throw std::logic_error("unknown dtype");
}

// A device array read from __cuda_array_interface__ (version 2 or 3), C-contiguous.
struct DeviceArray {
  void* data = nullptr;
  std::vector<std::int64_t> shape;
  bool read_only = false;

  std::int64_t dim(std::size_t i) const { return shape.at(i); }
  template <class T>
  T* as() const { return static_cast<T*>(data); }
};

constexpr std::int64_t kAny = -1;

// Reads `obj.__cuda_array_interface__` and checks it: dtype exactly `type` (never cast), `ndim`
// dimensions matching `expect` (kAny: any size), C-contiguous, writable when `writable`.
DeviceArray device_array(const py::handle& obj, const char* name, DType type, std::vector<std::int64_t> expect,
                         bool writable = false) {
  py::object cai;
  try {
    cai = obj.attr("__cuda_array_interface__");
  } catch (py::error_already_set&) {
    throw py::type_error(concat(name, " must be a GPU array (__cuda_array_interface__), got ",
                                std::string(py::str(py::type::of(obj).attr("__name__")))));
  }
  if (!py::isinstance<py::dict>(cai)) throw py::type_error(concat(name, ": __cuda_array_interface__ is not a dict"));
  auto d = py::reinterpret_borrow<py::dict>(cai);
  for (const char* key : {"shape", "typestr", "data"})
    if (!d.contains(key)) throw py::type_error(concat(name, ": __cuda_array_interface__ has no '", key, "'"));
  const auto& want = info(type);
  const std::string typestr = py::str(d["typestr"]);
  if (typestr != want.typestr)
    throw py::type_error(concat(name, " must have dtype ", want.name, " (", want.typestr, "), got ", typestr));
  DeviceArray out;
  for (const auto& s : py::reinterpret_borrow<py::tuple>(d["shape"])) out.shape.push_back(s.cast<std::int64_t>());
  if (out.shape.size() != expect.size())
    throw likeable::InvalidArgument(concat(name, " must be ", expect.size(), "-D, got ", out.shape.size(), "-D"));
  std::int64_t size = 1;
  for (std::size_t i = 0; i < expect.size(); ++i) {
    if (out.shape[i] < 0) throw likeable::InvalidArgument(concat(name, " has a negative dimension"));
    if (expect[i] != kAny && out.shape[i] != expect[i])
      throw likeable::InvalidArgument(concat(name, " has size ", out.shape[i], " in dimension ", i, ", expected ",
                                             expect[i]));
    size *= out.shape[i];
  }
  // strides: None (C-contiguous) or the C-contiguous strides themselves; size-1 dimensions are free.
  if (d.contains("strides") && !d["strides"].is_none()) {
    auto strides = py::reinterpret_borrow<py::tuple>(d["strides"]);
    if (strides.size() != out.shape.size()) throw likeable::InvalidArgument(concat(name, ": strides/shape mismatch"));
    std::int64_t expected = want.itemsize;
    for (std::size_t i = out.shape.size(); i-- > 0;) {
      if (out.shape[i] > 1 && strides[i].cast<std::int64_t>() != expected)
        throw likeable::InvalidArgument(concat(name, " must be C-contiguous (copy it with cupy.ascontiguousarray)"));
      expected *= out.shape[i];
    }
  }
  auto data = py::reinterpret_borrow<py::tuple>(d["data"]);
  if (data.size() != 2) throw py::type_error(concat(name, ": __cuda_array_interface__['data'] must be (ptr, read_only)"));
  out.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  out.read_only = data[1].cast<bool>();
  if (writable && out.read_only) throw likeable::InvalidArgument(concat(name, " is read-only"));
  if (size > 0 && out.data == nullptr) throw likeable::InvalidArgument(concat(name, " has a null data pointer"));
  return out;
}

DeviceArray optional_array(const py::handle& obj, const char* name, DType type, std::vector<std::int64_t> expect) {
  if (obj.is_none()) return DeviceArray{};
  return device_array(obj, name, type, std::move(expect));
}

// CSR rows on the device: an object with indptr (int64, n_rows + 1), indices (int32) and values
// (float32, as many as indices) arrays and shape = (n_rows, n_features).
struct DeviceCsr {
  CsrDevice view;
  std::int64_t nnz = 0;
};

DeviceCsr device_csr(const py::handle& codes, const char* name) {
  const auto shape = codes.attr("shape").cast<std::pair<std::int64_t, std::int64_t>>();
  if (shape.first < 0 || shape.second < 0) throw likeable::InvalidArgument(concat(name, " has a negative shape"));
  const auto indptr = device_array(codes.attr("indptr"), "indptr", DType::kInt64, {shape.first + 1});
  const auto indices = device_array(codes.attr("indices"), "indices", DType::kInt32, {kAny});
  const auto values = device_array(codes.attr("values"), "values", DType::kFloat32, {indices.dim(0)});
  DeviceCsr out;
  out.view.indptr = indptr.as<const std::int64_t>();
  out.view.indices = indices.as<const std::int32_t>();
  out.view.values = values.as<const float>();
  out.view.n_rows = shape.first;
  out.view.n_cols = shape.second;
  out.nnz = indices.dim(0);
  return out;
}

// A stream object (CuPy's Stream or ExternalStream; anything with an integer `.ptr`).
cudaStream_t stream_of(const py::handle& stream) {
  if (!py::hasattr(stream, "ptr")) throw py::type_error("stream must be a stream object with a .ptr (e.g. CuPy's)");
  return reinterpret_cast<cudaStream_t>(stream.attr("ptr").cast<std::uintptr_t>());
}

// ---- DLPack: a consumed capsule exposed as __cuda_array_interface__ --------------------------
// For producers whose dtype CuPy cannot import (bfloat16): the tensor is read here with its
// device, dtype, shape and strides checked, and shown to CuPy as uint16 bit patterns.
// The structs are DLPack's stable ABI (dlpack.h, v0.x "dltensor" capsules).
struct DLDevice {
  std::int32_t device_type;
  std::int32_t device_id;
};
struct DLDataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
constexpr std::int32_t kDLCUDA = 2, kDLCUDAManaged = 13;
constexpr std::uint8_t kDLFloat = 2, kDLBfloat = 4;

class DLPackMatrix {
 public:
  explicit DLPackMatrix(const py::capsule& capsule) {
    if (std::string(capsule.name() ? capsule.name() : "") != "dltensor")
      throw py::type_error("expected an unused DLPack capsule named 'dltensor'");
    managed_ = capsule.get_pointer<DLManagedTensor>();
    PyCapsule_SetName(capsule.ptr(), "used_dltensor");  // ours now: the capsule will not free it
    try {
      read(managed_->dl_tensor);
    } catch (...) {
      if (managed_->deleter) managed_->deleter(managed_);  // the destructor of a throwing constructor never runs
      throw;
    }
  }
  DLPackMatrix(const DLPackMatrix&) = delete;
  DLPackMatrix& operator=(const DLPackMatrix&) = delete;
  ~DLPackMatrix() {
    if (managed_ && managed_->deleter) managed_->deleter(managed_);
  }

  py::dict interface() const {
    py::dict d;
    d["shape"] = py::make_tuple(rows_, cols_);
    d["typestr"] = "<u2";  // the 16-bit patterns; `dtype` says how to read them
    d["data"] = py::make_tuple(rows_ * cols_ ? data_ : 0, false);
    d["strides"] = py::none();
    d["version"] = 3;
    d["stream"] = py::none();  // the producer synchronised with the stream passed to __dlpack__
    return d;
  }
  const std::string& dtype() const { return dtype_; }

 private:
  void read(const DLTensor& t) {
    if (t.device.device_type != kDLCUDA && t.device.device_type != kDLCUDAManaged)
      throw likeable::InvalidArgument("the DLPack tensor is not in CUDA memory");
    if (t.ndim != 2) throw likeable::InvalidArgument(concat("the DLPack tensor must be 2-D, got ", t.ndim, "-D"));
    if (t.dtype.lanes != 1 || t.dtype.bits != 16 || (t.dtype.code != kDLBfloat && t.dtype.code != kDLFloat))
      throw py::type_error(concat("the DLPack tensor must be bfloat16 or float16 (type code ", int(t.dtype.code),
                                  ", ", int(t.dtype.bits), " bits)"));
    rows_ = t.shape[0];
    cols_ = t.shape[1];
    // strides (in elements) may be null (C order); a size-1 dimension's stride is free.
    const bool contiguous = !t.strides || ((rows_ <= 1 || t.strides[0] == cols_) && (cols_ <= 1 || t.strides[1] == 1));
    if (!contiguous) throw likeable::InvalidArgument("the DLPack tensor must be C-contiguous (call .contiguous() first)");
    dtype_ = t.dtype.code == kDLBfloat ? "bfloat16" : "float16";
    data_ = reinterpret_cast<std::uintptr_t>(t.data) + t.byte_offset;
  }

  DLManagedTensor* managed_ = nullptr;
  std::int64_t rows_ = 0, cols_ = 0;
  std::uintptr_t data_ = 0;
  std::string dtype_;
};

void check_rows(std::int64_t first_row, std::int64_t n_rows, std::int64_t total, const char* what) {
  if (first_row < 0 || first_row + n_rows > total)
    throw likeable::InvalidArgument(concat(what, ": tile rows [", first_row, ", ", first_row + n_rows,
                                           ") outside the ", total, " output rows"));
}

// The pre-activation tile and its bias, shared by both encode modes.
EncodeTile tile_of(const py::handle& pre, const py::handle& bias, std::int64_t first_row, bool is_signed,
                   const py::handle& bad_row) {
  const auto p = device_array(pre, "pre", DType::kFloat32, {kAny, kAny});
  const auto b = device_array(bias, "bias", DType::kFloat32, {p.dim(1)});
  const auto bad = device_array(bad_row, "bad_row", DType::kUInt64, {1}, true);
  EncodeTile t;
  t.pre = p.as<const float>();
  t.bias = b.as<const float>();
  t.n_rows = p.dim(0);
  t.n_features = p.dim(1);
  t.first_row = first_row;
  t.is_signed = is_signed;
  t.bad_row = bad.as<unsigned long long>();
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
      "array_shape",
      [](const py::handle& array, const std::string& dtype, int ndim) {
        for (const auto& d : kDTypes)
          if (dtype == d.name) {
            const auto a = device_array(array, "array", d.type, std::vector<std::int64_t>(ndim, kAny));
            py::list shape;
            for (const auto s : a.shape) shape.append(s);
            return shape;
          }
        throw likeable::InvalidArgument(concat("unknown dtype ", dtype));
      },
      py::arg("array"), py::arg("dtype"), py::arg("ndim"),
      "The shape of a device array after the checks every kernel argument gets (for tests and callers).");

  py::class_<DLPackMatrix>(m, "DLPackMatrix",
                           "A 2-D bfloat16/float16 CUDA DLPack tensor, consumed, shown as uint16 bit patterns.")
      .def(py::init<const py::capsule&>(), py::arg("capsule"))
      .def_property_readonly("__cuda_array_interface__", &DLPackMatrix::interface)
      .def_property_readonly("dtype", &DLPackMatrix::dtype);

  m.def(
      "encode_select_tile",
      [](const py::handle& pre, const py::handle& bias, std::int64_t first_row, int k, bool is_signed,
         const py::handle& ids, const py::handle& values, const py::handle& counts, const py::handle& bad_row,
         const py::handle& stream) {
        EncodeTile t = tile_of(pre, bias, first_row, is_signed, bad_row);
        const auto i = device_array(ids, "ids", DType::kInt32, {kAny, k}, true);
        const auto v = device_array(values, "values", DType::kFloat32, {i.dim(0), k}, true);
        const auto c = device_array(counts, "counts", DType::kInt32, {i.dim(0)}, true);
        check_rows(first_row, t.n_rows, i.dim(0), "encode_select_tile");
        t.k = k;
        t.ids = i.as<std::int32_t>();
        t.values = v.as<float>();
        t.counts = c.as<std::int32_t>();
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        encode_select_tile(t, s);
      },
      py::arg("pre"), py::arg("bias"), py::arg("first_row"), py::arg("k"), py::arg("is_signed"), py::arg("ids"),
      py::arg("values"), py::arg("counts"), py::arg("bad_row"), py::arg("stream"),
      "TopK selection of a pre-activation tile (n_rows x M, float32) into rows first_row.. of ids/values (N x k).");

  m.def(
      "encode_threshold_tile",
      [](const py::handle& pre, const py::handle& bias, const py::handle& threshold, std::int64_t first_row,
         bool is_signed, const py::handle& indptr, const py::handle& row_counts, const py::handle& bad_row,
         const py::handle& ids, const py::handle& values, const py::handle& stream) {
        EncodeTile t = tile_of(pre, bias, first_row, is_signed, bad_row);
        const auto th = device_array(threshold, "threshold", DType::kFloat32, {t.n_features});
        const auto rc = device_array(row_counts, "row_counts", DType::kInt64, {kAny}, true);
        const auto ip = device_array(indptr, "indptr", DType::kInt64, {rc.dim(0) + 1});
        check_rows(first_row, t.n_rows, rc.dim(0), "encode_threshold_tile");
        const bool write = !ids.is_none();
        if (write) {
          const auto i = device_array(ids, "ids", DType::kInt32, {kAny}, true);
          const auto v = device_array(values, "values", DType::kFloat32, {i.dim(0)}, true);
          t.ids = i.as<std::int32_t>();
          t.values = v.as<float>();
        }
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        encode_threshold_tile(t, th.as<const float>(), write, ip.as<const std::int64_t>(), rc.as<std::int64_t>(), s);
      },
      py::arg("pre"), py::arg("bias"), py::arg("threshold"), py::arg("first_row"), py::arg("is_signed"),
      py::arg("indptr"), py::arg("row_counts"), py::arg("bad_row"), py::arg("ids"), py::arg("values"),
      py::arg("stream"),
      "Threshold selection: ids=None counts entries per row into row_counts; otherwise writes the CSR "
      "entries from indptr (the scan of the counts).");

  m.def(
      "decode",
      [](const py::handle& codes, const py::handle& W_dec, const py::handle& b_dec, const py::handle& out,
         const py::handle& stream) {
        const DeviceCsr csr = device_csr(codes, "codes");
        const auto w = device_array(W_dec, "W_dec", DType::kFloat32, {csr.view.n_cols, kAny});
        const auto b = device_array(b_dec, "b_dec", DType::kFloat32, {w.dim(1)});
        const auto o = device_array(out, "out", DType::kFloat32, {csr.view.n_rows, w.dim(1)}, true);
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        decode(csr.view, w.as<const float>(), b.as<const float>(), w.dim(1), o.as<float>(), s);
      },
      py::arg("codes"), py::arg("W_dec"), py::arg("b_dec"), py::arg("out"), py::arg("stream"),
      "out (n x d) = codes @ W_dec + b_dec.");

  m.def(
      "gather_transpose",
      [](const py::handle& out, const py::handle& base, const py::handle& src, const py::handle& rows,
         const py::handle& stream) {
        const auto o = device_array(out, "out", DType::kFloat32, {kAny, kAny}, true);
        const std::int64_t n_features = o.dim(0), n_cols = o.dim(1);
        const auto b = optional_array(base, "base", DType::kFloat32, {n_features});
        const auto sr = optional_array(src, "src", DType::kFloat32, {kAny, n_features});
        const auto r = optional_array(rows, "rows", DType::kInt64, {n_cols});
        if (!src.is_none() && rows.is_none() && sr.dim(0) < n_cols)
          throw likeable::InvalidArgument("gather_transpose: src has fewer rows than out has columns");
        if (src.is_none() && !rows.is_none())
          throw likeable::InvalidArgument("gather_transpose: rows given without src");
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        // rows[c] < src rows is the caller's promise (the rows come from the host's id lookup).
        gather_transpose(b.as<const float>(), sr.as<const float>(), n_features, r.as<const std::int64_t>(), n_cols,
                         n_features, o.as<float>(), s);
      },
      py::arg("out"), py::arg("base"), py::arg("src"), py::arg("rows"), py::arg("stream"),
      "out (M x n) with out[j, c] = base[j] + src[rows[c], j] (base/src/rows may be None).");

  m.def(
      "sparse_dense_scores",
      [](const py::handle& rows, const py::handle& dense_t, const py::handle& out, const py::handle& stream) {
        const DeviceCsr csr = device_csr(rows, "rows");
        const auto d = device_array(dense_t, "dense_t", DType::kFloat32, {csr.view.n_cols, kAny});
        const auto o = device_array(out, "out", DType::kFloat32, {d.dim(1), csr.view.n_rows}, true);
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        sparse_dense_scores(csr.view, d.as<const float>(), d.dim(1), o.as<float>(), csr.view.n_rows, s);
      },
      py::arg("rows"), py::arg("dense_t"), py::arg("out"), py::arg("stream"),
      "out (n_cols x n_rows) = (rows @ dense_t)^T for CSR rows and feature-major dense_t (M x n_cols).");

  m.def(
      "predict_pairs",
      [](const py::handle& population, const py::handle& offsets, const py::handle& user_rows, const py::handle& pairs,
         const py::handle& base_logit, bool logits, const py::handle& out, const py::handle& stream) {
        const DeviceCsr csr = device_csr(pairs, "pairs");
        const std::int64_t M = csr.view.n_cols, n = csr.view.n_rows;
        const auto pop = device_array(population, "population", DType::kFloat32, {M});
        const auto off = optional_array(offsets, "offsets", DType::kFloat32, {kAny, M});
        const auto ur = optional_array(user_rows, "user_rows", DType::kInt64, {n});
        const auto base = optional_array(base_logit, "base_logit", DType::kFloat32, {n});
        const auto o = device_array(out, "out", DType::kFloat32, {n}, true);
        if (offsets.is_none() != user_rows.is_none())
          throw likeable::InvalidArgument("predict_pairs: offsets and user_rows go together");
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        predict_pairs(pop.as<const float>(), off.as<const float>(), M, ur.as<const std::int64_t>(), csr.view,
                      base.as<const float>(), logits, o.as<float>(), s);
      },
      py::arg("population"), py::arg("offsets"), py::arg("user_rows"), py::arg("pairs"), py::arg("base_logit"),
      py::arg("logits"), py::arg("out"), py::arg("stream"),
      "out[i] = base_logit[i] + pairs_i . (population + offsets[user_rows[i]]), or its sigmoid.");

  m.def(
      "select_topk",
      [](const py::handle& scores, int k, const py::handle& ids, const py::handle& values, const py::handle& counts,
         const py::handle& stream) {
        const auto sc = device_array(scores, "scores", DType::kFloat32, {kAny, kAny});
        const auto i = device_array(ids, "ids", DType::kInt32, {sc.dim(0), k}, true);
        const auto v = device_array(values, "values", DType::kFloat32, {sc.dim(0), k}, true);
        const auto c = device_array(counts, "counts", DType::kInt32, {sc.dim(0)}, true);
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        select_topk(sc.as<const float>(), sc.dim(0), sc.dim(1), sc.dim(1), k, i.as<std::int32_t>(), v.as<float>(),
                    c.as<std::int32_t>(), s);
      },
      py::arg("scores"), py::arg("k"), py::arg("ids"), py::arg("values"), py::arg("counts"), py::arg("stream"),
      "Top k of each row of scores (n x length) into ids/values (n x k), ties to the smaller id.");

  m.def(
      "densify",
      [](const py::handle& codes, const py::handle& out, const py::handle& stream) {
        const DeviceCsr csr = device_csr(codes, "codes");
        const auto o = device_array(out, "out", DType::kFloat32, {csr.view.n_rows, csr.view.n_cols}, true);
        const cudaStream_t s = stream_of(stream);
        py::gil_scoped_release release;
        densify(csr.view, csr.view.n_cols, o.as<float>(), s);
      },
      py::arg("codes"), py::arg("out"), py::arg("stream"), "out (n x M, zeroed by the caller) += the CSR rows.");
}
