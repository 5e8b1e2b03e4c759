#pragma once
// Fuzz targets: each feeds one kind of outside data to the parser slt reads
// it with. A target returns normally when the parser accepted the input or
// refused it with a UserError (the clear, exit-2 kind); anything else (a
// crash, a sanitizer report, another exception) is a finding. See
// docs/HARDENING.md for running them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace slt_fuzz {

struct Target {
  std::string name;
  std::string reads;  // what the input stands for
  void (*run)(const uint8_t* data, size_t size);
  std::string unavailable = {};  // why this build cannot run it; empty when it can
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);

}  // namespace slt_fuzz
