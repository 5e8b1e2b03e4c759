#pragma once
// The interface of `video_encoder` components (SignHiera): clips of video
// frames in, one feature row per kept time step out, as the reference's
// extract_features produces them for slt-extract.
#include <ATen/core/Tensor.h>

#include <string>

#include "slt/plugin/registry.h"

namespace torch::nn {
class Module;
}

namespace slt {

class VideoEncoder : public Component {
 public:
  virtual torch::nn::Module& module() = 0;
  // clips [B, 3, T, H, W] (normalised, cropped), padding [B] int64 padded
  // frames at the end of each clip -> [sum over clips of kept steps, feature_dim].
  virtual at::Tensor extract_features(const at::Tensor& clips, const at::Tensor& padding) = 0;
  virtual int64_t feature_dim() const = 0;
  virtual int64_t clip_frames() const = 0;  // T the encoder expects
  virtual int64_t crop_size() const = 0;    // H = W the encoder expects
  // Loads pretrained weights from a checkpoint file, with the component's own
  // rules for names, shapes and keys it expects to be absent.
  virtual void load_weights(const std::string& path) = 0;
};

}  // namespace slt
