#include "slt/runtime/app.h"

#include <exception>
#include <filesystem>
#include <iostream>

#include "slt/errors.h"

namespace slt {

int run_app(const char* name, int (*body)(int argc, char** argv), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const Error& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the system refuses (too long, no permission, a file where a folder
    // should be): the user's to fix, so named as such.
    std::cerr << name << ": error: cannot use '" << e.path1().string() << "': " << e.code().message() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace slt
