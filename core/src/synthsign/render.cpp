#include "slt/synthsign/render.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "slt/synthsign/grammar.h"

namespace slt::synthsign {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRestSeconds = 0.24;
constexpr double kTransitionSeconds = 0.16;
// A close-up of the upper body, as sign-language datasets frame their signers:
// one body unit is this many pixels of a 224-pixel frame.
constexpr double kFraming = 1.45;

// Places a sign can be made, in body units from the chest (x: towards the
// dominant side, y: down).
constexpr std::array<std::array<double, 2>, 8> kLocations{{
    {4, -72},   // forehead
    {2, -46},   // chin
    {24, -60},  // cheek
    {0, -4},    // chest
    {-28, -20}, // other shoulder
    {6, 36},    // stomach
    {52, -4},   // side space
    {48, -56},  // high side
}};
constexpr std::array<double, 6> kOrientationsDeg{0, 45, 90, 135, -45, -90};
constexpr int kHandShapes = 8, kMotions = 8;
constexpr std::array<double, 2> kRestDominant{30, 78}, kRestOther{-30, 78};

enum class BothHands { No, Mirror, Base };

// What a gloss looks like. Every gloss has its own (hand shape, orientation)
// pair; locations and movements are spread so that neighbours differ in more.
struct SignForm {
  int shape, location, motion;
  double orientation;  // radians
  BothHands both;
  double seconds;      // at speed 1
};

SignForm sign_form(int gloss) {
  SignForm f;
  f.shape = gloss % kHandShapes;
  f.orientation = kOrientationsDeg[static_cast<size_t>((gloss / kHandShapes) % 6)] * kPi / 180;
  f.location = (gloss * 3 + gloss / kHandShapes) % 8;
  f.motion = (gloss * 5 + gloss / 6) % kMotions;
  f.both = gloss % 3 == 0 ? BothHands::Mirror : gloss % 7 == 1 ? BothHands::Base : BothHands::No;
  // 0.375 - 0.583 s: within 0.3 - 0.7 s at every speed in [0.8, 1.2].
  f.seconds = 0.375 + 0.208 * static_cast<double>((gloss * 7) % 10) / 9.0;
  return f;
}

// The dominant hand `p` (0..1) of the way through a sign.
SignedSentence::Hand sign_hand(const SignForm& f, double p) {
  SignedSentence::Hand h;
  h.x = kLocations[static_cast<size_t>(f.location)][0];
  h.y = kLocations[static_cast<size_t>(f.location)][1];
  h.angle = f.orientation;
  h.shape = f.shape;
  const double wave = std::sin(2 * kPi * p);
  switch (f.motion) {
    case 0: break;                                                         // hold
    case 1: h.y -= 9 * std::abs(wave); break;                              // two taps
    case 2: h.x += 13 * wave; break;                                       // side to side
    case 3: h.x += 12 * std::cos(2 * kPi * p) - 12; h.y += 12 * wave; break;  // circle
    case 4: h.x += -15 + 30 * p; h.y -= 12 * std::sin(kPi * p); break;     // arc
    case 5: h.scale = 1 + 0.4 * std::sin(kPi * p); break;                  // towards the viewer
    case 6: h.angle += 0.8 * wave; break;                                  // twist
    default: h.y += -18 + 36 * p; break;                                   // straight down
  }
  return h;
}

SignedSentence::Hand rest(const std::array<double, 2>& at) {
  SignedSentence::Hand h;
  h.x = at[0];
  h.y = at[1];
  h.shape = 0;
  h.angle = 0;
  return h;
}

SignedSentence::Pose sign_pose(int gloss, double p) {
  const SignForm f = sign_form(gloss);
  SignedSentence::Pose pose;
  pose.dominant = sign_hand(f, p);
  switch (f.both) {
    case BothHands::No: pose.other = rest(kRestOther); break;
    case BothHands::Mirror:
      pose.other = pose.dominant;
      pose.other.x = -pose.dominant.x;
      pose.other.angle = -pose.dominant.angle;
      break;
    case BothHands::Base:
      pose.other = rest({-8, 14});
      pose.other.shape = 1;
      pose.other.angle = kPi / 2;
      break;
  }
  return pose;
}

double ease(double t) { return t * t * (3 - 2 * t); }

SignedSentence::Hand blend(const SignedSentence::Hand& a, const SignedSentence::Hand& b, double t) {
  SignedSentence::Hand h;
  const double e = ease(t);
  h.x = a.x + (b.x - a.x) * e;
  h.y = a.y + (b.y - a.y) * e;
  h.angle = a.angle + (b.angle - a.angle) * e;
  h.scale = a.scale + (b.scale - a.scale) * e;
  h.shape = t < 0.5 ? a.shape : b.shape;
  return h;
}

// ---- drawing ---------------------------------------------------------------

struct Canvas {
  uint8_t* rgb;
  int size;

  void put(int x, int y, const std::array<double, 3>& c) {
    uint8_t* p = rgb + (static_cast<size_t>(y) * static_cast<size_t>(size) + static_cast<size_t>(x)) * 3;
    for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::clamp(c[static_cast<size_t>(k)], 0.0, 255.0));
  }

  template <typename Inside>
  void fill(double x0, double y0, double x1, double y1, const std::array<double, 3>& colour, Inside inside) {
    const int xa = std::max(0, static_cast<int>(std::floor(x0))), xb = std::min(size - 1, static_cast<int>(std::ceil(x1)));
    const int ya = std::max(0, static_cast<int>(std::floor(y0))), yb = std::min(size - 1, static_cast<int>(std::ceil(y1)));
    for (int y = ya; y <= yb; ++y)
      for (int x = xa; x <= xb; ++x)
        if (inside(x + 0.5, y + 0.5)) put(x, y, colour);
  }

  void ellipse(double cx, double cy, double rx, double ry, double angle, const std::array<double, 3>& colour) {
    const double c = std::cos(angle), s = std::sin(angle), r = std::max(rx, ry);
    fill(cx - r, cy - r, cx + r, cy + r, colour, [&](double x, double y) {
      const double u = ((x - cx) * c + (y - cy) * s) / rx, v = (-(x - cx) * s + (y - cy) * c) / ry;
      return u * u + v * v <= 1;
    });
  }

  // A thick segment with round ends (fingers, arms).
  void capsule(double ax, double ay, double bx, double by, double radius, const std::array<double, 3>& colour) {
    const double dx = bx - ax, dy = by - ay, length2 = std::max(dx * dx + dy * dy, 1e-9);
    fill(std::min(ax, bx) - radius, std::min(ay, by) - radius, std::max(ax, bx) + radius, std::max(ay, by) + radius,
         colour, [&](double x, double y) {
           const double t = std::clamp(((x - ax) * dx + (y - ay) * dy) / length2, 0.0, 1.0);
           const double ex = x - (ax + t * dx), ey = y - (ay + t * dy);
           return ex * ex + ey * ey <= radius * radius;
         });
  }
};

struct Finger {
  double degrees, length;
};

// Extended fingers per hand shape, relative to the hand's direction.
const std::vector<Finger>& fingers_of(int shape) {
  static const std::array<std::vector<Finger>, kHandShapes> shapes{{
      {},                                                        // fist
      {{-50, 0.6}, {-15, 1.0}, {-5, 1.05}, {5, 1.0}, {15, 0.85}},  // flat hand
      {{0, 1.1}},                                                // index
      {{-14, 1.05}, {14, 1.05}},                                 // V
      {{-75, 0.8}, {55, 0.8}},                                   // Y
      {{-85, 0.85}, {0, 1.1}},                                   // L
      {{-60, 0.75}, {-25, 1.0}, {0, 1.05}, {25, 1.0}, {50, 0.8}}, // spread
      {{-12, 1.05}, {30, 0.85}},                                 // horns
  }};
  return shapes[static_cast<size_t>(shape)];
}

std::array<double, 3> colour_of(const uint8_t c[3], double factor = 1.0) {
  return {c[0] * factor, c[1] * factor, c[2] * factor};
}

}  // namespace

VideoStyle sample_style(std::mt19937_64& rng) {
  auto uniform = [&rng](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  VideoStyle s;
  s.speed = uniform(0.8, 1.2);
  // A studio, as sign-language datasets are filmed: the same signer in the
  // same clothes in front of a neutral backdrop, framed a little differently
  // each time, under slightly different light. Wider variation (any colour
  // anywhere, other signers) makes a randomly initialised encoder's features
  // describe the look of each video more than its signs (docs/DEMO.md).
  s.offset_x = uniform(-3, 3);
  s.offset_y = uniform(-3, 3);
  s.scale = uniform(0.97, 1.03);
  s.lighting = uniform(0.95, 1.05);
  s.noise = uniform(0.5, 2);
  const double grey = uniform(100, 120), fade = uniform(0.72, 0.78);
  for (int k = 0; k < 3; ++k) {
    const double tinted = grey + uniform(-4, 4);
    s.background_top[k] = static_cast<uint8_t>(tinted);
    s.background_bottom[k] = static_cast<uint8_t>(tinted * fade);
  }
  s.noise_seed = rng();
  return s;
}

SignedSentence::SignedSentence(const std::vector<int>& glosses, const VideoStyle& style, int fps, int size)
    : glosses_(glosses), style_(style), fps_(fps), size_(size) {
  double t = 0;
  auto add = [&](double seconds, int gloss) {
    segments_.push_back({t, seconds / style_.speed, gloss});
    t += seconds / style_.speed;
  };
  add(kRestSeconds, -1);
  for (int g : glosses_) {
    add(kTransitionSeconds, -1);
    add(sign_form(g).seconds, g);
  }
  add(kTransitionSeconds, -1);
  add(kRestSeconds, -1);
  frames_ = static_cast<int64_t>(std::ceil(t * fps_));

  // The backdrop: a lit gradient with the signer's head and torso.
  backdrop_.resize(static_cast<size_t>(size_) * static_cast<size_t>(size_) * 3);
  Canvas canvas{backdrop_.data(), size_};
  for (int y = 0; y < size_; ++y) {
    const double w = static_cast<double>(y) / (size_ - 1);
    std::array<double, 3> c;
    for (size_t k = 0; k < 3; ++k) c[k] = style_.background_top[k] * (1 - w) + style_.background_bottom[k] * w;
    for (int x = 0; x < size_; ++x) canvas.put(x, y, c);
  }
  const double unit = kFraming * style_.scale * size_ / 224.0;
  const double cx = size_ / 2.0 + style_.offset_x, cy = size_ * 0.6 + style_.offset_y;
  canvas.ellipse(cx, cy + 48 * unit, 50 * unit, 64 * unit, 0, colour_of(style_.shirt));
  canvas.capsule(cx, cy - 50 * unit, cx, cy - 30 * unit, 8 * unit, colour_of(style_.skin, 0.92));  // neck
  canvas.ellipse(cx, cy - 64 * unit, 19 * unit, 24 * unit, 0, colour_of(style_.skin));
  canvas.ellipse(cx - 7 * unit, cy - 68 * unit, 2.5 * unit, 2 * unit, 0, {30, 30, 30});  // eyes
  canvas.ellipse(cx + 7 * unit, cy - 68 * unit, 2.5 * unit, 2 * unit, 0, {30, 30, 30});

  std::mt19937_64 rng(style_.noise_seed);
  noise_.resize(1 << 16);
  std::normal_distribution<double> gauss(0.0, 1.0);
  for (auto& n : noise_) n = static_cast<int8_t>(std::clamp(gauss(rng) * style_.noise, -127.0, 127.0));
}

SignedSentence::Pose SignedSentence::pose_at(double seconds) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), seconds,
                             [](double t, const Segment& s) { return t < s.start; });
  const size_t i = it == segments_.begin() ? 0 : static_cast<size_t>(it - segments_.begin()) - 1;
  const Segment& s = segments_[i];
  const double p = std::clamp((seconds - s.start) / s.length, 0.0, 1.0);
  if (s.gloss >= 0) return sign_pose(s.gloss, p);
  // Rest, or a transition between the neighbouring signs (or rest).
  auto end_of = [&](size_t j) {
    if (segments_[j].gloss >= 0) return sign_pose(segments_[j].gloss, 1.0);
    return Pose{rest(kRestDominant), rest(kRestOther)};
  };
  auto start_of = [&](size_t j) {
    if (j < segments_.size() && segments_[j].gloss >= 0) return sign_pose(segments_[j].gloss, 0.0);
    return Pose{rest(kRestDominant), rest(kRestOther)};
  };
  if (i == 0 || i + 1 == segments_.size()) return Pose{rest(kRestDominant), rest(kRestOther)};
  const Pose from = end_of(i - 1), to = start_of(i + 1);
  return Pose{blend(from.dominant, to.dominant, p), blend(from.other, to.other, p)};
}

void SignedSentence::render(int64_t index, uint8_t* rgb) const {
  std::copy(backdrop_.begin(), backdrop_.end(), rgb);
  Canvas canvas{rgb, size_};
  const double unit = kFraming * style_.scale * size_ / 224.0;
  const double cx = size_ / 2.0 + style_.offset_x, cy = size_ * 0.6 + style_.offset_y;
  const Pose pose = pose_at((static_cast<double>(index) + 0.5) / fps_);
  const auto sleeve = colour_of(style_.shirt, 0.85), hand = colour_of(style_.skin, 0.88),
             outline = colour_of(style_.skin, 0.45);

  auto draw_hand = [&](const Hand& h, double shoulder_x) {
    const double x = cx + h.x * unit, y = cy + h.y * unit, s = 1.3 * h.scale * unit;  // hands drawn large
    canvas.capsule(cx + shoulder_x * unit, cy - 22 * unit, x, y + 6 * s, 7 * unit, sleeve);  // arm
    const double dx = std::sin(h.angle), dy = -std::cos(h.angle);
    for (int pass = 0; pass < 2; ++pass) {  // outline, then fill
      const double grow = pass == 0 ? 1.3 : 0;
      const auto& colour = pass == 0 ? outline : hand;
      canvas.ellipse(x, y, 9 * s + grow, 10.5 * s + grow, h.angle, colour);
      for (const Finger& f : fingers_of(h.shape)) {
        const double a = h.angle + f.degrees * kPi / 180;
        const double fx = std::sin(a), fy = -std::cos(a);
        canvas.capsule(x + fx * 6 * s, y + fy * 6 * s, x + fx * (6 + 15 * f.length) * s, y + fy * (6 + 15 * f.length) * s,
                       2.6 * s + grow, colour);
      }
    }
    if (h.shape == 0)  // a fist shows its knuckles: which way it faces
      canvas.capsule(x + dx * 7 * s - dy * 5 * s, y + dy * 7 * s + dx * 5 * s, x + dx * 7 * s + dy * 5 * s,
                     y + dy * 7 * s - dx * 5 * s, 1.4 * s, outline);
  };
  draw_hand(pose.other, -34);
  draw_hand(pose.dominant, 34);

  // Lighting and sensor noise over the whole frame.
  const size_t n = static_cast<size_t>(size_) * static_cast<size_t>(size_) * 3;
  const size_t offset = static_cast<size_t>(index * 7919) % noise_.size();
  for (size_t k = 0; k < n; ++k) {
    const double v = rgb[k] * style_.lighting + noise_[(k + offset) % noise_.size()];
    rgb[k] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
  }
}

}  // namespace slt::synthsign
