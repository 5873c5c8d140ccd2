#include "bindings.h"

namespace likeable::py_bind {
void bind_preferences(pybind11::module_& m) { (void)m; }
}  // namespace likeable::py_bind
