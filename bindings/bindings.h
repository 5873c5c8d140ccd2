// One binding file per concept; module.cpp calls each.
#pragma once
#include <pybind11/pybind11.h>

namespace likeable::py_bind {
void bind_encoder(pybind11::module_& m);
void bind_index(pybind11::module_& m);
void bind_preferences(pybind11::module_& m);
}  // namespace likeable::py_bind
