#include "bindings.h"

namespace likeable::py_bind {
void bind_encoder(pybind11::module_& m) { (void)m; }
}  // namespace likeable::py_bind
