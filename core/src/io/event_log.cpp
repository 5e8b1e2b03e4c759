#include "slt/io/event_log.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "slt/errors.h"

namespace slt {

namespace {

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reversed Castagnoli polynomial
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protocol buffer wire format, just what Event needs.
void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

template <typename T>
void put_fixed(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64 are little-endian, as the format wants
  out.append(bytes, sizeof(T));
}

void put_bytes_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string event_header(int64_t step) {
  std::string event;
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  put_varint(event, 1 << 3 | 1);  // wall_time: double
  put_fixed(event, now);
  put_varint(event, 2 << 3 | 0);  // step: int64
  put_varint(event, static_cast<uint64_t>(step));
  return event;
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  const auto& table = crc32c_table();
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : data) crc = table[(crc ^ byte) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

uint32_t masked_crc32c(std::string_view data) {
  uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

EventLog::EventLog(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = dir / ("events.out.tfevents." + std::to_string(seconds) + "." + host + "." + std::to_string(::getpid()));
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw Error("cannot create TensorBoard event file '" + path_.string() + "': " + std::strerror(errno));
  std::string event = event_header(0);
  put_bytes_field(event, 3, "brain.Event:2");
  write_record(event);
  flush();
}

EventLog::~EventLog() {
  if (file_) std::fclose(file_);
}

void EventLog::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string summary_value;
  put_bytes_field(summary_value, 1, tag);
  put_varint(summary_value, 2 << 3 | 5);  // simple_value: float
  put_fixed(summary_value, static_cast<float>(value));
  std::string summary;
  put_bytes_field(summary, 1, summary_value);
  std::string event = event_header(step);
  put_bytes_field(event, 5, summary);
  write_record(event);
}

void EventLog::session_start(int64_t step) {
  std::string session_log;
  put_varint(session_log, 1 << 3 | 0);  // status
  put_varint(session_log, 1);           // START
  std::string event = event_header(step);
  put_bytes_field(event, 6, session_log);
  write_record(event);
}

void EventLog::write_record(const std::string& payload) {
  std::string header;
  put_fixed(header, static_cast<uint64_t>(payload.size()));
  std::string record = header;
  put_fixed(record, masked_crc32c(header));
  record += payload;
  put_fixed(record, masked_crc32c(payload));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw Error("cannot write TensorBoard event file '" + path_.string() + "'");
}

void EventLog::flush() { std::fflush(file_); }

}  // namespace slt
