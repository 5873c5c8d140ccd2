// How deeply a JSON text nests arrays and objects, found without parsing it. JSON parsers
// recurse per level: Python's json raises RecursionError, and pyarrow's reader overflows the C
// stack and kills the process on one line nested 20,000 deep. Every JSON likeable reads (data
// files, safetensors headers, configs, reports) is scanned first and refused when it nests
// deeper than its reader expects. Fed in pieces (a file read in chunks): the state carries over.
#pragma once

#include <cstddef>
#include <cstdint>

namespace likeable {

struct JsonScan {
  std::int64_t depth = 0;         // open arrays/objects at the current position
  std::int64_t max_depth = 0;     // the deepest seen
  std::int64_t first_space = -1;  // offset of the first whitespace outside strings; -1: none yet
  std::int64_t offset = 0;        // bytes fed so far
  bool in_string = false;
  bool escaped = false;           // the previous byte was a backslash inside a string

  void feed(const char* data, std::size_t n);
};

}  // namespace likeable
