#pragma once
// Opening files that come from outside. A FIFO or device where a file is
// expected would block a job forever, and a folder reads as an empty file:
// both are refused up front with the path and what was expected.
#include <filesystem>
#include <fstream>
#include <string>

namespace slt {

/// Throws UserError unless `path` is a regular file (symlinks followed).
/// `what` names the file for the message: "features file", "manifest".
///
///   require_regular_file(dir / "vocab.json", "tokenizer vocabulary");
void require_regular_file(const std::filesystem::path& path, const std::string& what = "file");

/// require_regular_file, then the opened stream (binary mode).
std::ifstream open_regular_file(const std::filesystem::path& path, const std::string& what = "file");

}  // namespace slt
