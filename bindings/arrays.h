// One validation recipe at the binding boundary (STYLE.md #4, #5): float payloads are
// converted (forcecast, C order); id arrays are refused unless their dtype is exact; arrays the
// core writes into must be exact, C-contiguous and writeable. Every binding file takes its
// arguments through these helpers, so each kind of argument is checked in one place.
// Results: numpy views of vectors held by a bound result object (view_of), no copies.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <optional>
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

// --- CSR codes: one snapshot per call ------------------------------------------------------
// Codes arrays belong to the caller, who may change them in place, or from another thread while
// the core runs without the GIL. So every call takes a snapshot the caller cannot change and
// checks it once (linear in nnz): an array is copied and checked in the same pass (core/sparse.h),
// unless it is a read-only view of a core-owned Csr (likeable._core.Csr: encode's output, or an
// earlier snapshot, which is how SparseCodes holds its arrays). A Csr is immutable (it has no
// mutating method and every view of it is read-only, which numpy will not undo), and each of its
// vectors was checked when it was made: indptr starts at 0 and never decreases, ids are below
// its n_cols, values are finite. Such arrays are used in place, with O(1) checks of how they
// fit together, so calls on SparseCodes pay nothing per entry.

// The Csr whose `member` vector holds all of `arr`'s memory (found through the array's chain of
// bases), or null. `prefix`: the array must start where the vector starts (an indptr's checks
// hold for its prefixes, not for a piece from its middle).
template <class T>
const CsrMatrix* owning_csr(const py::array& arr, std::vector<T> CsrMatrix::*member, bool prefix) {
  if (arr.writeable() || arr.shape(0) == 0) return nullptr;
  py::object base = arr.base();
  for (int depth = 0; depth < 64 && base && !base.is_none(); ++depth) {
    if (py::isinstance<CsrMatrix>(base)) {
      const CsrMatrix& csr = base.cast<const CsrMatrix&>();
      const std::vector<T>& vec = csr.*member;
      const T* p = static_cast<const T*>(arr.data());
      const bool inside = prefix ? p == vec.data() : (p >= vec.data() && p <= vec.data() + vec.size());
      return inside && p + arr.shape(0) <= vec.data() + vec.size() ? &csr : nullptr;
    }
    if (!py::isinstance<py::array>(base)) return nullptr;
    base = py::reinterpret_borrow<py::array>(base).base();
  }
  return nullptr;
}

// A 1-D numpy view of a vector held by `owner` (the bound result object that holds it), which
// the view keeps alive: results cross without a copy.
template <class T>
py::array_t<T> view_of(const std::vector<T>& vec, const py::handle& owner) {
  return py::array_t<T>({static_cast<py::ssize_t>(vec.size())}, {static_cast<py::ssize_t>(sizeof(T))}, vec.data(),
                        owner);
}

// A read-only numpy view of a vector of a Csr held by the Python object `owner`.
template <class T>
py::array_t<T> readonly_view(const std::vector<T>& vec, const py::handle& owner) {
  py::array_t<T> arr = view_of(vec, owner);
  py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return arr;
}

inline std::pair<std::int64_t, std::int64_t> shape_of(const py::handle& shape) {
  std::pair<std::int64_t, std::int64_t> out;
  try {
    out = shape.cast<std::pair<std::int64_t, std::int64_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error(concat("shape must be a pair of integers (n_rows, n_features), got ",
                                std::string(py::repr(shape))));
  }
  LIKEABLE_CHECK(out.first >= 0 && out.second >= 0, "shape must be non-negative, got (", out.first, ", ", out.second, ")");
  LIKEABLE_CHECK(out.second <= INT32_MAX, "n_features=", out.second, " exceeds int32 feature ids");
  return out;
}

// The arrays a call reads: trusted inputs held alive, or copies checked on the way in (held by
// `copies`, a Csr, whose read-only views the three arrays then are).
struct __attribute__((visibility("hidden"))) CodesSnapshot {
  py::array indptr, indices, values;
  py::object copies;
  CsrView view;
};

// Copies above this many bytes are made with the GIL released (the source arrays stay alive and
// cannot be resized while referenced).
constexpr std::size_t kCopyWithoutGil = std::size_t{1} << 20;

inline CodesSnapshot snapshot_codes(const py::handle& indptr_obj, const py::handle& indices_obj,
                                    const py::handle& values_obj, const py::handle& shape_obj) {
  const auto [n_rows, n_cols] = shape_of(shape_obj);
  auto indptr = exact_vector<std::int64_t>(indptr_obj, "indptr");
  auto indices = exact_vector<std::int32_t>(indices_obj, "indices");
  auto values = exact_vector<float>(values_obj, "values");
  LIKEABLE_CHECK(indptr.shape(0) == n_rows + 1, "indptr has length ", indptr.shape(0), ", expected n_rows + 1 = ",
                 n_rows + 1);
  LIKEABLE_CHECK(indices.shape(0) == values.shape(0), "indices and values differ in length (", indices.shape(0),
                 " and ", values.shape(0), ")");
  const std::int64_t nnz = indices.shape(0);
  const bool indptr_ok = owning_csr(indptr, &CsrMatrix::indptr, true) != nullptr;
  const CsrMatrix* ids_from = owning_csr(indices, &CsrMatrix::indices, false);
  const bool indices_ok = nnz == 0 || (ids_from != nullptr && ids_from->n_cols <= n_cols);
  const bool values_ok = nnz == 0 || owning_csr(values, &CsrMatrix::values, false) != nullptr;
  if (indptr_ok)  // immutable, so this one read decides
    LIKEABLE_CHECK(indptr.data()[n_rows] == nnz, "indptr[-1]=", indptr.data()[n_rows], " but there are ", nnz,
                   " stored values");

  CsrMatrix copy;
  copy.n_rows = n_rows;
  copy.n_cols = n_cols;
  copy.indptr.clear();
  if (!indptr_ok) copy.indptr.resize(static_cast<std::size_t>(n_rows + 1));
  if (!indices_ok) copy.indices.resize(static_cast<std::size_t>(nnz));
  if (!values_ok) copy.values.resize(static_cast<std::size_t>(nnz));
  if (!indptr_ok || !indices_ok || !values_ok) {
    const std::size_t bytes = 8 * copy.indptr.size() + 4 * (copy.indices.size() + copy.values.size());
    std::optional<py::gil_scoped_release> release;
    if (bytes > kCopyWithoutGil) release.emplace();
    if (!indptr_ok) copy_indptr_checked(indptr.data(), n_rows, nnz, copy.indptr.data());
    if (!indices_ok) copy_indices_checked(indices.data(), nnz, n_cols, copy.indices.data());
    if (!values_ok) copy_values_checked(values.data(), nnz, copy.values.data());
  }

  CodesSnapshot out;
  out.copies = py::cast(std::move(copy));  // moving keeps the vectors' buffers where they are
  const CsrMatrix& held = out.copies.cast<const CsrMatrix&>();
  out.indptr = indptr_ok ? py::array(indptr) : py::array(readonly_view(held.indptr, out.copies));
  out.indices = indices_ok ? py::array(indices) : py::array(readonly_view(held.indices, out.copies));
  out.values = values_ok ? py::array(values) : py::array(readonly_view(held.values, out.copies));
  out.view = CsrView{static_cast<const std::int64_t*>(out.indptr.data()),
                     static_cast<const std::int32_t*>(out.indices.data()),
                     static_cast<const float*>(out.values.data()), n_rows, n_cols};
  return out;
}

// Reads a likeable.SparseCodes (or anything with indptr/indices/values/shape attributes), each
// attribute once, into a snapshot.
inline CodesSnapshot csr_from_codes(const py::handle& codes) {
  return snapshot_codes(codes.attr("indptr"), codes.attr("indices"), codes.attr("values"), codes.attr("shape"));
}

// An id array (user rows, row orders) copied: the core checks ids and then reads them, so the
// caller must not be able to change them in between.
template <class T>
std::vector<T> copied_ids(const py::handle& obj, const char* name) {
  const auto arr = exact_vector<T>(obj, name);
  return std::vector<T>(arr.data(), arr.data() + arr.shape(0));
}

// A copy of a float32 matrix argument that the core reads more than once (dense queries: a
// value changed between the range check and the search could make NaN scores, and sorting by
// NaN bounds is undefined behaviour).
inline FloatArray float_matrix_copy(const py::handle& obj, const char* name, std::int64_t cols = -1) {
  FloatArray arr = float_matrix(obj, name, cols);
  if (arr.ptr() != obj.ptr()) return arr;  // converted, so already a private copy
  FloatArray copy({arr.shape(0), arr.shape(1)});
  std::memcpy(copy.mutable_data(), arr.data(), sizeof(float) * static_cast<std::size_t>(arr.size()));
  return copy;
}

// Binds a result struct's vector member as a read-only property giving a numpy view
// (`readonly`: a view numpy will not let anyone write through, as a Csr's must be).
template <class Struct, class T>
void view_property(py::class_<Struct>& cls, const char* name, std::vector<T> Struct::*member, const char* doc,
                   bool readonly = false) {
  cls.def_property_readonly(
      name,
      [member, readonly](const py::object& self) {
        const std::vector<T>& vec = self.cast<const Struct&>().*member;
        return readonly ? readonly_view(vec, self) : view_of(vec, self);
      },
      doc);
}

}  // namespace likeable::py_bind
