#pragma once
// Which decoded frames make up each clip: the sliding windows of the
// reference's VideoDataset in feature-extraction mode
// (sample_frames_for_feature_extraction, temporal_sampling,
// get_num_padding_frames), index for index.
#include <cstdint>
#include <optional>
#include <vector>

namespace slt::video {

struct SamplingOptions {
  int64_t num_frames = 128;    // frames per clip
  int64_t sampling_rate = 2;   // source frames between two sampled ones, at target_fps
  double target_fps = 25;
  int64_t stride() const { return num_frames / 2; }
};

struct ClipWindow {
  double start_idx = 0, end_idx = 0;  // as passed to temporal_sampling
  std::vector<int64_t> indices;       // num_frames decoded-frame indices (clamped to the last frame)
  int64_t padding = 0;                // frames the model treats as padding
};

// The window that starts at source frame k·stride·sampling_rate of a video at
// `fps`: clip_sz = sampling_rate·num_frames/target_fps·fps source frames,
// indices = trunc(clamp(linspace_f32(start+0.5, end+0.5, num_frames), 0, last)).
// `last_frame` unset: not known yet, nothing is clamped.
ClipWindow window_at(int64_t k, double fps, const SamplingOptions& options, std::optional<int64_t> last_frame);

// Every window of a video of `total_frames` decoded frames: window k starts at
// k·stride·sampling_rate while that is < total_frames, and the windows stop
// after the first that reaches past the last frame.
std::vector<ClipWindow> feature_extraction_windows(int64_t total_frames, double fps, const SamplingOptions& options);

// Whether window `w` (computed without a last frame) needs no more than
// `decoded` frames: it is then final however many frames follow.
bool window_is_final(const ClipWindow& w, int64_t decoded);

}  // namespace slt::video
