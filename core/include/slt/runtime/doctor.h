#pragma once
// `slt-run --doctor`: what this installation runs on, and whether it is fast.
#include <filesystem>
#include <string>
#include <vector>

namespace slt {

struct DoctorReport {
  std::string slt_version;
  std::string torch_version;
  std::string blas_library;  // resolved path of the libblas the process loaded
  bool blas_is_reference = false;
  int threads = 0;      // intra-op threads a run uses by default
  int usable_cpus = 0;  // affinity mask, capped by the cgroup quota
  bool cuda_available = false;
  int cuda_devices = 0;
  std::string ffmpeg_version;  // filled by the app from the video module (video/ffmpeg.h)
  std::string h264_decoder;    // empty when FFmpeg has none
  std::vector<std::filesystem::path> plugin_path;
  std::vector<std::string> plugins;  // "name version (path)"
  double gemm_gflops = 0;            // 1024x1024 float32 matrix product

  std::vector<std::string> warnings() const;
  std::string to_text() const;
};

DoctorReport run_doctor(const std::vector<std::filesystem::path>& plugin_path);

// GFLOP/s of an n x n float32 matrix product on the CPU (best of a few runs).
double measure_gemm_gflops(int n = 1024);

}  // namespace slt
