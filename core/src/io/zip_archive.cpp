#include "zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "slt/io/files.h"
#include "slt/io/tensor_io.h"

namespace slt::detail {

namespace {

uint64_t le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

bool ZipArchive::looks_like_zip(std::string_view head) { return head.size() >= 4 && head.substr(0, 4) == "PK\x03\x04"; }

void ZipArchive::pread_exact(void* destination, uint64_t size, uint64_t offset, const std::string& what) const {
  if (offset + size > file_size_)
    throw TensorFileError("cannot read '" + path_ + "': " + what + " extends past the end of the file (truncated?)");
  char* out = static_cast<char*>(destination);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd_, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw TensorFileError("cannot read '" + path_ + "': " + (n < 0 ? std::strerror(errno) : "unexpected end of file"));
    done += static_cast<uint64_t>(n);
  }
}

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& why) { return TensorFileError("cannot read '" + path_ + "': " + why); };
  require_regular_file(path, "tensor file");  // a FIFO would block open() itself
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw fail(std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw fail(std::strerror(errno));
    file_size_ = static_cast<uint64_t>(st.st_size);
    if (file_size_ < 22) throw fail("the file is too short to be a zip archive (truncated?)");
    // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
    uint64_t tail_size = std::min<uint64_t>(file_size_, 65557 + 20);
    std::vector<char> tail(tail_size);
    pread_exact(tail.data(), tail_size, file_size_ - tail_size, "the zip directory");
    size_t eocd = std::string::npos;
    for (size_t pos = tail_size - 22 + 1; pos-- > 0;) {
      if (std::memcmp(tail.data() + pos, "PK\x05\x06", 4) == 0) {
        eocd = pos;
        break;
      }
    }
    if (eocd == std::string::npos) throw fail("no zip directory found (the file is truncated or not a torch.save file)");
    uint64_t count = le(tail.data() + eocd + 10, 2);
    uint64_t dir_size = le(tail.data() + eocd + 12, 4);
    uint64_t dir_offset = le(tail.data() + eocd + 16, 4);
    if (dir_offset == 0xffffffffu || count == 0xffffu || dir_size == 0xffffffffu) {
      // ZIP64: the locator sits right before the EOCD record.
      if (eocd < 20 || std::memcmp(tail.data() + eocd - 20, "PK\x06\x07", 4) != 0) throw fail("broken ZIP64 directory");
      uint64_t z64 = le(tail.data() + eocd - 20 + 8, 8);
      char record[56];
      pread_exact(record, sizeof record, z64, "the ZIP64 directory");
      if (std::memcmp(record, "PK\x06\x06", 4) != 0) throw fail("broken ZIP64 directory");
      count = le(record + 32, 8);
      dir_size = le(record + 40, 8);
      dir_offset = le(record + 48, 8);
    }
    // Sizes from the file are checked against the file before anything is allocated.
    if (dir_size > file_size_ || dir_offset > file_size_ - dir_size)
      throw fail("the zip directory claims " + std::to_string(dir_size) + " bytes at offset " +
                 std::to_string(dir_offset) + ", beyond the file's " + std::to_string(file_size_) + " (truncated?)");
    std::vector<char> directory(dir_size);
    pread_exact(directory.data(), dir_size, dir_offset, "the zip directory");
    size_t pos = 0;
    for (uint64_t i = 0; i < count; ++i) {
      if (pos + 46 > directory.size() || std::memcmp(directory.data() + pos, "PK\x01\x02", 4) != 0)
        throw fail("corrupt zip directory");
      const char* d = directory.data() + pos;
      uint64_t method = le(d + 10, 2);
      uint64_t compressed = le(d + 20, 4);
      uint64_t uncompressed = le(d + 24, 4);
      uint64_t name_len = le(d + 28, 2), extra_len = le(d + 30, 2), comment_len = le(d + 32, 2);
      uint64_t local = le(d + 42, 4);
      if (pos + 46 + name_len + extra_len > directory.size()) throw fail("corrupt zip directory");
      std::string name(d + 46, name_len);
      // ZIP64 extended information: only the fields that overflowed are present, in order.
      const char* extra = d + 46 + name_len;
      for (size_t e = 0; e + 4 <= extra_len;) {
        uint64_t id = le(extra + e, 2), len = le(extra + e + 2, 2);
        if (id == 0x0001) {
          const char* field = extra + e + 4;
          if (uncompressed == 0xffffffffu) { uncompressed = le(field, 8); field += 8; }
          if (compressed == 0xffffffffu) { compressed = le(field, 8); field += 8; }
          if (local == 0xffffffffu) local = le(field, 8);
        }
        e += 4 + len;
      }
      if (method != 0) throw fail("entry '" + name + "' is compressed; torch.save writes uncompressed archives");
      if (uncompressed > file_size_ || local > file_size_ - uncompressed)
        throw fail("entry '" + name + "' claims " + std::to_string(uncompressed) + " bytes at offset " +
                   std::to_string(local) + ", beyond the file's " + std::to_string(file_size_) + " (truncated?)");
      entries_.emplace(name, Entry{local, uncompressed});
      pos += 46 + name_len + extra_len + comment_len;
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

ZipArchive::~ZipArchive() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t ZipArchive::data_offset(const std::string& name, const Entry& entry) const {
  char header[30];
  pread_exact(header, sizeof header, entry.local_header, "entry '" + name + "'");
  if (std::memcmp(header, "PK\x03\x04", 4) != 0)
    throw TensorFileError("cannot read '" + path_ + "': corrupt entry '" + name + "'");
  return entry.local_header + 30 + le(header + 26, 2) + le(header + 28, 2);
}


uint64_t ZipArchive::size_of(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw TensorFileError("'" + path_ + "' has no entry '" + name + "' (corrupt file?)");
  return it->second.size;
}

std::string ZipArchive::read(const std::string& name) const {
  std::string bytes(size_of(name), '\0');
  read_into(name, bytes.data(), bytes.size());
  return bytes;
}

void ZipArchive::read_into(const std::string& name, void* destination, uint64_t size) const {
  read_range(name, destination, 0, size);
}

void ZipArchive::read_range(const std::string& name, void* destination, uint64_t offset, uint64_t size) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw TensorFileError("'" + path_ + "' has no entry '" + name + "' (corrupt file?)");
  if (offset + size > it->second.size)
    throw TensorFileError("cannot read '" + path_ + "': entry '" + name + "' has " + std::to_string(it->second.size) +
                          " bytes, expected " + std::to_string(offset + size) + " (truncated file?)");
  pread_exact(destination, size, data_offset(name, it->second) + offset, "entry '" + name + "'");
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

}  // namespace slt::detail
