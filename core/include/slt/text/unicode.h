#pragma once
// UTF-8 <-> code points, and Python's notion of whitespace (str.split()).
#include <string>
#include <string_view>

namespace slt::unicode {

// Invalid bytes decode to U+FFFD.
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t c);
bool is_valid_utf8(std::string_view text);

// Python's str.isspace() set, which str.split() splits on (includes U+00A0).
bool is_python_space(char32_t c);

// Python's " ".join(text.split()).
std::u32string normalize_spaces(std::u32string_view text);

}  // namespace slt::unicode
