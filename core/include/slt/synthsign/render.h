#pragma once
// SynthSign's signer: draws a signed sentence frame by frame. Each gloss is a
// sign made of a hand shape, a palm orientation, a location on or near the
// body and a movement (some with both hands), like the parameters that tell
// real signs apart; the colours carry no meaning. Between signs the hands move
// from one sign's end to the next one's start.
#include <cstdint>
#include <random>
#include <vector>

namespace slt::synthsign {

/// How one video looks: everything that varies between videos of the same sentence.
struct VideoStyle {
  double speed = 1.0;                  // signing speed (0.8 - 1.2)
  double offset_x = 0, offset_y = 0;   // signer position, pixels from the centre
  double scale = 1.0;                  // signer size
  double lighting = 1.0;               // brightness multiplier
  double noise = 0.0;                  // sensor noise amplitude (grey levels)
  uint8_t background_top[3] = {60, 60, 70}, background_bottom[3] = {30, 30, 35};
  uint8_t skin[3] = {200, 160, 130}, shirt[3] = {40, 60, 120};
  uint64_t noise_seed = 0;
};

VideoStyle sample_style(std::mt19937_64& rng);

/// A sentence's glosses as an animation at `fps`, drawn at `size` x `size`.
class SignedSentence {
 public:
  SignedSentence(const std::vector<int>& glosses, const VideoStyle& style, int fps, int size);
  int64_t frames() const { return frames_; }
  /// Draws frame `index` into `rgb` (size * size * 3 bytes, RGB24).
  void render(int64_t index, uint8_t* rgb) const;

  struct Hand {
    double x = 0, y = 0, angle = 0, scale = 1;  // body units; angle 0: fingers up
    int shape = 0;
  };
  struct Pose {
    Hand dominant, other;
  };

 private:
  Pose pose_at(double seconds) const;

  struct Segment {
    double start = 0, length = 0;
    int gloss = -1;  // -1: a transition or the rest position
  };
  std::vector<int> glosses_;
  std::vector<Segment> segments_;
  VideoStyle style_;
  int fps_, size_;
  int64_t frames_ = 0;
  std::vector<uint8_t> backdrop_;  // background and body, drawn once
  std::vector<int8_t> noise_;
};

}  // namespace slt::synthsign
