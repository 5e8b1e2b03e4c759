#include "slt/runtime/app.h"

#include <exception>
#include <iostream>

#include "slt/errors.h"

namespace slt {

int run_app(const char* name, int (*body)(int argc, char** argv), int argc, char** argv) {
  try {
    return body(argc, argv);
  } catch (const Error& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace slt
