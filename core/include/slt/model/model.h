#pragma once
// The interface of `model` components: padded features in, loss and logits
// out; and, for encoder-decoder models, the incremental decoding steps that
// generation (generation.h) drives. Parameter names (module().named_parameters())
// follow the reference Python modules' state_dict() names so checkpoints move
// between slt and PyTorch.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "slt/plugin/registry.h"
#include "slt/io/tensor_io.h"

namespace torch::nn {
class Module;
}

namespace slt {

class SearchStrategy;
struct SearchOptions;

struct Batch {
  at::Tensor features;        // [B, T, feature_dim] float, zero-padded on the right
  at::Tensor attention_mask;  // [B, T], 1 = frame, 0 = padding
  at::Tensor labels;          // [B, L] int64 target ids, padded with the tokenizer's pad id
};

struct ModelOutput {
  at::Tensor loss;                   // scalar, when labels were given
  at::Tensor logits;                 // [B, L, vocab]
  at::Tensor encoder_hidden_states;  // [B, T, d_model], when the model has an encoder
};

class TranslationModel : public Component {
 public:
  // The torch module holding the parameters (for the optimizer, devices, checkpoints).
  virtual torch::nn::Module& module() = 0;
  virtual ModelOutput forward(const Batch& batch) = 0;
};

// Per-sequence decoder state (key/value caches), owned by the model's decode_step.
class DecoderCache {
 public:
  virtual ~DecoderCache() = default;
  // Keeps rows `indices` (beam search pruning / reordering), in that order.
  // A row only ever continues a row of the same input: what it attends to in
  // the encoder output does not change.
  virtual void reorder(const at::Tensor& indices) = 0;
};

struct SpecialTokens {
  int64_t decoder_start = 0;
  int64_t eos = 1;
  int64_t pad = 0;
  int64_t forced_bos = -1;  // -1: none
  int64_t forced_eos = -1;
  int64_t vocab_size = 0;
};

class Seq2SeqModel : public TranslationModel {
 public:
  // [B, T, d_model] encoder states for padded features.
  virtual at::Tensor encode(const at::Tensor& features, const at::Tensor& attention_mask) = 0;
  // Logits [N, vocab] of the token after `tokens` [N] (each row's last token),
  // extending `cache` (created on the first call, when it is null). The
  // encoder output has N rows, or, when shares_encoder_rows(), B rows with N =
  // k·B: consecutive groups of k token rows (the beams of one input) share an
  // encoder row.
  virtual at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden,
                                 const at::Tensor& encoder_mask, std::unique_ptr<DecoderCache>& cache) = 0;
  // Whether decode_step takes one encoder row per group of beams, so that a
  // search need not copy the encoder output (and the cross-attention keys and
  // values made from it) once per beam.
  virtual bool shares_encoder_rows() const { return false; }
  virtual SpecialTokens special_tokens() const = 0;
  // How this model translates (generation.h). The default is Hugging Face's
  // generate() with its default settings; a model whose reference decodes
  // otherwise (fairseq) or reads defaults from its folder overrides this.
  virtual std::unique_ptr<SearchStrategy> make_search(const SearchOptions& options) const;
};

// Copies `tensors` into the module's parameters and buffers by name. Names in
// `expected_missing` may be absent quietly (e.g. a fresh feature projection);
// other missing or unexpected names are logged; `aliases` maps a file name to
// the module's (old checkpoints). A shape mismatch throws naming the tensor.
struct LoadReport {
  std::vector<std::string> missing, unexpected;
  size_t loaded = 0;  // tensors copied into the module
};
LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, const std::string& source,
                           const std::set<std::string>& expected_missing = {},
                           const std::vector<std::pair<std::string, std::string>>& aliases = {});

// A Hugging Face model folder: `name_or_path` itself when it is a folder,
// otherwise a hub id resolved in the local cache ($HF_HOME/hub or
// ~/.cache/huggingface/hub/models--ORG--NAME/snapshots/*). Nothing is
// downloaded; a miss is a UserError saying where slt looked.
std::filesystem::path resolve_model_folder(const std::string& name_or_path);

// The model weights of a checkpoint file: its "model" entry when it has one
// (the reference's best_model.pth / checkpoint-N.pth layout), else the whole
// file as a state dict.
NamedTensors load_checkpoint_weights(const std::string& path);

// load_state_dict of a checkpoint file's weights (load_checkpoint_weights),
// refusing a file none of whose tensors is a weight of `module` (a checkpoint
// of another model would otherwise leave it as initialised). `model_kind`
// names the model in that message.
LoadReport load_checkpoint_into(torch::nn::Module& module, const std::string& path, const std::string& model_kind);

// The weights of a Hugging Face folder: model.safetensors(.index.json) or
// pytorch_model.bin(.index.json).
NamedTensors load_hf_weights(const std::filesystem::path& folder);

}  // namespace slt
