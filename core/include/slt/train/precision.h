#pragma once
// The device and mixed precision a run computes in (common.device, fp16, bf16).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

#include "slt/config/config.h"

namespace slt {

// common.device as a device; UserError when CUDA is asked for and missing.
at::Device run_device(const ConfigNode& job);

struct Precision {
  bool autocast = false;
  at::ScalarType dtype = at::kFloat;
  bool scale_loss = false;  // fp16 on CUDA
  std::string describe() const;
};

// common.fp16 / common.bf16 on `device` (CPU autocast only does bf16).
Precision run_precision(const ConfigNode& job, const at::Device& device);

/// torch.autocast for one region (autocast state is thread-local).
///   { AutocastScope autocast(precision, device); out = model->forward(batch); }
class AutocastScope {
 public:
  AutocastScope(const Precision& precision, const at::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_, cuda_;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace slt
