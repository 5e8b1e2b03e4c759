#include "slt/train/precision.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>

#include "slt/errors.h"

namespace slt {

at::Device run_device(const ConfigNode& job) {
  std::string name = job.require<std::string>("common.device");
  if (name == "cpu") return at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA())
      throw UserError("common.device=" + name +
                      ", but CUDA is not available on this machine (no GPU, or LibTorch built without CUDA); "
                      "run on the CPU with common.device=cpu");
    return at::Device(name);
  }
  throw UserError("common.device='" + name + "': expected cpu, cuda or cuda:N");
}

std::string Precision::describe() const { return autocast ? std::string(c10::toString(dtype)) + " autocast" : "fp32"; }

Precision run_precision(const ConfigNode& job, const at::Device& device) {
  bool fp16 = job.require<bool>("common.fp16"), bf16 = job.require<bool>("common.bf16");
  if (fp16 && bf16) throw ConfigError("common.fp16=true and common.bf16=true: choose one mixed precision");
  Precision p;
  if (!fp16 && !bf16) return p;
  p.autocast = true;
  if (device.is_cuda()) {
    p.dtype = fp16 ? at::kHalf : at::kBFloat16;
    p.scale_loss = fp16;
  } else {
    // The run is on the CPU by choice (common.device=cpu): CPU autocast only does bf16.
    p.dtype = at::kBFloat16;
    spdlog::warn("common.{}=true on the CPU: using bf16 CPU autocast (fp16 autocast needs CUDA); "
                 "set common.{}=false to train in full fp32",
                 fp16 ? "fp16" : "bf16", fp16 ? "fp16" : "bf16");
  }
  return p;
}

AutocastScope::AutocastScope(const Precision& precision, const at::Device& device)
    : active_(precision.autocast), cuda_(device.is_cuda()) {
  if (!active_) return;
  if (cuda_) {
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(precision.dtype);
    at::autocast::set_enabled(true);
  } else {
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(precision.dtype);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(false);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

}  // namespace slt
