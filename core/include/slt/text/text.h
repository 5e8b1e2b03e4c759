#pragma once
// Small string helpers shared by the core and the apps.
#include <string>
#include <string_view>
#include <vector>

namespace slt {

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is plausibly a typo of it.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// ", "-joined list, for messages.
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

std::vector<std::string> split(std::string_view text, char sep);

// `arg` as a POSIX shell needs it quoted (command lines recorded or written to scripts).
std::string shell_quote(const std::string& arg);

// Without leading and trailing spaces, tabs and line ends (Python's strip() for ASCII text).
std::string trim(std::string_view text);

// A-Z lowered, every other byte kept.
std::string ascii_lower(std::string text);

}  // namespace slt
