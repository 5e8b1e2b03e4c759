#pragma once
// What every slt app's main() does: run, print a typed error once as
// "<app>: error: ..." and exit with its code (2 for user errors, 1 otherwise).
namespace slt {

int run_app(const char* name, int (*body)(int argc, char** argv), int argc, char** argv);

}  // namespace slt
