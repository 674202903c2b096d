// Whether bytes are well-formed UTF-8 (RFC 3629, section 4: no overlong forms, no surrogates,
// nothing above U+10FFFF). Names of objects and vdisks must be, so that every listing (text or
// JSON) shows them as they are and a name printed can be given back. And text made safe to show
// on a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cairn {

// The length of the well-formed sequence at p[i] (1 to 4 bytes), or 0 when the byte at i does
// not begin one; i < n.
inline size_t Utf8SequenceLength(const unsigned char* p, size_t i, size_t n) {
  const unsigned c = p[i];
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (RFC 3629 table)
  if (c < 0x80) {
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if ((p[i + k] & 0xC0) != 0x80) return 0;
  return len;
}

// The offset of the first byte that does not begin a well-formed sequence, or npos if none.
inline size_t FirstInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0, len; i < s.size(); i += len)
    if ((len = Utf8SequenceLength(p, i, s.size())) == 0) return i;
  return std::string_view::npos;
}

// `s` as text that is safe to write to a terminal: every byte that a terminal could act on
// rather than show is written as \xNN (two lower-case hex digits): C0 controls and DEL
// (ECMA-48 escape sequences, carriage returns and backspaces that would rewrite what is on the
// screen), C1 controls (U+0080 to U+009F), the bidirectional overrides and isolates (U+202A to
// U+202E, U+2066 to U+2069: "Trojan Source", CVE-2021-42574) and bytes that are not UTF-8.
// Everything else, newlines of a multi-line message aside, is left as it is. For names and
// messages in text output; JSON output escapes by its own rules.
inline std::string ShownInTerminal(std::string_view s, bool keep_newlines = false) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::string out;
  out.reserve(s.size());
  auto escape = [&](size_t from, size_t n) {
    for (size_t k = from; k < from + n; k++) {
      out += "\\x";
      out += kHex[p[k] >> 4];
      out += kHex[p[k] & 15];
    }
  };
  for (size_t i = 0; i < s.size();) {
    const unsigned c = p[i];
    size_t len = Utf8SequenceLength(p, i, s.size());
    if (len == 0) {
      escape(i, 1);
      i++;
      continue;
    }
    bool control = false;
    if (len == 1)
      control = (c < 0x20 || c == 0x7F) && !(keep_newlines && c == '\n');
    else if (len == 2)
      control = c == 0xC2 && p[i + 1] <= 0x9F;  // U+0080..U+009F
    else if (len == 3 && c == 0xE2)
      control = (p[i + 1] == 0x80 && p[i + 2] >= 0xAA && p[i + 2] <= 0xAE) ||
                (p[i + 1] == 0x81 && p[i + 2] >= 0xA6 && p[i + 2] <= 0xA9);
    if (control)
      escape(i, len);
    else
      out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace cairn
