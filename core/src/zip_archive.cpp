#include "zip_archive.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "slt/tensor_io.h"

namespace slt::detail {

namespace {

uint64_t le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

bool ZipArchive::looks_like_zip(std::string_view head) { return head.size() >= 4 && head.substr(0, 4) == "PK\x03\x04"; }

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& why) -> TensorFileError {
    return TensorFileError("cannot read '" + path_ + "': " + why);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw fail(std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 22) {
    ::close(fd);
    throw fail("the file is too short to be a zip archive (truncated?)");
  }
  void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) throw fail(std::strerror(errno));
  data_ = static_cast<const char*>(mapped);

  try {
    // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
    size_t eocd = std::string::npos;
    size_t lowest = size_ > 65557 ? size_ - 65557 : 0;
    for (size_t pos = size_ - 22 + 1; pos-- > lowest;) {
      if (std::memcmp(data_ + pos, "PK\x05\x06", 4) == 0) {
        eocd = pos;
        break;
      }
    }
    if (eocd == std::string::npos) throw fail("no zip directory found (the file is truncated or not a torch.save file)");
    uint64_t count = le(data_ + eocd + 10, 2);
    uint64_t dir_offset = le(data_ + eocd + 16, 4);
    if (dir_offset == 0xffffffffu || count == 0xffffu) {
      // ZIP64: the locator sits right before the EOCD record.
      if (eocd < 20 || std::memcmp(data_ + eocd - 20, "PK\x06\x07", 4) != 0) throw fail("broken ZIP64 directory");
      uint64_t z64 = le(data_ + eocd - 20 + 8, 8);
      if (z64 + 56 > size_ || std::memcmp(data_ + z64, "PK\x06\x06", 4) != 0) throw fail("broken ZIP64 directory");
      count = le(data_ + z64 + 32, 8);
      dir_offset = le(data_ + z64 + 48, 8);
    }
    size_t pos = dir_offset;
    for (uint64_t i = 0; i < count; ++i) {
      if (pos + 46 > size_ || std::memcmp(data_ + pos, "PK\x01\x02", 4) != 0) throw fail("corrupt zip directory");
      uint64_t method = le(data_ + pos + 10, 2);
      uint64_t compressed = le(data_ + pos + 20, 4);
      uint64_t uncompressed = le(data_ + pos + 24, 4);
      uint64_t name_len = le(data_ + pos + 28, 2);
      uint64_t extra_len = le(data_ + pos + 30, 2);
      uint64_t comment_len = le(data_ + pos + 32, 2);
      uint64_t local = le(data_ + pos + 42, 4);
      std::string name(data_ + pos + 46, name_len);
      // ZIP64 extended information: only the fields that overflowed are present, in order.
      const char* extra = data_ + pos + 46 + name_len;
      for (size_t e = 0; e + 4 <= extra_len;) {
        uint64_t id = le(extra + e, 2), len = le(extra + e + 2, 2);
        if (id == 0x0001) {
          const char* field = extra + e + 4;
          if (uncompressed == 0xffffffffu) { uncompressed = le(field, 8); field += 8; }
          if (compressed == 0xffffffffu) { compressed = le(field, 8); field += 8; }
          if (local == 0xffffffffu) { local = le(field, 8); }
        }
        e += 4 + len;
      }
      if (method != 0)
        throw fail("entry '" + name + "' is compressed; torch.save writes uncompressed archives");
      if (local + 30 > size_ || std::memcmp(data_ + local, "PK\x03\x04", 4) != 0) throw fail("corrupt entry '" + name + "'");
      uint64_t start = local + 30 + le(data_ + local + 26, 2) + le(data_ + local + 28, 2);
      if (start + uncompressed > size_) throw fail("entry '" + name + "' extends past the end of the file (truncated)");
      entries_.emplace(name, std::string_view(data_ + start, uncompressed));
      pos += 46 + name_len + extra_len + comment_len;
    }
  } catch (...) {
    ::munmap(const_cast<char*>(data_), size_);
    throw;
  }
}

ZipArchive::~ZipArchive() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

std::string_view ZipArchive::read(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw TensorFileError("'" + path_ + "' has no entry '" + name + "' (corrupt file?)");
  return it->second;
}

}  // namespace slt::detail
