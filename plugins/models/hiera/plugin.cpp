// The SignHiera video encoders: one component per reference factory
// (hiera_base_16x224, hiera_base_128x224), every hyper-parameter a key of the
// `model` section on top of the preset, so small and custom models need no code.
#include <spdlog/spdlog.h>

#include <cstring>
#include <map>
#include <sstream>

#include "sign_hiera.h"
#include "slt/io/tensor_io.h"
#include "slt/model/model.h"
#include "slt/model/video_encoder.h"
#include "slt/plugin/plugin.h"

namespace {

using slt::hiera::HieraConfig;
using slt::hiera::SignHiera;

// Keys a pretraining checkpoint may lack (the encoder's own head) or carry
// beyond the encoder (MAE decoder, fusion, mask token): loaded quietly.
const std::set<std::string> kExpectedMissing = {"norm.weight", "norm.bias", "head.projection.weight",
                                                "head.projection.bias"};
const char* const kExpectedExtra[] = {"decoder", "multi_scale_fusion", "encoder_norm", "mask_token"};
// Where SignHieraForClip keeps the encoder inside a CLIP state_dict.
constexpr char kClipTower[] = "visual.transformer.";

class SignHieraEncoder : public slt::VideoEncoder {
 public:
  SignHieraEncoder(const slt::ConfigNode& section, const slt::ComponentContext&)
      : net_(HieraConfig::from_section(section)) {
    net_->eval();
  }

  torch::nn::Module& module() override { return *net_; }
  at::Tensor extract_features(const at::Tensor& clips, const at::Tensor& padding) override {
    return net_->extract_features(clips, padding);
  }
  int64_t feature_dim() const override { return net_->output_dim(); }
  int64_t clip_frames() const override { return net_->config().input_size[0]; }
  int64_t crop_size() const override { return net_->config().input_size[1]; }

  // misc.load_model: "model" or "model_state"; feature_proj renamed; tensors
  // whose shape differs from the model's dropped with a warning. A CLIP
  // checkpoint ("clip", what from_clip=true reads; slt-extract checks the flag
  // against the file): its vision tower's SignHiera.
  void load_weights(const std::string& path) override {
    c10::IValue checkpoint = slt::load_pt(path);
    c10::IValue state = checkpoint;
    bool clip = false;
    if (checkpoint.isGenericDict()) {
      auto dict = checkpoint.toGenericDict();
      for (const char* key : {"model", "model_state", "clip"})
        if (dict.contains(c10::IValue(std::string(key)))) {
          state = dict.at(c10::IValue(std::string(key)));
          clip = std::string(key) == "clip";
          break;
        }
    }
    std::map<std::string, at::Tensor> shapes;
    for (const auto& p : net_->named_parameters()) shapes[p.key()] = p.value();
    slt::NamedTensors kept;
    for (auto [name, tensor] : slt::flatten_tensors(state, path)) {
      // A CLIP checkpoint: the vision tower's SignHiera (the text tower and projections are not ours).
      if (clip && name.rfind(kClipTower, 0) != 0) continue;
      if (clip) name.erase(0, std::strlen(kClipTower));
      bool extra = false;
      for (const char* prefix : kExpectedExtra) extra = extra || name.rfind(prefix, 0) == 0;
      if (extra) continue;
      auto it = shapes.find(name);
      if (it != shapes.end() && it->second.sizes() != tensor.sizes()) {
        std::ostringstream shapes_text;
        shapes_text << tensor.sizes() << " in the file, " << it->second.sizes() << " in the model";
        spdlog::warn("{}: dropping {} (shape {})", path, name, shapes_text.str());
        continue;
      }
      kept.emplace_back(name, tensor);
    }
    // The reference loads with strict=False and goes on with random weights;
    // a file with none of the encoder's weights is a wrong file, not a choice.
    if (slt::load_state_dict(*net_, kept, path, kExpectedMissing).loaded == 0)
      throw slt::UserError("'" + path + "': none of its tensors is a SignHiera weight" +
                           (clip ? std::string(" under ") + kClipTower : std::string()) +
                           " (is it a checkpoint of another model?)");
  }

 private:
  SignHiera net_;
};

slt::ConfigNode ints(std::initializer_list<int64_t> values) {
  slt::ConfigNode list = slt::ConfigNode::list();
  for (int64_t v : values) list.elements().emplace_back(v);
  return list;
}

slt::ConfigNode bools(std::initializer_list<bool> values) {
  slt::ConfigNode list = slt::ConfigNode::list();
  for (bool v : values) list.elements().emplace_back(v);
  return list;
}

// The reference factories differ only in input_size.
slt::ConfigSchema hiera_schema(int64_t clip_frames) {
  using V = slt::ValueType;
  slt::ConfigSchema s;
  s.add("input_size", V::List, ints({clip_frames, 224, 224}), "Clip size [T, H, W] in frames and pixels");
  s.add("in_chans", V::Int, 3, "Input channels");
  s.add("embed_dim", V::Int, 96, "Width of the first stage");
  s.add("num_heads", V::Int, 1, "Attention heads of the first stage");
  s.add("num_classes", V::Int, 400, "Classes of the (unused for features) head");
  s.add("stages", V::List, ints({2, 3, 16, 3}), "Blocks per stage");
  s.add("q_pool", V::Int, 3, "Stages that pool queries");
  s.add("q_stride", V::List, ints({1, 2, 2}), "Query pooling stride [T, H, W]");
  s.add("mask_unit_size", V::List, ints({1, 8, 8}), "Mask unit in tokens [T, H, W]");
  s.add("mask_unit_attn", V::List, bools({true, true, false, false}), "Per stage: mask-unit (true) or global attention");
  s.add("dim_mul", V::Float, 2.0, "Width multiplier per stage");
  s.add("head_mul", V::Float, 2.0, "Heads multiplier per stage");
  s.add("mlp_ratio", V::Float, 4.0, "MLP width / block width");
  s.add("patch_kernel", V::List, ints({3, 7, 7}), "Patch embedding kernel [T, H, W]");
  s.add("patch_stride", V::List, ints({2, 4, 4}), "Patch embedding stride [T, H, W]");
  s.add("patch_padding", V::List, ints({1, 3, 3}), "Patch embedding padding [T, H, W]");
  s.add("sep_pos_embed", V::Bool, true, "Separate spatial and temporal position embeddings");
  s.add("drop_path_rate", V::Float, 0.0, "Stochastic depth when training; feature extraction runs in eval mode without it").between(0, 1);
  s.add("attention_block", V::Int, 0,
        "Query rows per block of the row-blocked global attention (0: flash attention where the CPU has AVX-512 and "
        "the head size is a multiple of 16, otherwise row blocks of 6 MB of scores, at least 16 rows); slt addition");
  s.add("init", V::String, "reference",
        "Initialisation when no checkpoint is loaded: reference (SignHiera.__init__, weights N(0, 0.02): random "
        "features nearly linear in the pixels) or fan_in (weights N(0, 1/fan_in), spatial position embeddings "
        "N(0, 0.5): non-linear, position-aware random features, as the demo uses); slt addition",
        {"reference", "fan_in"});
  return s;
}

void register_components(slt::Registrar& registrar) {
  registrar.add<SignHieraEncoder>(slt::kinds::kVideoEncoder, "hiera_base_128x224",
                                  "SignHiera-base on 128-frame 224x224 clips (the reference's feature extractor)",
                                  hiera_schema(128));
  registrar.add<SignHieraEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224",
                                  "SignHiera-base on 16-frame 224x224 clips", hiera_schema(16));
}

}  // namespace

SLT_PLUGIN("hiera", "0.1.0", register_components)
