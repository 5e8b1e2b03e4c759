#include "slt/io/files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "slt/errors.h"

namespace slt {

void require_regular_file(const std::filesystem::path& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw UserError("cannot open " + what + " '" + path.string() + "': " + std::strerror(errno));
  if (S_ISREG(st.st_mode)) return;
  const char* kind = S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                     : S_ISSOCK(st.st_mode) ? "a socket" : "a device";
  throw UserError(what + " '" + path.string() + "' is " + kind + ", not a regular file");
}

std::ifstream open_regular_file(const std::filesystem::path& path, const std::string& what) {
  require_regular_file(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot open " + what + " '" + path.string() + "': " + std::strerror(errno));
  return in;
}

}  // namespace slt
