#pragma once
// Read access to an uncompressed zip archive (what torch.save writes) with
// pread, never mmap: mapping and unmapping every feature file from several
// loader threads serialises them on the kernel's memory-map lock (and TLB
// shootdowns). Internal to libslt_core.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace slt::detail {

class ZipArchive {
 public:
  // Throws TensorFileError naming `path` when it is not a readable zip.
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  uint64_t size_of(const std::string& name) const;
  std::string read(const std::string& name) const;
  // Reads the first `size` bytes of an entry straight into `destination`.
  void read_into(const std::string& name, void* destination, uint64_t size) const;
  // Reads `size` bytes starting `offset` bytes into an entry.
  void read_range(const std::string& name, void* destination, uint64_t offset, uint64_t size) const;
  std::vector<std::string> names() const;
  const std::string& path() const { return path_; }

  // True when the file starts like a zip archive.
  static bool looks_like_zip(std::string_view head);

 private:
  struct Entry {
    uint64_t local_header;
    uint64_t size;
  };
  uint64_t data_offset(const std::string& name, const Entry& entry) const;
  void pread_exact(void* destination, uint64_t size, uint64_t offset, const std::string& what) const;

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::map<std::string, Entry> entries_;
};

}  // namespace slt::detail
