#include "slt/io/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "slt/errors.h"

namespace fs = std::filesystem;

namespace slt {

FolderLock::FolderLock(const fs::path& folder, const std::string& what) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec || !fs::is_directory(folder))
    throw UserError("cannot use '" + folder.string() + "' as an output folder: " +
                    (ec ? ec.message() : std::string("it exists and is not a folder")));
  const fs::path path = folder / kFileName;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UserError("cannot create the lock file '" + path.string() + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::ifstream in(path);
    std::string holder;
    std::getline(in, holder);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      throw UserError("'" + folder.string() + "' is in use by another slt process (" +
                      (holder.empty() ? std::string("starting up") : holder) +
                      "); wait for it to end, or write to another folder");
    throw UserError("cannot lock '" + path.string() + "': " + std::strerror(error));
  }
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  std::ostringstream holder;
  holder << "pid " << ::getpid() << " on " << host << ", " << what;
  const std::string text = holder.str() + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    ssize_t ignored = ::pwrite(fd_, text.data(), text.size(), 0);
    (void)ignored;  // the text only helps the message above; the lock is what counts
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the lock
}

}  // namespace slt
