#pragma once
// TensorBoard event files (tfevents), written without TensorFlow.
//
// A file is a sequence of TFRecords: uint64 length, uint32 masked CRC-32C of
// the length bytes, the payload, uint32 masked CRC-32C of the payload (all
// little-endian). Each payload is a serialised tensorflow.Event protobuf; slt
// writes only the fields TensorBoard's scalar dashboard reads: wall_time (1),
// step (2), file_version (3), summary (5: Value{tag (1), simple_value (2)}) and
// session_log (6: status START, which makes TensorBoard drop the points of an
// earlier attempt at steps >= the resumed step).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace slt {

// CRC-32C (Castagnoli), as TFRecord uses it.
uint32_t crc32c(std::string_view data);
// TFRecord's masking: rotate right by 15 and add 0xa282ead8.
uint32_t masked_crc32c(std::string_view data);

class EventLog {
 public:
  // Creates <dir>/events.out.tfevents.<seconds>.<host>.<pid> and writes the file_version record.
  explicit EventLog(const std::filesystem::path& dir);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  // Marks a (re)start at `step`: TensorBoard discards older points at steps >= `step`.
  void session_start(int64_t step);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace slt
