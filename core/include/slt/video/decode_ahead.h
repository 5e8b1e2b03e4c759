#pragma once
// Decoding on a thread of its own, a bounded number of frames ahead of the
// caller, so that libavcodec keeps working while the caller turns the frames
// it has into a clip (otherwise the decoder idles through every clip).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "slt/video/reader.h"

namespace slt::video {

class DecodeAhead {
 public:
  // Starts decoding `reader` (which must outlive this object) up to `depth` frames ahead.
  DecodeAhead(VideoReader& reader, size_t depth);
  ~DecodeAhead();  // stops the decoding thread and waits for it
  DecodeAhead(const DecodeAhead&) = delete;
  DecodeAhead& operator=(const DecodeAhead&) = delete;

  // The next frame in decoder order; false after the last. A decoding error
  // is rethrown here, in the caller's thread, after the frames before it.
  bool next(RgbFrame& frame);
  // A frame buffer the caller is done with, reused for a later frame
  // (a fresh allocation per frame costs page faults that outweigh the copy).
  void recycle(std::vector<uint8_t> buffer);

 private:
  void run();

  VideoReader& reader_;
  const size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<RgbFrame> ready_;
  std::vector<std::vector<uint8_t>> spare_;
  bool finished_ = false, stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace slt::video
