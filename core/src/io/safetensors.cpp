// The safetensors half of slt/io/tensor_io.h: Hugging Face's weights format,
// a JSON header (names, dtypes, shapes, byte offsets) before raw data. Every
// number in the header is checked against the file before anything is read.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "slt/io/files.h"
#include "slt/io/tensor_io.h"

namespace slt {

namespace {

const std::map<std::string, c10::ScalarType>& safetensors_dtypes() {
  static const std::map<std::string, c10::ScalarType> types = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return types;
}

std::string safetensors_dtype_name(c10::ScalarType type) {
  for (const auto& [name, t] : safetensors_dtypes())
    if (t == type) return name;
  throw Error(std::string("safetensors cannot store dtype ") + c10::toString(type));
}

NamedTensors load_safetensors_file(const std::string& path) {
  require_regular_file(path, "safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TensorFileError("cannot open '" + path + "': " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t header_size = 0;
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(&header_size), 8))
    throw TensorFileError("'" + path + "' is too short to be a safetensors file");
  if (header_size > file_size - 8 || header_size > (100u << 20))
    throw TensorFileError("'" + path + "' has a header of " + std::to_string(header_size) +
                          " bytes, beyond the file size (truncated or not safetensors)");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  nlohmann::ordered_json json;
  std::set<std::string> names;
  std::string duplicate;
  try {
    // The header is a JSON object of tensors; a name given twice is refused (JSON keeps the last silently).
    json = nlohmann::ordered_json::parse(header, [&](int depth, nlohmann::ordered_json::parse_event_t event,
                                                    nlohmann::ordered_json& parsed) {
      if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key && parsed.is_string() &&
          !names.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const std::exception& e) {
    throw TensorFileError("'" + path + "' has an invalid safetensors header: " + e.what());
  }
  if (!json.is_object()) throw TensorFileError("'" + path + "': the safetensors header is not a JSON object");
  if (!duplicate.empty()) throw TensorFileError("'" + path + "': tensor '" + duplicate + "' appears twice in the header");
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;
  NamedTensors out;
  std::vector<std::pair<uint64_t, std::string>> ranges;  // (begin, name), for the overlap check
  std::map<std::string, uint64_t> ends;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& entry = it.value();
    auto bad = [&](const std::string& why) { return TensorFileError("'" + path + "': tensor '" + it.key() + "' " + why); };
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() || !entry.contains("shape") ||
        !entry["shape"].is_array() || !entry.contains("data_offsets") || !entry["data_offsets"].is_array())
      throw bad("needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)");
    std::string dtype_name = entry["dtype"].get<std::string>();
    auto dtype = safetensors_dtypes().find(dtype_name);
    if (dtype == safetensors_dtypes().end()) throw bad("has unsupported dtype " + dtype_name);
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw bad("has a shape entry that is not a non-negative integer");
      const uint64_t size = d.get<uint64_t>();
      if (__builtin_mul_overflow(numel, size, &numel) || size > uint64_t{INT64_MAX})
        throw bad("has a shape larger than the file");
      shape.push_back(static_cast<int64_t>(size));
    }
    const auto& offsets = entry["data_offsets"];
    if (offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("needs two non-negative data_offsets");
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(dtype->second)), &nbytes))
      throw bad("has a shape larger than the file");
    if (begin > end || end > data_size || end - begin != nbytes)
      throw bad("has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] that do not fit its " +
                std::to_string(nbytes) + " bytes within the " + std::to_string(data_size) +
                " data bytes of the file (truncated or corrupt)");
    ranges.emplace_back(begin, it.key());
    ends[it.key()] = end;
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype->second));
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(nbytes));
    if (!in) throw bad("cannot be read");
    out.emplace_back(it.key(), t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ends[ranges[i - 1].second])
      throw TensorFileError("'" + path + "': the data of tensors '" + ranges[i - 1].second + "' and '" +
                            ranges[i].second + "' overlap");
  return out;
}

}  // namespace

NamedTensors load_safetensors(const std::string& path) {
  const std::string index_suffix = ".index.json";
  if (path.size() > index_suffix.size() && path.compare(path.size() - index_suffix.size(), index_suffix.size(), index_suffix) == 0) {
    std::ifstream in = open_regular_file(path, "safetensors index");
    nlohmann::ordered_json index;
    try {
      index = nlohmann::ordered_json::parse(in);
    } catch (const std::exception& e) {
      throw TensorFileError("'" + path + "' is not valid JSON: " + e.what());
    }
    std::string dir = path.substr(0, path.rfind('/') + 1);
    std::vector<std::string> shards;
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw TensorFileError("'" + path + "' has no \"weight_map\" object");
    for (const auto& [name, shard] : index.at("weight_map").items()) {
      std::string file = shard.get<std::string>();
      if (std::find(shards.begin(), shards.end(), file) == shards.end()) shards.push_back(file);
    }
    NamedTensors all;
    for (const auto& shard : shards) {
      auto part = load_safetensors_file(dir + shard);
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
  return load_safetensors_file(path);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) {
    nlohmann::ordered_json meta;
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  std::vector<at::Tensor> contiguous;
  for (const auto& [name, tensor] : tensors) {
    at::Tensor t = tensor.contiguous().cpu();
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::string bytes(8, '\0');
  uint64_t header_size = text.size();
  std::memcpy(bytes.data(), &header_size, 8);
  bytes += text;
  for (const auto& t : contiguous) bytes.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace slt
