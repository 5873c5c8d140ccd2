// Shared pieces of the core: typed errors, checked sizes, thread counts, a parallel-for.
// No Python here: the core compiles and runs without pybind11 or numpy.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

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

namespace detail {
inline void format_into(std::ostringstream&) {}
template <class T, class... Rest>
void format_into(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  format_into(os, rest...);
}
}  // namespace detail

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  detail::format_into(os, parts...);
  return os.str();
}

// Throws InvalidArgument with the message parts concatenated.
#define LIKEABLE_CHECK(cond, ...)                                     \
  do {                                                                \
    if (!(cond)) throw ::likeable::InvalidArgument(::likeable::concat(__VA_ARGS__)); \
  } while (0)

// Overflow-checked a*b for sizes of allocations.
inline std::size_t checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    throw MemoryLimitError(concat("size overflow: ", a, " x ", b));
  return a * b;
}

// requested > 0 wins; otherwise LIKEABLE_NUM_THREADS; otherwise every core.
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("LIKEABLE_NUM_THREADS")) {
    int from_env = std::atoi(env);
    if (from_env > 0) return from_env;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Runs fn(begin, end, thread_id) over [0, n) in chunks of `chunk` on `threads` threads
// (dynamic schedule). The first exception thrown by any worker stops the remaining
// chunks and is re-thrown on the calling thread. One thread (or one chunk) runs inline.
template <class Fn>
void parallel_for(std::int64_t n, std::int64_t chunk, int threads, Fn&& fn) {
  if (n <= 0) return;
  if (chunk <= 0) chunk = 1;
  const std::int64_t n_chunks = (n + chunk - 1) / chunk;
  threads = resolve_threads(threads);
  if (threads > n_chunks) threads = static_cast<int>(n_chunks);
  if (threads <= 1) {
    for (std::int64_t c = 0; c < n_chunks; ++c)
      fn(c * chunk, std::min(n, (c + 1) * chunk), 0);
    return;
  }
  std::exception_ptr first_error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};
  std::atomic<std::int64_t> next{0};
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
#else
  auto worker = [&](int tid) {
#endif
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) break;
      const std::int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) break;
      try {
        fn(c * chunk, std::min(n, (c + 1) * chunk), tid);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed.store(true);
      }
    }
#ifdef _OPENMP
  }
#else
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
#endif
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace likeable
