// slt-fuzz: runs the fuzz targets without libFuzzer (any compiler; built with
// the sanitizers in scripts/sanitize.sh).
//   slt-fuzz --list
//   slt-fuzz TARGET INPUT...                      replay files (or folders of files)
//   slt-fuzz TARGET --seconds N [--seed S] [--artifacts DIR] INPUT...
// The second form replays, then mutates the inputs at random until N seconds
// have passed (unguided: libFuzzer, see docs/HARDENING.md, is coverage-guided).
// Before each run the input is written to DIR/last-input-TARGET, so a
// sanitizer abort leaves it behind; an exception other than slt::UserError is
// saved as DIR/finding-TARGET-<n> and stops the run with exit 1.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "fuzz_targets.h"
#include "slt/errors.h"

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void save(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Random edits of the kinds that break parsers: bits, boundary bytes, numbers
// in text, inserted/deleted/duplicated ranges, pieces of another input, truncation.
Bytes mutate(const Bytes& input, const std::vector<Bytes>& corpus, std::mt19937_64& rng, size_t max_size) {
  Bytes b = input;
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  static const char* const kNumbers[] = {"0", "-1", "2147483648", "18446744073709551615", "9223372036854775807",
                                         "-9223372036854775808", "1e308", "nan", "1.5", "65536", "4294967296"};
  static const uint8_t kBytes[] = {0x00, 0xff, 0x7f, 0x80, 0x0a, 0x09, '"', '[', '{', ':', ',', '\\'};
  const int edits = 1 + static_cast<int>(pick(4));
  for (int e = 0; e < edits; ++e) {
    switch (pick(9)) {
      case 0:
        if (!b.empty()) b[pick(b.size())] ^= static_cast<uint8_t>(1u << pick(8));
        break;
      case 1:
        if (!b.empty()) b[pick(b.size())] = kBytes[pick(sizeof kBytes)];
        break;
      case 2: {  // a run of digits becomes a boundary number
        std::vector<size_t> digits;
        for (size_t i = 0; i < b.size(); ++i)
          if (b[i] >= '0' && b[i] <= '9' && (i == 0 || b[i - 1] < '0' || b[i - 1] > '9')) digits.push_back(i);
        if (digits.empty()) break;
        size_t start = digits[pick(digits.size())], end = start;
        while (end < b.size() && b[end] >= '0' && b[end] <= '9') ++end;
        const char* number = kNumbers[pick(sizeof kNumbers / sizeof *kNumbers)];
        b.erase(b.begin() + static_cast<long>(start), b.begin() + static_cast<long>(end));
        b.insert(b.begin() + static_cast<long>(start), number, number + std::strlen(number));
        break;
      }
      case 3: {
        size_t at = pick(b.size() + 1), n = 1 + pick(16);
        Bytes random(n);
        for (auto& x : random) x = static_cast<uint8_t>(rng());
        b.insert(b.begin() + static_cast<long>(at), random.begin(), random.end());
        break;
      }
      case 4:
        if (!b.empty()) {
          size_t at = pick(b.size()), n = 1 + pick(std::min<size_t>(b.size() - at, 64));
          b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
        }
        break;
      case 5:
        if (!b.empty()) {
          size_t at = pick(b.size()), n = 1 + pick(std::min<size_t>(b.size() - at, 256));
          Bytes piece(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
          b.insert(b.begin() + static_cast<long>(pick(b.size() + 1)), piece.begin(), piece.end());
        }
        break;
      case 6: {
        const Bytes& other = corpus[pick(corpus.size())];
        if (other.empty()) break;
        size_t from = pick(other.size()), n = 1 + pick(std::min<size_t>(other.size() - from, 256));
        size_t at = pick(b.size() + 1);
        b.insert(b.begin() + static_cast<long>(at), other.begin() + static_cast<long>(from),
                 other.begin() + static_cast<long>(from + n));
        break;
      }
      case 7:
        b.resize(pick(b.size() + 1));
        break;
      default:
        if (b.size() >= 4) {  // a little-endian size field made huge or zero
          size_t at = pick(b.size() - 3);
          uint32_t value = pick(2) ? 0xffffffffu : 0u;
          std::memcpy(b.data() + at, &value, 4);
        }
    }
  }
  if (b.size() > max_size) b.resize(max_size);
  return b;
}

int usage() {
  std::cerr << "usage: slt-fuzz --list | slt-fuzz TARGET [--seconds N] [--seed S] [--max-size BYTES] [--artifacts DIR] "
               "INPUT...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  spdlog::set_level(spdlog::level::err);  // parsers' warnings about each mutated input would drown the findings
  if (args[0] == "--list") {
    for (const auto& t : slt_fuzz::targets()) std::cout << t.name << "\t" << t.reads << "\n";
    return 0;
  }
  const slt_fuzz::Target* target = slt_fuzz::find_target(args[0]);
  if (!target) {
    std::cerr << "slt-fuzz: no target '" << args[0] << "' (slt-fuzz --list)\n";
    return 2;
  }
  if (!target->unavailable.empty()) {
    std::cout << "slt-fuzz " << target->name << ": not in this build (" << target->unavailable << ")\n";
    return 0;
  }
  double seconds = 0;
  uint64_t seed = 1;
  size_t max_size = 1 << 20;
  fs::path artifacts = fs::current_path();
  std::vector<fs::path> inputs;
  for (size_t i = 1; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) std::exit(usage());
      return args[++i];
    };
    if (args[i] == "--seconds") seconds = std::stod(value());
    else if (args[i] == "--seed") seed = std::stoull(value());
    else if (args[i] == "--max-size") max_size = std::stoull(value());
    else if (args[i] == "--artifacts") artifacts = value();
    else inputs.emplace_back(args[i]);
  }
  std::vector<Bytes> corpus;
  for (const auto& input : inputs) {
    if (fs::is_directory(input)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::recursive_directory_iterator(input))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) corpus.push_back(read_bytes(f));
    } else if (fs::is_regular_file(input)) {
      corpus.push_back(read_bytes(input));
    } else {
      std::cerr << "slt-fuzz: no input '" << input.string() << "'\n";
      return 2;
    }
  }
  if (corpus.empty()) corpus.emplace_back();
  fs::create_directories(artifacts);
  const fs::path last = artifacts / ("last-input-" + target->name);
  size_t runs = 0, refused = 0;
  auto run_one = [&](const Bytes& input) {
    save(last, input);
    ++runs;
    try {
      target->run(input.data(), input.size());
    } catch (const slt::UserError&) {
      ++refused;  // a clear error: what bad input should get
    } catch (const std::exception& e) {
      fs::path finding = artifacts / ("finding-" + target->name + "-" + std::to_string(runs));
      save(finding, input);
      std::cerr << "slt-fuzz " << target->name << ": not a clear error (saved as " << finding.string()
                << "): " << e.what() << "\n";
      std::exit(1);
    }
  };
  for (const auto& input : corpus) run_one(input);
  std::mt19937_64 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (seconds > 0 && std::chrono::steady_clock::now() < deadline)
    run_one(mutate(corpus[rng() % corpus.size()], corpus, rng, max_size));
  fs::remove(last);
  std::cout << "slt-fuzz " << target->name << ": " << runs << " inputs, " << refused << " refused with a clear error, "
            << "no finding\n";
  return 0;
}
