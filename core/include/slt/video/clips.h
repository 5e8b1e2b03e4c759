#pragma once
// The clips a video is cut into for feature extraction, as the reference's
// VideoDataset builds them (feature_extraction=True, test mode): sampled
// windows (sampling.h), u8/255 normalised with mean 0.45 and std 0.225 in
// float32, centre-cropped. Built window by window: only the decoded frames a
// later window still needs are kept, so memory does not grow with the video.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "slt/video/augment.h"
#include "slt/video/reader.h"
#include "slt/video/sampling.h"

namespace slt::video {

struct Clip {
  at::Tensor frames;  // [3, num_frames, crop, crop] float32
  int64_t padding = 0;
  ClipWindow window;
};

class ClipStream {
 public:
  // A video smaller than `crop_size` is first resized (bilinear) so that its
  // short side is `crop_size`; the reference takes a corner slice there and
  // then fails (docs/PORTING.md).
  // `augment`, when given, is asked once for the plan of this video, with the
  // height and width of its frames (after that resize).
  using PlanForFrames = std::function<AugmentPlan(int64_t height, int64_t width)>;
  ClipStream(VideoReader& reader, SamplingOptions options, int64_t crop_size = 224, PlanForFrames augment = {});
  // The next clip; false after the last (none at all for a video without frames).
  bool next(Clip& clip);
  int64_t frames_decoded() const { return decoded_; }

 private:
  bool decode_one();
  std::vector<uint8_t> fit_to_crop(std::vector<uint8_t> rgb) const;
  // One clip's frames [3, T, crop, crop] from its decoded frames.
  void fill_centred(const std::vector<const uint8_t*>& sources, float* out) const;
  void fill_augmented(const std::vector<const uint8_t*>& sources, float* out) const;

  VideoReader& reader_;
  SamplingOptions options_;
  int64_t crop_;
  int width_ = 0, height_ = 0;      // of the frames kept (after any resize)
  std::deque<std::vector<uint8_t>> frames_;  // decoded frames from index `first_kept_` on
  int64_t first_kept_ = 0, decoded_ = 0, next_window_ = 0;
  int64_t keep_from_ = 0;  // the next window's first frame: earlier ones are dropped
  bool end_of_video_ = false, done_ = false;
  std::vector<std::vector<uint8_t>> spare_;  // frame buffers to reuse
  std::optional<AugmentPlan> plan_;
};

}  // namespace slt::video
