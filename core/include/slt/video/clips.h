#pragma once
// The clips a video is cut into for feature extraction, as the reference's
// VideoDataset builds them (feature_extraction=True, test mode): sampled
// windows (sampling.h), u8/255 normalised with mean 0.45 and std 0.225 in
// float32, centre-cropped. Built window by window: only the decoded frames a
// later window still needs are kept, so memory does not grow with the video.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <vector>

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
  ClipStream(VideoReader& reader, SamplingOptions options, int64_t crop_size = 224);
  // The next clip; false after the last (none at all for a video without frames).
  bool next(Clip& clip);
  int64_t frames_decoded() const { return decoded_; }

 private:
  bool decode_one();
  std::vector<uint8_t> fit_to_crop(std::vector<uint8_t> rgb) const;

  VideoReader& reader_;
  SamplingOptions options_;
  int64_t crop_;
  int width_ = 0, height_ = 0;      // of the frames kept (after any resize)
  std::deque<std::vector<uint8_t>> frames_;  // decoded frames from index `first_kept_` on
  int64_t first_kept_ = 0, decoded_ = 0, next_window_ = 0;
  int64_t keep_from_ = 0;  // the next window's first frame: earlier ones are dropped
  bool end_of_video_ = false, done_ = false;
  std::vector<std::vector<uint8_t>> spare_;  // frame buffers to reuse
};

}  // namespace slt::video
