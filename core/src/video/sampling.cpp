#include "slt/video/sampling.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace slt::video {

namespace {

// torch.linspace in float32: both ends as floats, the first half stepped up
// from the start, the second half stepped down from the end.
std::vector<float> linspace_f32(double start, double end, int64_t steps) {
  std::vector<float> out(static_cast<size_t>(steps));
  const float a = static_cast<float>(start), b = static_cast<float>(end);
  if (steps == 1) {
    out[0] = a;
    return out;
  }
  const float step = (b - a) / static_cast<float>(steps - 1);
  const int64_t half = steps / 2;
  for (int64_t j = 0; j < steps; ++j)
    out[static_cast<size_t>(j)] = j < half ? a + step * static_cast<float>(j) : b - step * static_cast<float>(steps - 1 - j);
  return out;
}

// get_num_padding_frames: repeated (clamped) positions are padding; when the
// target rate exceeds the sampled source rate, frames count as interpolated.
int64_t padding_of(const std::vector<int64_t>& indices, double fps, const SamplingOptions& options) {
  const int64_t unique = static_cast<int64_t>(std::set<int64_t>(indices.begin(), indices.end()).size());
  const double source_rate = fps * static_cast<double>(options.sampling_rate);
  if (options.target_fps > source_rate)
    return options.num_frames - static_cast<int64_t>(std::floor(static_cast<double>(unique) * options.target_fps / source_rate));
  return options.num_frames - unique;
}

}  // namespace

ClipWindow window_at(int64_t k, double fps, const SamplingOptions& options, std::optional<int64_t> last_frame) {
  const double clip_sz =
      static_cast<double>(options.sampling_rate) * static_cast<double>(options.num_frames) / options.target_fps * fps;
  ClipWindow w;
  w.start_idx = static_cast<double>(k * options.stride() * options.sampling_rate);
  w.end_idx = w.start_idx + clip_sz - 1;
  for (float position : linspace_f32(w.start_idx + 0.5, w.end_idx + 0.5, options.num_frames)) {
    float clamped = std::max(position, 0.0f);
    if (last_frame) clamped = std::min(clamped, static_cast<float>(*last_frame));
    w.indices.push_back(static_cast<int64_t>(clamped));  // .long() truncates
  }
  w.padding = padding_of(w.indices, fps, options);
  return w;
}

std::vector<ClipWindow> feature_extraction_windows(int64_t total_frames, double fps, const SamplingOptions& options) {
  std::vector<ClipWindow> windows;
  for (int64_t k = 0; k * options.stride() * options.sampling_rate < total_frames; ++k) {
    windows.push_back(window_at(k, fps, options, total_frames - 1));
    if (windows.back().end_idx >= static_cast<double>(total_frames)) break;
  }
  return windows;
}

bool window_is_final(const ClipWindow& w, int64_t decoded) {
  // Nothing clamped once `decoded` frames exist, and the stop rule (end_idx >= N) cannot fire.
  return w.end_idx < static_cast<double>(decoded) && w.indices.back() < decoded;
}

}  // namespace slt::video
