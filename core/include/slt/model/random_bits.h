#pragma once
// Counter-based random bits: the same value on every thread, process and run
// for the same inputs, so that seeded work (dropout masks, video
// augmentations) can be split any way and still reproduce.
#include <cstdint>
#include <string_view>

namespace slt {

/// SplitMix64's finaliser: 64 well-mixed bits from a counter or a seed.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// FNV-1a over the bytes of text: a stable 64-bit hash of a name.
inline uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

}  // namespace slt
