// core/: errors, CSR validation and checked copies, the top-k heap, parallel_for and the thread
// cap, half floats, the SIMD switch, the JSON nesting scan, and checksummed section files.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/huge_pages.h"
#include "core/io.h"
#include "core/json_scan.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "core/sparse.h"
#include "core/topk.h"
#include "helpers.h"
#include "index/layout.h"

using namespace likeable;

TEST_CASE("LIKEABLE_CHECK throws InvalidArgument with the message parts joined") {
  CHECK_THROWS_WITH_AS(LIKEABLE_CHECK(1 + 1 == 3, "k=", 7, " > ", 2.5), "k=7 > 2.5", InvalidArgument);
  CHECK_NOTHROW(LIKEABLE_CHECK(true, "never"));
  CHECK(checked_mul(3, 4) == 12);
  CHECK(checked_mul(0, std::numeric_limits<std::size_t>::max()) == 0);
  CHECK_THROWS_AS(checked_mul(std::numeric_limits<std::size_t>::max() / 2, 3), MemoryLimitError);
}

TEST_CASE("validate_csr accepts good CSR and names the first problem of bad CSR") {
  std::vector<std::int64_t> indptr{0, 2, 2, 3};
  std::vector<std::int32_t> indices{0, 4, 2};
  std::vector<float> values{1.0f, -2.0f, 0.5f};
  CsrView v{indptr.data(), indices.data(), values.data(), 3, 5};
  CHECK_NOTHROW(validate_csr(v));
  CHECK(v.nnz() == 3);

  SUBCASE("empty") {
    std::vector<std::int64_t> zero{0};
    CHECK_NOTHROW(validate_csr(CsrView{zero.data(), nullptr, nullptr, 0, 7}));
  }
  SUBCASE("indptr must start at 0") {
    indptr[0] = 1;
    CHECK_THROWS_WITH_AS(validate_csr(v), doctest::Contains("indptr[0] must be 0"), InvalidArgument);
  }
  SUBCASE("indptr must not decrease") {
    indptr[2] = 1;
    CHECK_THROWS_WITH_AS(validate_csr(v), doctest::Contains("non-decreasing (row 1"), InvalidArgument);
  }
  SUBCASE("feature ids inside [0, n_cols)") {
    indices[1] = 5;
    CHECK_THROWS_WITH_AS(validate_csr(v), doctest::Contains("feature id 5 at position 1"), InvalidArgument);
    indices[1] = -1;
    CHECK_THROWS_AS(validate_csr(v), InvalidArgument);
  }
  SUBCASE("finite values") {
    values[2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(validate_csr(v), doctest::Contains("non-finite value at position 2"), InvalidArgument);
    values[2] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(validate_csr(v), InvalidArgument);
  }
  SUBCASE("shape") {
    v.n_cols = -1;
    CHECK_THROWS_AS(validate_csr(v), InvalidArgument);
  }
}

namespace {
// The k best (key descending, then id ascending) by a full sort.
std::vector<std::pair<float, std::int64_t>> sorted_best(const std::vector<float>& keys, std::int64_t k) {
  std::vector<std::pair<float, std::int64_t>> all;
  for (std::size_t i = 0; i < keys.size(); ++i) all.emplace_back(keys[i], static_cast<std::int64_t>(i));
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  all.resize(std::min<std::size_t>(all.size(), static_cast<std::size_t>(k)));
  return all;
}
}  // namespace

TEST_CASE("the top-k heap keeps what a full sort keeps, ties to the smaller id, in any arrival order") {
  std::mt19937_64 gen(11);
  std::uniform_int_distribution<int> few(0, 4);  // many equal keys
  for (std::int64_t n : {0, 1, 5, 37, 200}) {
    for (std::int64_t k : {1, 3, 10, 64, 250}) {
      std::vector<float> keys(n);
      for (float& x : keys) x = static_cast<float>(few(gen)) - 2.0f;
      const auto want = sorted_best(keys, k);
      std::vector<std::int64_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      for (int shuffle = 0; shuffle < 3; ++shuffle) {
        std::shuffle(order.begin(), order.end(), gen);
        std::vector<float> slot_keys(k);
        std::vector<std::int64_t> slot_ids(k);
        TopHits top(slot_keys.data(), slot_ids.data(), k);
        for (std::int64_t i : order) top.push(keys[i], i);
        CHECK(top.size() == std::min(n, k));
        std::vector<std::int64_t> ids(k);
        std::vector<float> out(k);
        top.write_best_first(ids.data(), out.data());
        CHECK(top.size() == 0);
        for (std::int64_t i = 0; i < k; ++i) {
          if (i < static_cast<std::int64_t>(want.size())) {
            CHECK(ids[i] == want[i].second);
            CHECK(out[i] == want[i].first);
          } else {
            CHECK(ids[i] == -1);
            CHECK(out[i] == -std::numeric_limits<float>::infinity());
          }
        }
      }
    }
  }
}

TEST_CASE("the encoder's top-k heap keeps values beside keys and sorts by id") {
  std::mt19937_64 gen(5);
  std::normal_distribution<float> normal;
  for (int k : {1, 4, 48, 49, 100}) {  // both sides of sort_by_id's insertion-sort limit
    const int n = 300;
    std::vector<float> a(n);
    for (float& x : a) x = normal(gen);
    std::vector<float> keys(k), values(k);
    std::vector<std::int32_t> ids(k);
    TopKHeap heap(keys.data(), ids.data(), values.data(), k);
    CHECK(heap.bar() == -std::numeric_limits<float>::infinity());
    for (int j = 0; j < n; ++j) heap.push(std::fabs(a[j]), j, a[j]);
    heap.sort_by_id();
    std::vector<float> mags(n);
    for (int j = 0; j < n; ++j) mags[j] = std::fabs(a[j]);
    std::set<std::int64_t> want;
    for (const auto& [key, id] : sorted_best(mags, k)) want.insert(id);
    REQUIRE(heap.size() == k);
    for (int i = 0; i < k; ++i) {
      CHECK(want.count(heap.ids()[i]) == 1);
      CHECK(heap.values()[i] == a[heap.ids()[i]]);
      CHECK(heap.keys()[i] == std::fabs(a[heap.ids()[i]]));
      if (i > 0) CHECK(heap.ids()[i - 1] < heap.ids()[i]);
    }
  }
}

TEST_CASE("parallel_for covers every index once and honours the thread count") {
  for (int threads : {1, 2, 3, 8}) {
    for (std::int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
      std::atomic<int> max_tid{0};
      parallel_for(n, 3, threads, [&](std::int64_t b, std::int64_t e, int tid) {
        CHECK(e - b <= 3);
        for (std::int64_t i = b; i < e; ++i) seen[i]++;
        int m = max_tid.load();
        while (tid > m && !max_tid.compare_exchange_weak(m, tid)) {
        }
      });
      for (auto& s : seen) CHECK(s.load() == 1);
      CHECK(max_tid.load() < threads);
    }
  }
  CHECK(resolve_threads(5) == 5);
  CHECK(resolve_threads(0) >= 1);
  CHECK(threads_for_work(10.0, 8) == 1);
  CHECK(threads_for_work(kSerialWork * 2, 8) == 8);
}

TEST_CASE("parallel_for re-throws the first worker exception on the calling thread") {
  for (int threads : {1, 4}) {
    std::atomic<std::int64_t> done{0};
    CHECK_THROWS_WITH_AS(parallel_for(10000, 1, threads,
                                      [&](std::int64_t b, std::int64_t, int) {
                                        if (b == 17) throw InvalidArgument("chunk 17 failed");
                                        done++;
                                      }),
                         "chunk 17 failed", InvalidArgument);
    CHECK(done.load() < 10000);  // the remaining chunks were stopped
    CHECK_THROWS_AS(parallel_for(4, 1, threads, [](std::int64_t, std::int64_t, int) { throw std::bad_alloc(); }),
                    std::bad_alloc);
  }
}

TEST_CASE("every finite half float round-trips exactly, and floats round to the nearest even half") {
  int finite = 0;
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const std::uint16_t half = static_cast<std::uint16_t>(h);
    if ((half & 0x7c00u) == 0x7c00u) continue;  // inf and NaN: not stored by the index
    const float f = simd::half_to_float(half);
    CHECK(std::isfinite(f));
    CHECK(simd::float_to_half(f) == half);
    ++finite;
  }
  CHECK(finite == 63488);
  CHECK(simd::half_to_float(0x3c00) == 1.0f);
  CHECK(simd::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // the smallest subnormal
  CHECK(simd::float_to_half(65504.0f) == 0x7bff);
  // Halfway between 1 and the next half (1 + 2^-10): rounds to the even one, 1.
  CHECK(simd::float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(simd::float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  // Random values land within half a unit in the last place of a half (normal or subnormal).
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x = unit(gen) * (i % 2 ? 1.0f : 1e-5f);
    const float got = simd::half_to_float(simd::float_to_half(x));
    const double err = std::fabs(static_cast<double>(got) - x);
    const double ulp = std::max(std::ldexp(1.0, -24), std::ldexp(1.0, std::ilogb(std::max(std::fabs(x), 6.1e-5f)) - 10));
    CHECK(err <= ulp / 2 + 1e-12);
  }
}

TEST_CASE("the SIMD switch turns kernels off and back on") {
  const bool before = simd::enabled();
  simd::set_enabled(false);
  CHECK_FALSE(simd::enabled());
  CHECK_FALSE(simd::use(simd::kSse2));
  simd::set_enabled(true);
  CHECK(simd::enabled());
  CHECK(simd::use(simd::kSse2) == ((simd::detected() & simd::kSse2) != 0));
  CHECK(simd::use(0));
  simd::set_enabled(before);
}

TEST_CASE("CRC32C gives the standard check value, equal with SSE4.2 and with the table") {
  for (bool enabled : {true, false}) {
    testing::SimdScope scope(enabled);
    CHECK(io::crc32c("123456789", 9) == 0xE3069283u);
    CHECK(io::crc32c("", 0) == 0u);
  }
  std::vector<std::uint8_t> data(300);
  std::mt19937_64 gen(9);
  for (auto& b : data) b = static_cast<std::uint8_t>(gen());
  for (std::size_t begin : {0, 1, 3, 7, 8}) {
    for (std::size_t n : {0, 1, 7, 8, 9, 63, 64, 200}) {
      std::uint32_t fast, table;
      {
        testing::SimdScope scope(true);
        fast = io::crc32c(data.data() + begin, n);
      }
      {
        testing::SimdScope scope(false);
        table = io::crc32c(data.data() + begin, n);
      }
      CHECK(fast == table);
    }
  }
}

TEST_CASE("section files round-trip and refuse damage") {
  std::vector<std::int64_t> a{1, 2, 3};
  std::vector<float> b{0.5f, -1.0f};
  io::SectionWriter w("TEST", 2);
  w.add("a", a);
  w.add("b", b);
  CHECK_THROWS_AS(w.add("a", b), InvalidArgument);  // duplicate name
  const std::vector<std::uint8_t> bytes = w.to_bytes();
  CHECK(bytes.size() == w.total_bytes());
  CHECK(bytes.size() % io::kAlignment == 0);
  io::SectionReader rd(io::copy_bytes(bytes.data(), bytes.size()), "TEST", 2, "<test>");
  CHECK(rd.kind_version() == 2);
  CHECK(rd.has("a"));
  CHECK_FALSE(rd.has("c"));
  CHECK(rd.count<std::int64_t>("a") == 3);
  CHECK(rd.get<float>("b", 2)[1] == -1.0f);
  CHECK_THROWS_AS(rd.get<float>("a", 3), FormatError);  // wrong dtype
  CHECK_THROWS_AS(rd.get<std::int64_t>("a", 4), FormatError);  // wrong count
  CHECK_THROWS_AS(io::SectionReader(io::copy_bytes(bytes.data(), bytes.size()), "SIDX", 2, "<test>"), FormatError);
  CHECK_THROWS_AS(io::SectionReader(io::copy_bytes(bytes.data(), bytes.size()), "TEST", 1, "<test>"), FormatError);
  for (std::size_t pos = 0; pos < bytes.size(); pos += 5) {
    std::vector<std::uint8_t> damaged = bytes;
    damaged[pos] ^= 0x10;
    CHECK_THROWS_AS(io::SectionReader(io::copy_bytes(damaged.data(), damaged.size()), "TEST", 2, "<test>"),
                    FormatError);
  }
  CHECK_THROWS_AS(io::SectionReader(io::copy_bytes(bytes.data(), bytes.size() - 64), "TEST", 2, "<test>"),
                  FormatError);
}

TEST_CASE("checked copies of caller arrays copy good arrays and name the first bad entry") {
  const std::vector<std::int64_t> indptr{0, 2, 2, 5};
  const std::vector<std::int32_t> ids{0, 4, 2, 3, 1};
  const std::vector<float> values{1.0f, -2.0f, 0.5f, 0.0f, 3.0f};
  std::vector<std::int64_t> indptr_copy(4);
  std::vector<std::int32_t> ids_copy(5);
  std::vector<float> values_copy(5);
  copy_indptr_checked(indptr.data(), 3, 5, indptr_copy.data());
  copy_indices_checked(ids.data(), 5, 5, ids_copy.data());
  copy_values_checked(values.data(), 5, values_copy.data());
  CHECK(indptr_copy == indptr);
  CHECK(ids_copy == ids);
  CHECK(values_copy == values);
  CHECK(max_abs(values.data(), 5) == 3.0f);
  CHECK(max_abs(values.data(), 0) == 0.0f);

  std::vector<std::int64_t> bad_ptr = indptr;
  bad_ptr[2] = 1;
  CHECK_THROWS_WITH_AS(copy_indptr_checked(bad_ptr.data(), 3, 5, indptr_copy.data()),
                       doctest::Contains("row 1"), InvalidArgument);
  CHECK_THROWS_WITH_AS(copy_indptr_checked(indptr.data(), 3, 6, indptr_copy.data()),
                       doctest::Contains("indptr[-1]=5"), InvalidArgument);
  bad_ptr = indptr;
  bad_ptr[0] = -1;
  CHECK_THROWS_AS(copy_indptr_checked(bad_ptr.data(), 3, 5, indptr_copy.data()), InvalidArgument);
  for (std::int32_t bad : {5, -1, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()}) {
    std::vector<std::int32_t> bad_ids = ids;
    bad_ids[3] = bad;
    CHECK_THROWS_WITH_AS(copy_indices_checked(bad_ids.data(), 5, 5, ids_copy.data()),
                         doctest::Contains("at position 3"), InvalidArgument);
  }
  for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<float> bad_values = values;
    bad_values[4] = bad;
    CHECK_THROWS_WITH_AS(copy_values_checked(bad_values.data(), 5, values_copy.data()),
                         doctest::Contains("position 4"), InvalidArgument);
  }
  // Long arrays (the vectorised loops' main bodies and tails): the first bad entry is found.
  std::vector<std::int32_t> many(1037, 7), many_copy(1037);
  many[1000] = 64;
  CHECK_THROWS_WITH_AS(copy_indices_checked(many.data(), 1037, 64, many_copy.data()),
                       doctest::Contains("at position 1000"), InvalidArgument);
  CHECK_NOTHROW(copy_indices_checked(many.data(), 1037, 65, many_copy.data()));
}

TEST_CASE("the JSON scan counts nesting outside strings, across pieces") {
  JsonScan scan;
  const std::string text = R"({"a": [1, {"b": "[[[{\"]"}], "c\\": "x"})";
  scan.feed(text.data(), text.size());
  CHECK(scan.max_depth == 3);
  CHECK(scan.depth == 0);
  CHECK(scan.first_space == 5);
  CHECK_FALSE(scan.in_string);
  JsonScan pieces;  // the same text one byte at a time: escapes and strings straddle the pieces
  for (char c : text) pieces.feed(&c, 1);
  CHECK(pieces.max_depth == 3);
  CHECK(pieces.depth == 0);
  JsonScan deep;
  const std::string nested = std::string(20000, '[') + std::string(20000, ']');
  deep.feed(nested.data(), nested.size());
  CHECK(deep.max_depth == 20000);
  CHECK(deep.first_space == -1);
}

TEST_CASE("thread counts are capped at a multiple of the cores") {
  CHECK(max_threads() == kMaxThreadsPerCore * hardware_threads());
  CHECK(resolve_threads(3) == std::min(3, max_threads()));
  CHECK(resolve_threads(1 << 30) == max_threads());
  CHECK(resolve_threads(std::numeric_limits<int>::max()) == max_threads());
  CHECK(resolve_threads(0) >= 1);
  CHECK(resolve_threads(0) <= max_threads());
}

TEST_CASE("a memory map reports a file changed in place; readers refuse what is not a regular file") {
  const std::string path = testing::temp_path("mapped.bin");
  io::SectionWriter writer("TEST", 1);
  const std::vector<float> payload(5000, 1.5f);
  writer.add("x", payload);
  writer.save(path);
  auto mapped = io::map_file(path);
  CHECK_NOTHROW(mapped->check_unchanged());
  CHECK_NOTHROW(io::read_file(path)->check_unchanged());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past the timestamp granularity
  writer.save(path + ".new");
  REQUIRE(std::rename((path + ".new").c_str(), path.c_str()) == 0);
  CHECK_NOTHROW(mapped->check_unchanged());  // replaced by rename: the map still reads the old file
  auto remapped = io::map_file(path);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(::truncate(path.c_str(), 100) == 0);
  CHECK_THROWS_WITH_AS(remapped->check_unchanged(), doctest::Contains("renaming"), FormatError);
  std::remove(path.c_str());
  const std::string fifo = testing::temp_path("pipe");
  std::remove(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(io::read_file(fifo), doctest::Contains("not a regular file"), InvalidArgument);
  CHECK_THROWS_WITH_AS(io::map_file(fifo), doctest::Contains("not a regular file"), InvalidArgument);
  std::remove(fifo.c_str());
}

TEST_CASE("large arrays and file buffers live in huge-page mappings and read back what was put in") {
  // Above kHugePageMinBytes an index array moves into its own mapping: same values, kept valid
  // across moves, 2 MiB-aligned; below it stays an ordinary vector.
  std::vector<std::int64_t> values(kHugePageMinBytes / sizeof(std::int64_t) + 3);
  std::iota(values.begin(), values.end(), std::int64_t{-7});
  const std::vector<std::int64_t> copy = values;
  Array<std::int64_t> big(std::move(values));
  CHECK(reinterpret_cast<std::uintptr_t>(big.data()) % (std::uintptr_t{1} << 21) == 0);
  Array<std::int64_t> moved(std::move(big));
  REQUIRE(moved.size() == copy.size());
  CHECK(std::equal(copy.begin(), copy.end(), moved.data()));
  Array<float> small(std::vector<float>{1.0f, 2.0f});
  CHECK((small.size() == 2 && small[1] == 2.0f));
  // A file above the threshold is read into huge pages, a short one onto the heap: both exact.
  for (const std::size_t n : {std::size_t{1000}, kHugePageMinBytes / sizeof(float) + 17}) {
    const std::string path = testing::temp_path("huge.bin");
    io::SectionWriter writer("TEST", 1);
    std::vector<float> payload(n);
    std::iota(payload.begin(), payload.end(), 0.5f);
    writer.add("x", payload);
    writer.save(path);
    io::SectionReader rd(io::read_file(path), "TEST", 1, path);
    const float* x = rd.get<float>("x", n);
    CHECK(std::equal(payload.begin(), payload.end(), x));
    io::SectionReader from_bytes(io::copy_bytes(writer.to_bytes().data(), writer.total_bytes()), "TEST", 1, path);
    CHECK(std::equal(payload.begin(), payload.end(), from_bytes.get<float>("x", n)));
    std::remove(path.c_str());
  }
  CHECK_THROWS_AS(allocate_huge_pages(0), std::bad_alloc);
  CHECK_THROWS_AS(allocate_huge_pages(SIZE_MAX), std::bad_alloc);
}
