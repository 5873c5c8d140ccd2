// Thread counts and the one parallel-for of the core (OpenMP where built with it, std::thread
// otherwise). Results never depend on scheduling: callers give each chunk its own output.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace likeable {

// No call runs more threads than this many per core: a thread count far above the cores only
// costs (stacks, per-thread scratch, OpenMP teams), and one such as 10000 or 2^31 - 1 can make
// libgomp abort the process where address space is limited. Python refuses larger requests
// with a ValueError (likeable.max_threads()); here they are capped, so a C++ caller cannot exceed it.
constexpr int kMaxThreadsPerCore = 4;

inline int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, 1u << 16));
}

inline int max_threads() { return kMaxThreadsPerCore * hardware_threads(); }

// requested > 0 wins; otherwise LIKEABLE_NUM_THREADS; otherwise every core; never more than
// max_threads().
inline int resolve_threads(int requested) {
  int threads = requested;
  if (threads <= 0) {
    if (const char* env = std::getenv("LIKEABLE_NUM_THREADS")) {
      char* end = nullptr;
      const long from_env = std::strtol(env, &end, 10);  // not atoi: its overflow is undefined
      if (end != env && from_env > 0) threads = static_cast<int>(std::min<long>(from_env, max_threads()));
    }
  }
  if (threads <= 0) threads = hardware_threads();
  return std::min(threads, max_threads());
}

// Below this many multiply-adds a call runs on one thread: waking a team costs more than it
// saves, and on a busy machine spinning OpenMP workers steal the core from the caller.
constexpr double kSerialWork = 1 << 24;

// The thread request for a call doing `work` multiply-adds: 1 when it is small.
inline int threads_for_work(double work, int requested) { return work < kSerialWork ? 1 : requested; }

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
