#include "bindings.h"

namespace likeable::py_bind {
void bind_index(pybind11::module_& m) { (void)m; }
}  // namespace likeable::py_bind
