#include "core/json_scan.h"

#include <algorithm>

namespace likeable {

void JsonScan::feed(const char* data, std::size_t n) {
  const char* p = data;
  const char* const end = data + n;
  while (p < end) {
    if (in_string) {
      if (escaped) {
        escaped = false;
        ++p;
        continue;
      }
      // Skip to the next quote or backslash (memchr-speed; strings are most of a data file).
      const char* q = p;
      while (q < end && *q != '"' && *q != '\\') ++q;
      if (q == end) {
        p = end;
        break;
      }
      if (*q == '\\') escaped = true;
      else in_string = false;
      p = q + 1;
      continue;
    }
    const char c = *p;
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        max_depth = std::max(max_depth, ++depth);
        break;
      case ']':
      case '}':
        --depth;
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        if (first_space < 0) first_space = offset + (p - data);
        break;
      default:
        break;
    }
    ++p;
  }
  offset += static_cast<std::int64_t>(n);
}

}  // namespace likeable
