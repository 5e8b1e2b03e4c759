#include "slt/runtime/doctor.h"
#include "slt/runtime/threads.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "slt/plugin/plugin_loader.h"
#include "slt/version.h"

namespace fs = std::filesystem;

namespace slt {

namespace {

// The BLAS actually mapped into this process (Debian switches it with alternatives).
std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::set<std::string> found;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string name = fs::path(path).filename().string();
    if (name.find("blas") != std::string::npos) found.insert(fs::weakly_canonical(path).string());
  }
  std::string out;
  for (const auto& f : found) out += (out.empty() ? "" : ", ") + f;
  return out;
}

}  // namespace

double measure_gemm_gflops(int n) {
  at::Tensor a = at::randn({n, n});
  at::Tensor b = at::randn({n, n});
  at::mm(a, b);  // warm-up: thread pool, BLAS initialisation
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    at::Tensor c = at::mm(a, b);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, seconds);
  }
  return 2.0 * n * n * n / best / 1e9;
}

DoctorReport run_doctor(const std::vector<fs::path>& plugin_path) {
  DoctorReport r;
  r.slt_version = SLT_VERSION_STRING;
  r.torch_version = TORCH_VERSION;
  r.threads = configure_threads(std::nullopt).threads;  // what a run uses by default
  r.usable_cpus = usable_cpus();
  r.gemm_gflops = measure_gemm_gflops();  // also makes sure the BLAS is loaded
  r.blas_library = loaded_blas();
  // Debian's reference BLAS lives in .../blas/; OpenBLAS in .../openblas-*/.
  r.blas_is_reference = r.blas_library.find("/blas/") != std::string::npos &&
                        r.blas_library.find("openblas") == std::string::npos;
  r.cuda_available = at::hasCUDA();
  r.plugin_path = plugin_path;
  for (const auto& p : load_plugins(plugin_path))
    r.plugins.push_back(p.name + " " + p.version + " (" + p.path + ")");
  return r;
}

std::vector<std::string> DoctorReport::warnings() const {
  std::vector<std::string> w;
  if (blas_is_reference)
    w.push_back("the slow reference BLAS is active (" + blas_library +
                "); install OpenBLAS for ~10x faster matrix products: "
                "apt-get install libopenblas0-openmp");
  if (blas_library.empty()) w.push_back("could not tell which BLAS library is loaded");
  if (h264_decoder.empty())
    w.push_back("FFmpeg has no H.264 decoder: feature extraction cannot read .mp4 videos");
  if (plugins.empty()) w.push_back("no plugins found on the plugin path");
  return w;
}

std::string DoctorReport::to_text() const {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) {
    out += key + std::string(key.size() < 14 ? 14 - key.size() : 1, ' ') + value + "\n";
  };
  char gflops[32];
  std::snprintf(gflops, sizeof gflops, "%.1f GFLOP/s", gemm_gflops);
  line("slt", slt_version);
  line("LibTorch", torch_version);
  line("BLAS", blas_library.empty() ? "unknown" : blas_library);
  line("GEMM", std::string(gflops) + " (1024x1024 float32, " + std::to_string(threads) + " threads)");
  line("threads", std::to_string(threads) + " intra-op (LibTorch), " + std::to_string(usable_cpus) +
                      " usable CPUs (affinity, cgroup quota) of " + std::to_string(std::thread::hardware_concurrency()));
  line("CUDA", cuda_available ? "available" : "not available");
  line("FFmpeg", ffmpeg_version);
  line("H.264", h264_decoder.empty() ? "no decoder" : h264_decoder);
  std::string path;
  for (const auto& p : plugin_path) path += (path.empty() ? "" : ":") + p.string();
  line("plugin path", path);
  line("plugins", plugins.empty() ? "none" : std::to_string(plugins.size()));
  for (const auto& p : plugins) out += "  " + p + "\n";
  for (const auto& w : warnings()) out += "WARNING: " + w + "\n";
  return out;
}

}  // namespace slt
