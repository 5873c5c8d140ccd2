// One validation recipe at the binding boundary (STYLE.md #4, #5): float payloads are
// converted (forcecast, C order); id arrays are refused unless their dtype is exact; arrays the
// core writes into must be exact, C-contiguous and writeable. Every binding file takes its
// arguments through these helpers, so each kind of argument is checked in one place.
// Results: numpy views of vectors held by a bound result object (view_of), no copies.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/sparse.h"

namespace likeable::py_bind {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A C-contiguous float32 matrix (converted if needed) with the expected number of columns
// (cols < 0: any).
inline FloatArray float_matrix(const py::handle& obj, const char* name, std::int64_t cols = -1) {
  FloatArray arr = FloatArray::ensure(obj);
  if (!arr) throw py::type_error(concat(name, " must be convertible to a float32 array"));
  if (arr.ndim() != 2)
    throw InvalidArgument(concat(name, " must be 2-D, got ", arr.ndim(), "-D"));
  if (cols >= 0 && arr.shape(1) != cols)
    throw InvalidArgument(concat(name, " has ", arr.shape(1), " columns, expected ", cols));
  return arr;
}

inline FloatArray float_vector(const py::handle& obj, const char* name, std::int64_t len = -1) {
  FloatArray arr = FloatArray::ensure(obj);
  if (!arr) throw py::type_error(concat(name, " must be convertible to a float32 array"));
  if (arr.ndim() != 1)
    throw InvalidArgument(concat(name, " must be 1-D, got ", arr.ndim(), "-D"));
  if (len >= 0 && arr.shape(0) != len)
    throw InvalidArgument(concat(name, " has length ", arr.shape(0), ", expected ", len));
  return arr;
}

// Exact-dtype, C-contiguous, 1-D array or TypeError: ids are never silently cast.
template <class T>
py::array_t<T> exact_vector(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(concat(name, " must be a numpy array"));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  // Equivalence, not identity: an unpickled dtype is an equal but distinct object.
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(arr.dtype().ptr(), py::dtype::of<T>().ptr()))
    throw py::type_error(concat(name, " must have dtype ", std::string(py::str(py::dtype::of<T>())),
                                ", got ", std::string(py::str(arr.dtype()))));
  if (arr.ndim() != 1) throw InvalidArgument(concat(name, " must be 1-D"));
  if (!(arr.flags() & py::array::c_style))
    throw InvalidArgument(concat(name, " must be C-contiguous"));
  return py::array_t<T>(arr);
}

// A writable, exact float32, C-contiguous array of the given shape (updated in place).
inline float* mutable_floats(const py::handle& obj, const char* name, const std::vector<std::int64_t>& shape) {
  if (!py::isinstance<py::array_t<float>>(obj) ||
      !py::reinterpret_borrow<py::array>(obj).dtype().is(py::dtype::of<float>()))
    throw py::type_error(concat(name, " must be a float32 numpy array"));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!(arr.flags() & py::array::c_style)) throw InvalidArgument(concat(name, " must be C-contiguous"));
  if (!arr.writeable()) throw InvalidArgument(concat(name, " must be writeable"));
  if (arr.ndim() != static_cast<py::ssize_t>(shape.size()))
    throw InvalidArgument(concat(name, " has ", arr.ndim(), " dimensions, expected ", shape.size()));
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (arr.shape(i) != shape[i]) throw InvalidArgument(concat(name, " has the wrong shape"));
  return static_cast<float*>(arr.mutable_data());
}

// A count argument that sizes an output (k, n): at least `minimum`.
inline std::int64_t count_at_least(std::int64_t value, std::int64_t minimum, const char* name) {
  LIKEABLE_CHECK(value >= minimum, name, " must be >= ", minimum, ", got ", value);
  return value;
}

// Holds the three CSR arrays alive and exposes a CsrView over them (no copy).
struct __attribute__((visibility("hidden"))) CsrArrays {
  py::array_t<std::int64_t> indptr;
  py::array_t<std::int32_t> indices;
  py::array_t<float> values;
  CsrView view;
};

// Reads a likeable.SparseCodes (or anything with indptr/indices/values/shape attributes).
// `validate` runs the O(nnz) structural check; SparseCodes validated at construction skip it.
inline CsrArrays csr_from_codes(const py::handle& codes, bool validate = false) {
  CsrArrays out;
  out.indptr = exact_vector<std::int64_t>(codes.attr("indptr"), "indptr");
  out.indices = exact_vector<std::int32_t>(codes.attr("indices"), "indices");
  out.values = exact_vector<float>(codes.attr("values"), "values");
  auto shape = codes.attr("shape").cast<std::pair<std::int64_t, std::int64_t>>();
  if (out.indptr.shape(0) != shape.first + 1)
    throw InvalidArgument(concat("indptr has length ", out.indptr.shape(0), ", expected n_rows + 1 = ",
                                 shape.first + 1));
  if (out.indices.shape(0) != out.values.shape(0))
    throw InvalidArgument("indices and values differ in length");
  out.view = CsrView{out.indptr.data(), out.indices.data(), out.values.data(), shape.first, shape.second};
  if (out.view.nnz() != out.indices.shape(0))
    throw InvalidArgument(concat("indptr[-1]=", out.view.nnz(), " but there are ", out.indices.shape(0),
                                 " stored values"));
  if (validate) validate_csr(out.view);
  return out;
}

// A 1-D numpy view of a vector held by `owner` (the bound result object that holds it), which
// the view keeps alive: results cross without a copy.
template <class T>
py::array_t<T> view_of(const std::vector<T>& vec, const py::handle& owner) {
  return py::array_t<T>({static_cast<py::ssize_t>(vec.size())}, {static_cast<py::ssize_t>(sizeof(T))}, vec.data(),
                        owner);
}

// Binds a result struct's vector member as a read-only property giving a numpy view.
template <class Struct, class T>
void view_property(py::class_<Struct>& cls, const char* name, std::vector<T> Struct::*member, const char* doc) {
  cls.def_property_readonly(
      name, [member](const py::object& self) { return view_of(self.cast<const Struct&>().*member, self); }, doc);
}

}  // namespace likeable::py_bind
