// TensorBoard event files: TFRecord framing, masked CRC-32C, Event protobufs.
#include "slt/io/event_log.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "test_helpers.h"

namespace {

// What TensorBoard's reader does with a file: records of
// [u64 length][u32 masked crc(length)][payload][u32 masked crc(payload)].
std::vector<std::string> read_records(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    REQUIRE(at + 12 <= bytes.size());
    uint64_t length;
    uint32_t length_crc, payload_crc;
    std::memcpy(&length, bytes.data() + at, 8);
    std::memcpy(&length_crc, bytes.data() + at + 8, 4);
    CHECK(length_crc == slt::masked_crc32c(std::string_view(bytes.data() + at, 8)));
    REQUIRE(at + 12 + length + 4 <= bytes.size());
    std::string payload = bytes.substr(at + 12, length);
    std::memcpy(&payload_crc, bytes.data() + at + 12 + length, 4);
    CHECK(payload_crc == slt::masked_crc32c(payload));
    records.push_back(payload);
    at += 12 + length + 4;
  }
  return records;
}

// A minimal protobuf reader: field number -> raw value (varints as numbers,
// fixed64/fixed32 as their bytes, length-delimited as the bytes).
struct Field {
  int number, wire;
  uint64_t varint = 0;
  std::string bytes;
};
std::vector<Field> parse_message(const std::string& data) {
  std::vector<Field> fields;
  size_t at = 0;
  auto varint = [&]() {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      REQUIRE(at < data.size());
      uint8_t byte = static_cast<uint8_t>(data[at++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  };
  while (at < data.size()) {
    uint64_t key = varint();
    Field f{static_cast<int>(key >> 3), static_cast<int>(key & 7)};
    if (f.wire == 0) f.varint = varint();
    else if (f.wire == 1) f.bytes = data.substr(at, 8), at += 8;
    else if (f.wire == 5) f.bytes = data.substr(at, 4), at += 4;
    else if (f.wire == 2) {
      size_t n = varint();
      f.bytes = data.substr(at, n);
      at += n;
    } else FAIL("unexpected wire type " << f.wire);
    fields.push_back(f);
  }
  return fields;
}

// CRC-32C computed bit by bit from the polynomial (independent of the table version).
uint32_t bitwise_crc32c(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace

TEST_CASE("CRC-32C matches the RFC 3720 test vectors", "[tensorboard]") {
  CHECK(slt::crc32c(std::string(32, '\0')) == 0x8a9136aau);
  CHECK(slt::crc32c(std::string(32, '\xff')) == 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i)), descending.push_back(static_cast<char>(31 - i));
  CHECK(slt::crc32c(ascending) == 0x46dd794eu);
  CHECK(slt::crc32c(descending) == 0x113fdb5cu);
  CHECK(slt::crc32c("123456789") == 0xe3069283u);
  for (const std::string s : {"", "a", "brain.Event:2", "train/loss"}) CHECK(slt::crc32c(s) == bitwise_crc32c(s));
  // TFRecord masking: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
  uint32_t crc = 0xe3069283u;
  CHECK(slt::masked_crc32c("123456789") == static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST_CASE("event files hold a version record, scalars and session starts TensorBoard can read", "[tensorboard]") {
  slt_test::TempDir dir;
  std::filesystem::path path;
  {
    slt::EventLog log(dir.path() / "tb");
    path = log.path();
    log.add_scalar("train/loss", 2.5, 10);
    log.add_scalar("val/bleu4", 81.25, 20);
    log.session_start(15);
  }
  CHECK(path.filename().string().rfind("events.out.tfevents.", 0) == 0);
  auto records = read_records(path);
  REQUIRE(records.size() == 4);
  std::map<int, Field> first;
  for (auto& f : parse_message(records[0])) first[f.number] = f;
  CHECK(first.at(1).wire == 1);  // wall_time, a double
  double wall_time;
  std::memcpy(&wall_time, first.at(1).bytes.data(), 8);
  CHECK(wall_time > 1.7e9);
  CHECK(first.at(3).bytes == "brain.Event:2");

  auto scalar = [&](const std::string& record) {
    std::map<int, Field> event;
    for (auto& f : parse_message(record)) event[f.number] = f;
    auto value = parse_message(parse_message(event.at(5).bytes).at(0).bytes);  // Summary.value[0]
    float simple;
    REQUIRE(value.size() == 2);
    CHECK(value[1].number == 2);
    CHECK(value[1].wire == 5);
    std::memcpy(&simple, value[1].bytes.data(), 4);
    return std::make_tuple(value[0].bytes, static_cast<int64_t>(event.at(2).varint), simple);
  };
  CHECK(scalar(records[1]) == std::make_tuple(std::string("train/loss"), int64_t{10}, 2.5f));
  CHECK(scalar(records[2]) == std::make_tuple(std::string("val/bleu4"), int64_t{20}, 81.25f));
  std::map<int, Field> session;
  for (auto& f : parse_message(records[3])) session[f.number] = f;
  CHECK(session.at(2).varint == 15);
  auto status = parse_message(session.at(6).bytes);
  CHECK(status.at(0).number == 1);
  CHECK(status.at(0).varint == 1);  // SessionLog.START
}
