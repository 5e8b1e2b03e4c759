#pragma once
// Tensor files shared with the Python world.
//  - .pt / .pth / .bin: PyTorch's torch.save zip format. slt has its own
//    reader (zip + pickle protocol 2-5) because LibTorch 1.13's pickle_load
//    fails on common checkpoints (OrderedDict state dicts, some opcodes).
//    Objects LibTorch cannot represent (OmegaConf containers, argparse
//    Namespace, ...) load as None with a warning; every tensor still loads.
//  - .safetensors: header + raw little-endian data, also sharded
//    (*.safetensors.index.json).
#include <ATen/core/ivalue.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "slt/errors.h"

namespace slt {

// A tensor file that is missing, truncated, corrupt or of an unexpected shape.
class TensorFileError : public UserError {
 public:
  using UserError::UserError;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Reads a torch.save file. Dicts (and OrderedDicts) become GenericDicts in file
// order, lists become lists, tuples tuples. `warnings` receives one line per
// object that was skipped.
c10::IValue load_pt(const std::string& path, std::vector<std::string>* warnings = nullptr);

// A file holding one tensor (extracted features, `torch.save(tensor, path)`).
at::Tensor load_pt_tensor(const std::string& path);

// The same, in two steps: the shape first (a few small reads), then the data
// straight into memory the caller owns (no intermediate tensor). Throws
// TensorFileError naming the file for anything but one contiguous tensor.
class PtTensorFile {
 public:
  explicit PtTensorFile(const std::string& path);
  const std::vector<int64_t>& sizes() const;
  c10::ScalarType dtype() const;
  // Copies the first `rows` rows (along dimension 0), in the file's dtype.
  void read_rows(void* destination, int64_t rows) const;
  // The first `rows` rows of a 2-D tensor as float32 (converted when stored otherwise).
  void read_rows_as_float(float* destination, int64_t rows) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Every tensor in a loaded value, keyed by its dotted path ("model.encoder.weight");
// `prefix` is prepended. Throws TensorFileError when `value` holds no tensor.
NamedTensors flatten_tensors(const c10::IValue& value, const std::string& source,
                             const std::string& prefix = "");

// Serialises `value` (tensors, dicts with string or int keys, lists, tuples,
// strings, numbers, bools, None) as torch.save does, so Python's torch.load
// reads it back. Written atomically: temporary file, fsync, rename.
void save_pt(const std::string& path, const c10::IValue& value);
std::vector<char> serialize_pt(const c10::IValue& value);

// safetensors. `path` may be a .safetensors file or a *.safetensors.index.json.
NamedTensors load_safetensors(const std::string& path);
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {{"format", "pt"}});

// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
void write_file_atomically(const std::string& path, const char* data, size_t size);

}  // namespace slt
