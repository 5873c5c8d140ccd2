// The core's typed errors, message building and checked sizes. The bindings map each error type
// to one Python exception (module.cpp); nothing in the core aborts the process.
#pragma once

#include <cstddef>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace likeable {

// Bad arguments from a caller (maps to ValueError).
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// A file that is truncated, corrupted, foreign or of an unknown version (maps to likeable.FormatError).
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// An allocation refused by a memory guard (maps to MemoryError).
struct MemoryLimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The parts streamed one after another into a string: concat("k=", k, " > ", n).
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// Throws InvalidArgument with the message parts concatenated.
#define LIKEABLE_CHECK(cond, ...)                                                    \
  do {                                                                               \
    if (!(cond)) throw ::likeable::InvalidArgument(::likeable::concat(__VA_ARGS__)); \
  } while (0)

// Overflow-checked a*b for sizes of allocations.
inline std::size_t checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    throw MemoryLimitError(concat("size overflow: ", a, " x ", b));
  return a * b;
}

}  // namespace likeable
