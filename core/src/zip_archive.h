#pragma once
// A read-only view of an uncompressed zip archive (what torch.save writes),
// memory-mapped. Internal to libslt_core.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace slt::detail {

class ZipArchive {
 public:
  // Throws TensorFileError naming `path` when it is not a readable zip.
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  // The bytes of an entry; valid while the archive lives.
  std::string_view read(const std::string& name) const;
  const std::map<std::string, std::string_view>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

  // True when the file starts like a zip archive.
  static bool looks_like_zip(std::string_view head);

 private:
  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, std::string_view> entries_;
};

}  // namespace slt::detail
