#include "slt/video/clips.h"

extern "C" {
#include <libswscale/swscale.h>
}

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <memory>

namespace slt::video {

namespace {

constexpr float kMean = 0.45f, kStd = 0.225f;  // the reference's normalisation

// One row of interleaved RGB bytes into three float rows, each value
// (v / 255 - 0.45) / 0.225 in float32 as the reference computes it (the same
// IEEE operations in the same order, so the results are identical). Written as
// plain arithmetic over a de-interleaved row so that the compiler vectorises
// it; an AVX2 clone (picked at load time where the CPU has it) is 2.7x faster
// than the baseline SSE2 build.
__attribute__((target_clones("avx2", "default"))) void normalise_row(const uint8_t* rgb, float* r, float* g, float* b, int64_t width) {
  for (int64_t x = 0; x < width; ++x) {
    r[x] = static_cast<float>(rgb[3 * x]);
    g[x] = static_cast<float>(rgb[3 * x + 1]);
    b[x] = static_cast<float>(rgb[3 * x + 2]);
  }
  for (float* plane : {r, g, b})
    for (int64_t x = 0; x < width; ++x) plane[x] = (plane[x] / 255.0f - kMean) / kStd;
}

// The same for one row of one channel.
__attribute__((target_clones("avx2", "default"))) void normalise_plane_row(const uint8_t* v, float* out, int64_t width) {
  for (int64_t x = 0; x < width; ++x) out[x] = (static_cast<float>(v[x]) / 255.0f - kMean) / kStd;
}

}  // namespace

ClipStream::ClipStream(VideoReader& reader, SamplingOptions options, int64_t crop_size, PlanForFrames augment)
    : reader_(reader), options_(options), crop_(crop_size) {
  const VideoInfo& info = reader_.info();
  // The windows are measured in source frames at this rate; without a sane
  // one they are meaningless (the reference divides by zero).
  constexpr double kMinFps = 0.01, kMaxFps = 10000;
  if (!(info.fps >= kMinFps && info.fps <= kMaxFps))
    throw VideoError("the video states a frame rate of " + std::to_string(info.fps) + " (average_rate " +
                     info.average_rate + "); clips need one between 0.01 and 10000 frames/s");
  width_ = info.width;
  height_ = info.height;
  if (std::min(width_, height_) < crop_) {
    double scale = static_cast<double>(crop_) / std::min(width_, height_);
    width_ = std::max<int>(static_cast<int>(crop_), static_cast<int>(std::lround(info.width * scale)));
    height_ = std::max<int>(static_cast<int>(crop_), static_cast<int>(std::lround(info.height * scale)));
  }
  if (augment) plan_ = augment(height_, width_);
}

void ClipStream::fill_centred(const std::vector<const uint8_t*>& sources, float* out) const {
  const int64_t t_count = static_cast<int64_t>(sources.size()), plane = t_count * crop_ * crop_;
  const int64_t y0 = (height_ - crop_ + 1) / 2, x0 = (width_ - crop_ + 1) / 2;  // ceil((H - crop) / 2)
  auto fill = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const uint8_t* frame = sources[static_cast<size_t>(t)];
      for (int64_t y = 0; y < crop_; ++y) {
        const uint8_t* row = frame + ((y0 + y) * width_ + x0) * 3;
        float* r = out + (t * crop_ + y) * crop_;
        normalise_row(row, r, r + plane, r + 2 * plane, crop_);
      }
    }
  };
  // Split over ATen's inter-op threads, which sleep when idle, rather than
  // OpenMP's, which spin for milliseconds after each loop on the cores that
  // libavcodec's frame threads decode the next frames on (measured: 0.61-0.65
  // of the bare decode rate with OpenMP, 0.66-0.69 with the spinning off).
  const int64_t parts = std::min<int64_t>(t_count, at::get_num_threads());
  std::vector<std::future<void>> helpers;
  for (int64_t part = 1; part < parts; ++part) {
    auto task = std::make_shared<std::packaged_task<void()>>(
        [&, part] { fill(t_count * part / parts, t_count * (part + 1) / parts); });
    helpers.push_back(task->get_future());
    at::launch([task] { (*task)(); });
  }
  fill(0, t_count / parts);
  for (auto& helper : helpers) helper.get();
}

void ClipStream::fill_augmented(const std::vector<const uint8_t*>& sources, float* out) const {
  // A few frames at a time, so that the operations' float temporaries (the
  // warps sample a float copy of the frames) stay near 50 MB however large
  // the frames are. The steps see the frames as the reference's do: [N, H, W, 3]
  // permuted to [N, 3, H, W].
  constexpr int64_t kPixelsPerPass = int64_t{1} << 22;
  const int64_t t_count = static_cast<int64_t>(sources.size()), plane = t_count * crop_ * crop_;
  const int64_t frame_bytes = static_cast<int64_t>(height_) * width_ * 3;
  const int64_t frames_per_pass = std::max<int64_t>(1, kPixelsPerPass / (static_cast<int64_t>(height_) * width_));
  for (int64_t t0 = 0; t0 < t_count; t0 += frames_per_pass) {
    const int64_t n = std::min(frames_per_pass, t_count - t0);
    at::Tensor frames = at::empty({n, height_, width_, 3}, at::kByte);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(sources[static_cast<size_t>(t0 + i)], frame_bytes, frames.data_ptr<uint8_t>() + i * frame_bytes);
    at::Tensor augmented = apply_rand_augment(frames.permute({0, 3, 1, 2}), plan_->steps).contiguous();
    const uint8_t* a = augmented.data_ptr<uint8_t>();
    std::vector<uint8_t> row(static_cast<size_t>(crop_));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < crop_; ++y) {
          const uint8_t* source = a + ((i * 3 + c) * height_ + plan_->crop_y + y) * width_ + plan_->crop_x;
          if (plan_->flip)
            std::reverse_copy(source, source + crop_, row.begin());
          else
            std::copy_n(source, crop_, row.begin());
          normalise_plane_row(row.data(), out + c * plane + ((t0 + i) * crop_ + y) * crop_, crop_);
        }
  }
}

std::vector<uint8_t> ClipStream::fit_to_crop(std::vector<uint8_t> rgb) const {
  const VideoInfo& info = reader_.info();
  if (width_ == info.width && height_ == info.height) return rgb;
  SwsContext* scaler = sws_getContext(info.width, info.height, AV_PIX_FMT_RGB24, width_, height_, AV_PIX_FMT_RGB24,
                                      SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (!scaler) throw VideoError("cannot resize frames of " + std::to_string(info.width) + "x" + std::to_string(info.height));
  // Rows padded to 64 bytes on both sides: libswscale reads and writes whole aligned blocks.
  auto padded_stride = [](int width) { return (3 * width + 63) / 64 * 64; };
  const int in_stride = padded_stride(info.width), out_stride = padded_stride(width_);
  std::vector<uint8_t> source(static_cast<size_t>(in_stride) * info.height + 64), target(static_cast<size_t>(out_stride) * height_ + 64);
  for (int y = 0; y < info.height; ++y)
    std::copy_n(rgb.data() + static_cast<size_t>(y) * info.width * 3, info.width * 3, source.data() + static_cast<size_t>(y) * in_stride);
  const uint8_t* source_planes[4] = {source.data(), nullptr, nullptr, nullptr};
  int source_strides[4] = {in_stride, 0, 0, 0};
  uint8_t* target_planes[4] = {target.data(), nullptr, nullptr, nullptr};
  int target_strides[4] = {out_stride, 0, 0, 0};
  sws_scale(scaler, source_planes, source_strides, 0, info.height, target_planes, target_strides);
  sws_freeContext(scaler);
  std::vector<uint8_t> resized(static_cast<size_t>(width_) * height_ * 3);
  for (int y = 0; y < height_; ++y)
    std::copy_n(target.data() + static_cast<size_t>(y) * out_stride, width_ * 3, resized.data() + static_cast<size_t>(y) * width_ * 3);
  return resized;
}

bool ClipStream::decode_one() {
  // Frame buffers are recycled: a fresh allocation per frame costs page faults
  // (each is a fresh mapping) that outweigh the copy into it.
  RgbFrame frame;
  if (!spare_.empty()) {
    frame.rgb = std::move(spare_.back());
    spare_.pop_back();
  }
  if (!reader_.next(frame)) {
    end_of_video_ = true;
    return false;
  }
  if (frame.rgb.size() != static_cast<size_t>(reader_.info().width) * reader_.info().height * 3)
    throw VideoError("the frame size changes within the video (frame " + std::to_string(decoded_) + ")");
  if (decoded_++ < keep_from_) {  // before the next window: never needed
    first_kept_ = decoded_;
    spare_.push_back(std::move(frame.rgb));
    return true;
  }
  frames_.push_back(fit_to_crop(std::move(frame.rgb)));
  return true;
}

bool ClipStream::next(Clip& clip) {
  if (done_) return false;
  // Decode until the window cannot change any more, or the video ends (then
  // the last frame is known and the window is computed with its clamp).
  ClipWindow window = window_at(next_window_, reader_.info().fps, options_, std::nullopt);
  while (!end_of_video_ && !window_is_final(window, decoded_)) decode_one();
  if (end_of_video_) {
    if (next_window_ * options_.stride() * options_.sampling_rate >= decoded_) {  // the stop rule: start past the end
      done_ = true;
      return false;
    }
    window = window_at(next_window_, reader_.info().fps, options_, decoded_ - 1);
  }
  // The last window is the first that reaches past the last frame.
  if (end_of_video_ && window.end_idx >= static_cast<double>(decoded_)) done_ = true;

  const int64_t t_count = options_.num_frames;
  // A clip tensor the caller no longer shares is refilled: a fresh 77 MB
  // allocation per 128-frame clip costs more in page faults than the filling.
  const std::vector<int64_t> shape{3, t_count, crop_, crop_};
  if (!clip.frames.defined() || clip.frames.use_count() != 1 || clip.frames.sizes() != at::IntArrayRef(shape))
    clip.frames = at::empty(shape, at::kFloat);
  float* out = clip.frames.data_ptr<float>();
  std::vector<const uint8_t*> sources(static_cast<size_t>(t_count));
  for (int64_t t = 0; t < t_count; ++t)
    sources[static_cast<size_t>(t)] = frames_.at(static_cast<size_t>(window.indices[t] - first_kept_)).data();
  if (plan_)
    fill_augmented(sources, out);
  else
    fill_centred(sources, out);
  clip.padding = window.padding;
  clip.window = std::move(window);
  // Frames before the next window's start are never needed again.
  ++next_window_;
  keep_from_ = next_window_ * options_.stride() * options_.sampling_rate;
  while (first_kept_ < keep_from_ && !frames_.empty()) {
    spare_.push_back(std::move(frames_.front()));
    frames_.pop_front();
    ++first_kept_;
  }
  if (frames_.empty()) first_kept_ = decoded_;
  return true;
}

}  // namespace slt::video
