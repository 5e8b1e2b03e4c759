#include "slt/video/decode_ahead.h"

#include <utility>

namespace slt::video {

DecodeAhead::DecodeAhead(VideoReader& reader, size_t depth)
    : reader_(reader), depth_(depth > 0 ? depth : 1), thread_([this] { run(); }) {}

DecodeAhead::~DecodeAhead() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void DecodeAhead::run() {
  while (true) {
    RgbFrame frame;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || ready_.size() < depth_; });
      if (stopping_) return;
      if (!spare_.empty()) {
        frame.rgb = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    bool decoded = false;
    std::exception_ptr error;
    try {
      decoded = reader_.next(frame);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (decoded) ready_.push_back(std::move(frame));
      else finished_ = true;
      error_ = error;
    }
    changed_.notify_all();
    if (!decoded) return;
  }
}

bool DecodeAhead::next(RgbFrame& frame) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
  if (ready_.empty()) {
    if (error_) std::rethrow_exception(error_);
    return false;
  }
  frame = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  changed_.notify_all();
  return true;
}

void DecodeAhead::recycle(std::vector<uint8_t> buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  spare_.push_back(std::move(buffer));  // bounded by the frames the caller ever held at once
}

}  // namespace slt::video
