#include "packed_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/intrusive_ptr.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "panel_kernel.h"
#include "slt/model/decoding_kernels.h"

namespace slt::detail {

namespace {

std::atomic<bool> packed_linear_enabled{true};

// The weight transposed into panels of kPanelWidth output columns, each
// stored [in][kPanelWidth] so that the kernel reads one contiguous stream;
// the last panel is zero-padded.
struct PackedWeight {
  at::Tensor panels;  // [panel_count, in, kPanelWidth]
  int64_t in = 0, out = 0;
};

PackedWeight pack(const at::Tensor& weight) {
  PackedWeight packed;
  packed.out = weight.size(0);
  packed.in = weight.size(1);
  const int64_t panel_count = (packed.out + kPanelWidth - 1) / kPanelWidth, in = packed.in, out = packed.out;
  packed.panels = at::empty({panel_count, in, kPanelWidth}, at::kFloat);
  const MatrixView transposed{weight.data_ptr<float>(), 1, in};  // b(l, j) = weight[j][l]
  float* p = packed.panels.data_ptr<float>();
  at::parallel_for(0, panel_count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t panel = begin; panel < end; ++panel)
      pack_panel(transposed, panel * kPanelWidth, std::min(kPanelWidth, out - panel * kPanelWidth), in,
                 p + panel * in * kPanelWidth);
  });
  return packed;
}

// Packed copies by weight. Each entry holds a weak reference to its weight's
// TensorImpl, which keeps that address from being reused by another tensor
// while the entry exists, so a key match always means the same tensor; its
// data pointer and version counter tell whether it was written since.
class PackedWeightCache {
 public:
  std::shared_ptr<const PackedWeight> get(const at::Tensor& weight) {
    const c10::TensorImpl* key = weight.unsafeGetTensorImpl();
    const void* data = weight.data_ptr();
    const uint32_t version = weight._version();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.data == data && it->second.version == version &&
          it->second.packed->out == weight.size(0) && it->second.packed->in == weight.size(1))
        return it->second.packed;
    }
    auto packed = std::make_shared<const PackedWeight>(pack(weight));
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.owner.expired() ? entries_.erase(it) : std::next(it);
    entries_.insert_or_assign(key, Entry{Owner(weight.getIntrusivePtr()), data, version, packed});
    return packed;
  }

 private:
  using Owner = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    Owner owner;
    const void* data;
    uint32_t version;
    std::shared_ptr<const PackedWeight> packed;
  };
  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
};

PackedWeightCache& cache() {
  static PackedWeightCache instance;
  return instance;
}

__attribute__((target("arch=x86-64-v4"))) void rows_times_panels(const float* x, int64_t rows, const PackedWeight& w,
                                                                const float* bias, float* y, int64_t panel_begin,
                                                                int64_t panel_end) {
  const int64_t in = w.in, out = w.out;
  const float* panels = w.panels.data_ptr<float>();
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t col = panel * kPanelWidth;
    rows_times_one_panel({x, in, 1}, rows, in, panels + panel * in * kPanelWidth, bias ? bias + col : nullptr,
                         y + col, out, std::min(kPanelWidth, out - col));
  }
}

}  // namespace

bool takes_packed_kernel(int64_t rows) {
  static const bool avx512 = __builtin_cpu_supports("x86-64-v4");
  return avx512 && rows <= kPackedRowsMax && packed_linear_enabled.load(std::memory_order_relaxed);
}


at::Tensor packed_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const std::shared_ptr<const PackedWeight> packed = cache().get(weight);
  const int64_t in = packed->in, out = packed->out, rows = x.numel() / in;
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  at::Tensor y = at::empty(shape, x.options());
  const float* xp = x.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, packed->panels.size(0), 1, [&](int64_t begin, int64_t end) {
    rows_times_panels(xp, rows, *packed, bp, yp, begin, end);
  });
  return y;
}

}  // namespace slt::detail

namespace slt {

void enable_packed_linear(bool on) { detail::packed_linear_enabled = on; }

}  // namespace slt
