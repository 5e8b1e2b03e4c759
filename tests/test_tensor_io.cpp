// .pt and safetensors interop with Python (Debian's python3-torch as the oracle)
// and with the reference fixtures.
#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "slt/io/tensor_io.h"
#include "test_helpers.h"

namespace fs = std::filesystem;
using slt_test::TempDir;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kInterop = std::string(SLT_TESTS_DIR) + "/python/tensor_interop.py";

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string tensor_bytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

c10::IValue legacy_load(const fs::path& path) {
  std::string bytes = read_bytes(path);
  return torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
}

const at::Tensor* find(const slt::NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace

TEST_CASE("files written by torch.save load with exact bytes, and Python reads slt's files back", "[tensor_io][python]") {
  TempDir dir;
  auto written = slt_test::run_command(kPython + " " + kInterop + " write " + dir.path().string());
  INFO(written.output);
  REQUIRE(written.exit_code == 0);

  std::vector<std::string> warnings;
  c10::IValue value = slt::load_pt((dir.path() / "reference.pt").string(), &warnings);
  REQUIRE(value.isGenericDict());
  auto dict = value.toGenericDict();
  CHECK(dict.at("epoch").toInt() == 7);
  CHECK(dict.at("name").toStringRef() == "slt");
  CHECK(dict.at("namespace").isNone());  // argparse.Namespace is skipped ...
  REQUIRE(warnings.size() == 1);         // ... with one warning naming it
  CHECK_THAT(warnings[0], Catch::Contains("argparse.Namespace"));
  auto nested = dict.at("nested").toList();
  auto first = nested.get(0).toTupleRef().elements();
  CHECK(first[0].toInt() == 1);
  CHECK(first[1].toDouble() == 2.5);
  CHECK(first[2].isNone());
  CHECK(first[3].toBool());
  auto optimizer = dict.at("optimizer").toGenericDict();
  CHECK(optimizer.at("state").toGenericDict().at(int64_t{0}).toGenericDict().at("step").toInt() == 3);

  auto manifest = nlohmann::json::parse(read_bytes(dir.path() / "manifest.json"));
  auto model = slt::flatten_tensors(dict.at("model"), "reference.pt");
  auto safe = slt::load_safetensors((dir.path() / "reference.safetensors").string());
  REQUIRE(model.size() == manifest.size());
  REQUIRE(safe.size() == manifest.size());
  for (size_t i = 0; i < manifest.size(); ++i) {
    std::string name = manifest[i]["name"];
    INFO(name);
    CHECK(model[i].first == name);  // file order kept
    std::string raw = read_bytes(dir.path() / (name + ".raw"));
    CHECK(model[i].second.sizes().vec() == manifest[i]["shape"].get<std::vector<int64_t>>());
    CHECK(tensor_bytes(model[i].second) == raw);
    CHECK(safe[i].first == name);
    CHECK(tensor_bytes(safe[i].second) == raw);
  }
  // A tensor saved twice shares its storage, as in Python (tied weights).
  at::Tensor tied = dict.at("tied").toTensor();
  CHECK(tied.data_ptr() == find(model, "f32")->data_ptr());

  at::Tensor single = slt::load_pt_tensor((dir.path() / "single.pt").string());
  CHECK(tensor_bytes(single) == read_bytes(dir.path() / "f32.raw"));

  // slt writes, Python reads.
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  c10::impl::GenericDict out_model(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, t] : model) out_model.insert(name, t);
  out.insert("model", out_model);
  out.insert("epoch", int64_t{7});
  out.insert("name", std::string("slt"));
  slt::save_pt((dir.path() / "slt_written.pt").string(), out);
  slt::save_safetensors((dir.path() / "slt_written.safetensors").string(), model);
  auto checked = slt_test::run_command(kPython + " " + kInterop + " check " + dir.path().string());
  INFO(checked.output);
  CHECK(checked.exit_code == 0);
  CHECK_THAT(checked.output, Catch::Contains("bit-identical"));
}

TEST_CASE("reference checkpoints (.pth with OrderedDict and cfg) load like their state_dict twins", "[tensor_io][fixtures]") {
  struct Case { const char* pth; const char* twin; };
  for (auto c : {Case{"hiera/tarres/tarres_tiny_checkpoint.pth", "hiera/tarres/tarres_tiny_state_dict.pt"},
                 Case{"hiera/signhiera/tiny_signhiera.pth", "hiera/signhiera/tiny_signhiera.state_dict.pt"},
                 Case{"hiera/pipeline/tiny16x224.pth", "hiera/pipeline/tiny16x224.state_dict.pt"}}) {
    INFO(c.pth);
    fs::path pth = fs::path(SLT_FIXTURES_DIR) / c.pth;
    c10::IValue checkpoint = slt::load_pt(pth.string());
    auto ours = slt::flatten_tensors(checkpoint.toGenericDict().at("model"), pth.string());
    auto twin = legacy_load(fs::path(SLT_FIXTURES_DIR) / c.twin).toGenericDict();
    REQUIRE(ours.size() == twin.size());
    for (const auto& [name, tensor] : ours) {
      INFO(name);
      REQUIRE(twin.contains(name));
      at::Tensor expected = twin.at(name).toTensor();
      CHECK(tensor.scalar_type() == expected.scalar_type());
      CHECK(tensor.sizes() == expected.sizes());
      if (name.find("_float_tensor") == std::string::npos)  // uninitialised memory (fixture README)
        CHECK(tensor.equal(expected));
    }
  }
}

TEST_CASE("Hugging Face weights: safetensors and pytorch_model.bin agree", "[tensor_io][fixtures]") {
  fs::path dir = fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_t5";
  if (!fs::exists(dir / "pytorch_model.bin")) dir = fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_t5_warm";
  auto safe = slt::load_safetensors((dir / "model.safetensors").string());
  REQUIRE(!safe.empty());
  if (fs::exists(dir / "pytorch_model.bin")) {
    auto bin = slt::flatten_tensors(slt::load_pt((dir / "pytorch_model.bin").string()), "bin");
    for (const auto& [name, t] : safe) {
      INFO(name);
      const at::Tensor* other = find(bin, name);
      REQUIRE(other);
      CHECK(t.equal(*other));
    }
  }
}

TEST_CASE("sharded safetensors load through their index", "[tensor_io]") {
  TempDir dir;
  slt::NamedTensors a = {{"a.weight", at::arange(6.0).reshape({2, 3})}};
  slt::NamedTensors b = {{"b.weight", at::ones({4}, at::kLong)}};
  slt::save_safetensors((dir.path() / "model-00001-of-00002.safetensors").string(), a);
  slt::save_safetensors((dir.path() / "model-00002-of-00002.safetensors").string(), b);
  std::ofstream(dir.path() / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}})";
  auto all = slt::load_safetensors((dir.path() / "model.safetensors.index.json").string());
  REQUIRE(all.size() == 2);
  CHECK(all[0].second.equal(a[0].second));
  CHECK(all[1].second.equal(b[0].second));
}

TEST_CASE("bad tensor files are clear errors naming the file", "[tensor_io]") {
  TempDir dir;
  auto missing = (dir.path() / "missing.pt").string();
  CHECK_THROWS_WITH(slt::load_pt(missing), Catch::Contains(missing));
  auto empty = dir.write("empty.pt", "");
  CHECK_THROWS_WITH(slt::load_pt(empty.string()), Catch::Contains("empty"));
  auto text = dir.write("text.pt", "hello world, not a tensor file");
  CHECK_THROWS_WITH(slt::load_pt(text.string()), Catch::Contains(text.string()) && Catch::Contains("not a torch.save"));

  // Truncations of a real file at several points.
  c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
  d.insert("w", at::arange(1000.0));
  auto good = dir.path() / "good.pt";
  slt::save_pt(good.string(), d);
  std::string bytes = read_bytes(good);
  for (size_t cut : {bytes.size() / 4, bytes.size() / 2, bytes.size() - 30}) {
    auto truncated = dir.write("truncated.pt", bytes.substr(0, cut));
    INFO("cut at " << cut);
    CHECK_THROWS_AS(slt::load_pt(truncated.string()), slt::TensorFileError);
  }
  // A file with no tensors is an error when tensors are expected.
  c10::impl::GenericDict no_tensors(c10::StringType::get(), c10::AnyType::get());
  no_tensors.insert("epoch", int64_t{1});
  auto notensor = dir.path() / "notensor.pt";
  slt::save_pt(notensor.string(), no_tensors);
  CHECK_THROWS_WITH(slt::flatten_tensors(slt::load_pt(notensor.string()), notensor.string()),
                    Catch::Contains("holds no tensors"));
  CHECK_THROWS_WITH(slt::load_pt_tensor(notensor.string()), Catch::Contains("expected a single tensor"));
  auto bad_safe = dir.write("bad.safetensors", std::string("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10));
  CHECK_THROWS_WITH(slt::load_safetensors(bad_safe.string()), Catch::Contains(bad_safe.string()));
}

TEST_CASE("safetensors headers are checked against the file before anything is read", "[tensor_io]") {
  TempDir dir;
  // 8-byte little-endian header size, the JSON header, then `data` bytes.
  auto file = [&](const std::string& name, const std::string& header, size_t data) {
    std::string bytes(8, '\0');
    uint64_t size = header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((size >> (8 * i)) & 0xff);
    return dir.write(name, bytes + header + std::string(data, '\0')).string();
  };
  const std::string good = file("good.safetensors", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8);
  REQUIRE(slt::load_safetensors(good).size() == 1);
  for (const auto& [name, header, message] : std::vector<std::tuple<std::string, std::string, std::string>>{
           // end - begin wraps around 2^64 to the tensor's size
           {"wrap", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551615, 7]}})",
            "do not fit its 8 bytes"},
           {"beyond", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", "do not fit its 16 bytes"},
           {"huge_shape", R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})",
            "shape larger than the file"},
           {"negative_shape", R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", "not a non-negative integer"},
           {"overlap", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
            "the data of tensors 'a' and 'b' overlap"},
           {"duplicate", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
            "tensor 'a' appears twice"},
           {"not_object", R"([1, 2])", "not a JSON object"},
           {"missing_keys", R"({"a": {"dtype": "F32"}})", "needs \"dtype\""}}) {
    INFO(name);
    const std::string path = file(name + ".safetensors", header, 8);
    CHECK_THROWS_WITH(slt::load_safetensors(path), Catch::Contains(path) && Catch::Contains(message));
  }
}

TEST_CASE("a folder or FIFO where a tensor file is expected is refused without blocking", "[tensor_io]") {
  TempDir dir;
  CHECK_THROWS_WITH(slt::load_pt(dir.path().string()), Catch::Contains("is a folder, not a regular file"));
  const std::string fifo = (dir.path() / "features.pt").string();
  REQUIRE(mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_THROWS_WITH(slt::load_pt(fifo), Catch::Contains(fifo + "' is a FIFO (named pipe), not a regular file"));
  CHECK_THROWS_WITH(slt::PtTensorFile(fifo), Catch::Contains("FIFO"));
  CHECK_THROWS_WITH(slt::load_safetensors(fifo), Catch::Contains("FIFO"));
}

TEST_CASE("zip directory and entry sizes are checked against the file before allocating", "[tensor_io]") {
  TempDir dir;
  auto good = dir.path() / "good.pt";
  slt::save_pt(good.string(), at::arange(10.0));
  std::string bytes = read_bytes(good);
  size_t eocd = bytes.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  // The end record's directory size (offset 12), then the first directory entry's size (offset 24).
  std::string huge_directory = bytes;
  huge_directory.replace(eocd + 12, 4, std::string("\xf0\xff\xff\xff", 4));
  auto a = dir.write("huge_directory.pt", huge_directory);
  CHECK_THROWS_WITH(slt::load_pt(a.string()), Catch::Contains("the zip directory claims 4294967280 bytes"));
  std::string huge_entry = bytes;
  size_t central = huge_entry.find(std::string("PK\x01\x02", 4));
  REQUIRE(central != std::string::npos);
  huge_entry.replace(central + 24, 4, std::string("\xf0\xff\xff\x7f", 4));
  auto b = dir.write("huge_entry.pt", huge_entry);
  CHECK_THROWS_WITH(slt::load_pt(b.string()), Catch::Contains("claims 2147483632 bytes"));
}
