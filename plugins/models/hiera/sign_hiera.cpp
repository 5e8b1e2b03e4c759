#include "sign_hiera.h"

#include <numeric>

#include "slt/errors.h"
#include "slt/model/flash_attention.h"

namespace slt::hiera {

namespace {

int64_t product(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::vector<int64_t> int_list(const ConfigNode& section, const char* key) {
  std::vector<int64_t> out;
  const ConfigNode* node = section.at(key);
  if (!node || !node->is_list()) throw ConfigError(std::string("config key 'model.") + key + "': expected a list of ints");
  for (const auto& e : node->elements()) out.push_back(e.as_int(std::string("config key 'model.") + key + "'"));
  return out;
}

std::vector<int64_t> ratio(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(a[i] / b[i]);
  return out;
}

}  // namespace

HieraConfig HieraConfig::from_section(const ConfigNode& section) {
  HieraConfig c;
  c.input_size = int_list(section, "input_size");
  c.in_chans = section.require<int64_t>("in_chans");
  c.embed_dim = section.require<int64_t>("embed_dim");
  c.num_heads = section.require<int64_t>("num_heads");
  c.num_classes = section.require<int64_t>("num_classes");
  c.stages = int_list(section, "stages");
  c.q_pool = section.require<int64_t>("q_pool");
  c.q_stride = int_list(section, "q_stride");
  c.mask_unit_size = int_list(section, "mask_unit_size");
  c.mask_unit_attn.clear();
  for (const auto& e : section.at("mask_unit_attn")->elements()) c.mask_unit_attn.push_back(e.as_bool("config key 'model.mask_unit_attn'"));
  c.dim_mul = section.require<double>("dim_mul");
  c.head_mul = section.require<double>("head_mul");
  c.mlp_ratio = section.require<double>("mlp_ratio");
  c.patch_kernel = int_list(section, "patch_kernel");
  c.patch_stride = int_list(section, "patch_stride");
  c.patch_padding = int_list(section, "patch_padding");
  c.sep_pos_embed = section.require<bool>("sep_pos_embed");
  c.attention_block = section.require<int64_t>("attention_block");
  c.init = section.get_or<std::string>("init", "reference");
  const size_t dims = c.input_size.size();
  if (dims != 3 || c.q_stride.size() != dims || c.mask_unit_size.size() != dims || c.patch_kernel.size() != dims ||
      c.patch_stride.size() != dims || c.patch_padding.size() != dims)
    throw ConfigError("model.input_size, q_stride, mask_unit_size and patch_kernel/stride/padding must each have 3 "
                      "entries (T, H, W)");
  if (c.mask_unit_attn.size() != c.stages.size())
    throw ConfigError("model.mask_unit_attn needs one entry per stage (" + std::to_string(c.stages.size()) + ")");
  if (c.q_pool >= static_cast<int64_t>(c.stages.size()))
    throw ConfigError("model.q_pool must be smaller than the number of stages");
  return c;
}

// ---------------------------------------------------------------------------

Unroll::Unroll(std::vector<int64_t> size, std::vector<std::vector<int64_t>> schedule)
    : size_(std::move(size)), schedule_(std::move(schedule)) {}

torch::Tensor Unroll::operator()(torch::Tensor x) const {
  int64_t b = x.size(0);
  const int64_t c = x.size(2);
  std::vector<int64_t> current = size_;
  std::vector<int64_t> shape{b};
  shape.insert(shape.end(), current.begin(), current.end());
  shape.push_back(c);
  x = x.view(shape);
  for (const auto& strides : schedule_) {
    // [B, T, H, W, C] -> [B, T/s, s, H/s, s, W/s, s, C] -> strides to the front, folded into B.
    current = ratio(current, strides);
    std::vector<int64_t> split{b};
    for (size_t i = 0; i < strides.size(); ++i) {
      split.push_back(current[i]);
      split.push_back(strides[i]);
    }
    split.push_back(c);
    x = x.view(split);
    const int64_t rank = static_cast<int64_t>(split.size());
    std::vector<int64_t> order{0};
    for (int64_t i = 2; i < rank - 1; i += 2) order.push_back(i);
    for (int64_t i = 1; i < rank - 1; i += 2) order.push_back(i);
    order.push_back(rank - 1);
    x = x.permute(order).flatten(0, static_cast<int64_t>(strides.size()));
    b *= product(strides);
  }
  return x.reshape({-1, product(size_), c});
}

Reroll::Reroll(std::vector<int64_t> size, std::vector<std::vector<int64_t>> schedule,
               const std::vector<int64_t>& stage_ends, int64_t q_pool) {
  for (int64_t i = 0; i <= stage_ends.back(); ++i) {
    steps_.push_back({schedule, size});
    bool pools = std::find(stage_ends.begin(), stage_ends.begin() + std::min<int64_t>(q_pool, stage_ends.size()), i) !=
                 stage_ends.begin() + std::min<int64_t>(q_pool, stage_ends.size());
    if (pools) {
      if (!schedule.empty()) size = ratio(size, schedule.front());
      if (!schedule.empty()) schedule.erase(schedule.begin());
    }
  }
}

torch::Tensor Reroll::operator()(const torch::Tensor& input, int64_t block) const {
  const Step& step = steps_.at(static_cast<size_t>(block));
  torch::Tensor x = input;
  const int64_t b = x.size(0), c = x.size(2);
  int64_t n = x.size(1);
  const int64_t d = static_cast<int64_t>(step.size.size());
  std::vector<int64_t> mu(static_cast<size_t>(d), 1);
  for (const auto& strides : step.schedule) {
    // [B, S..., N/S, MU..., C] -> [B, N/S, (S_i, MU_i)..., C]
    std::vector<int64_t> shape{b};
    shape.insert(shape.end(), strides.begin(), strides.end());
    shape.push_back(n / product(strides));
    shape.insert(shape.end(), mu.begin(), mu.end());
    shape.push_back(c);
    x = x.view(shape);
    const int64_t rank = static_cast<int64_t>(shape.size());
    std::vector<int64_t> order{0, 1 + d};
    for (int64_t i = 0; i < d; ++i) {
      order.push_back(1 + i);
      order.push_back(1 + d + 1 + i);
    }
    order.push_back(rank - 1);
    x = x.permute(order);
    for (int64_t i = 0; i < d; ++i) mu[i] *= strides[i];
    std::vector<int64_t> merged{b, -1};
    merged.insert(merged.end(), mu.begin(), mu.end());
    merged.push_back(c);
    x = x.reshape(merged);
    n = x.size(1);
  }
  // Undo the mask-unit windowing: [B, #MU..., MU..., C] -> [B, T, H, W, C].
  std::vector<int64_t> units = ratio(step.size, mu);
  std::vector<int64_t> shape{b};
  shape.insert(shape.end(), units.begin(), units.end());
  shape.insert(shape.end(), mu.begin(), mu.end());
  shape.push_back(c);
  x = x.reshape(shape);
  std::vector<int64_t> order{0};
  for (int64_t i = 0; i < d; ++i) {
    order.push_back(1 + i);
    order.push_back(1 + d + i);
  }
  order.push_back(2 * d + 1);
  std::vector<int64_t> out{b};
  out.insert(out.end(), step.size.begin(), step.size.end());
  out.push_back(c);
  return x.permute(order).reshape(out);
}

// ---------------------------------------------------------------------------

MaskUnitAttentionImpl::MaskUnitAttentionImpl(int64_t dim, int64_t dim_out_, int64_t heads_, int64_t q_stride_,
                                             int64_t window_size_, bool use_mask_unit_attn_, int64_t query_block_)
    : dim_out(dim_out_),
      heads(heads_),
      q_stride(q_stride_),
      window_size(window_size_),
      head_dim(dim_out_ / heads_),
      use_mask_unit_attn(use_mask_unit_attn_),
      query_block(query_block_),
      scale(std::pow(static_cast<double>(dim_out_ / heads_), -0.5)) {
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim_out));
  proj = register_module("proj", torch::nn::Linear(dim_out, dim_out));
}

torch::Tensor MaskUnitAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask) {
  const int64_t b = x.size(0), n = x.size(1);
  const int64_t windows = use_mask_unit_attn ? n / (q_stride * window_size) : 1;
  auto qkv_ = qkv->forward(x).reshape({b, -1, windows, 3, heads, head_dim}).permute({3, 0, 4, 2, 1, 5});
  auto q = qkv_[0], k = qkv_[1], v = qkv_[2];
  if (q_stride > 1) q = std::get<0>(q.view({b, heads, windows, q_stride, -1, head_dim}).max(3));
  q = q * scale;
  if (use_mask_unit_attn) {  // windows of a few dozen tokens: the scores are small
    auto out = torch::matmul(torch::matmul(q, k.transpose(-1, -2)).softmax(-1), v);
    return proj->forward(out.transpose(1, 3).reshape({b, -1, dim_out}));
  }
  return proj->forward(global_attention(q, k, v, attn_mask).transpose(1, 2).reshape({b, -1, dim_out}));
}

// The reference adds a mask of 1 (kept key) or -inf (padded key) to the
// scores; softmax is the same when only the padded columns are set to -inf.
// No [N, N] score matrix may exist (12,544 tokens in hiera_base_128x224's
// third stage: 2.5 GB at once). slt::flash_attention (AVX-512) keeps each
// block of scores in cache and never writes them out; elsewhere, or with
// model.attention_block set, query rows go through in blocks, one (batch,
// head) at a time, with two plain GEMMs and an in-place softmax on one reused
// buffer.
torch::Tensor MaskUnitAttentionImpl::global_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                      const torch::Tensor& v, const torch::Tensor& attn_mask) const {
  const int64_t b = q.size(0), queries = q.size(3), keys = k.size(3);
  auto padded = attn_mask.reshape({b, keys}).eq(0);
  const bool any_padded = padded.any().item<bool>();
  auto q_heads = q.select(2, 0), k_heads = k.select(2, 0), v_heads = v.select(2, 0);
  if (query_block == 0 && slt::flash_attention_supported(q_heads, k_heads, v_heads))
    return slt::flash_attention(q_heads, k_heads, v_heads, any_padded ? padded : torch::Tensor());
  const int64_t block = std::min(queries, query_block > 0 ? query_block : std::max<int64_t>(16, kScoreBlock / keys));
  auto out = torch::empty({b, heads, queries, head_dim}, v.options());
  auto scores = torch::empty({block, keys}, q.options());
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      auto q_h = q[i][h][0];
      auto kt_h = k[i][h][0].t().contiguous();
      auto v_h = v[i][h][0].contiguous();
      auto out_h = out[i][h];
      for (int64_t start = 0; start < queries; start += block) {
        const int64_t rows = std::min(block, queries - start);
        auto s = scores.narrow(0, 0, rows);
        at::mm_out(s, q_h.narrow(0, start, rows), kt_h);
        if (any_padded) s.masked_fill_(padded[i], -std::numeric_limits<float>::infinity());
        at::softmax_out(s, s, -1);
        auto o = out_h.narrow(0, start, rows);
        at::mm_out(o, s, v_h);
      }
    }
  }
  return out;
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(torch::gelu(fc1->forward(x))); }

HieraBlockImpl::HieraBlockImpl(int64_t dim_, int64_t dim_out_, int64_t heads, double mlp_ratio, int64_t q_stride,
                               int64_t window_size, bool use_mask_unit_attn, int64_t query_block)
    : dim(dim_), dim_out(dim_out_) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn = register_module("attn",
                         MaskUnitAttention(dim, dim_out, heads, q_stride, window_size, use_mask_unit_attn, query_block));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim_out}).eps(1e-6)));
  mlp = register_module("mlp", Mlp(dim_out, static_cast<int64_t>(static_cast<double>(dim_out) * mlp_ratio)));
  if (dim != dim_out) proj = register_module("proj", torch::nn::Linear(dim, dim_out));
}

torch::Tensor HieraBlockImpl::forward(torch::Tensor x, const torch::Tensor& attn_mask) {
  auto x_norm = norm1->forward(x);
  if (dim != dim_out) {  // do_pool: max over the q-stride groups the unroll put first
    auto projected = proj->forward(x_norm);
    x = std::get<0>(projected.view({projected.size(0), attn->q_stride, -1, projected.size(-1)}).max(1));
  }
  x = x + attn->forward(x_norm, attn_mask);
  return x + mlp->forward(norm2->forward(x));
}

// ---------------------------------------------------------------------------

SignHieraImpl::SignHieraImpl(HieraConfig c) : config_(std::move(c)) {
  tokens_shape_ = ratio(config_.input_size, config_.patch_stride);
  mask_shape_ = ratio(tokens_shape_, config_.mask_unit_size);
  int64_t sum = 0;
  for (int64_t s : config_.stages) stage_ends_.push_back((sum += s) - 1);
  for (int64_t i = 0; i < config_.q_pool; ++i) q_pool_blocks_.push_back(stage_ends_[static_cast<size_t>(i)] + 1);
  std::vector<std::vector<int64_t>> schedule(stage_ends_.size() - 1, config_.q_stride);
  unroll_ = std::make_unique<Unroll>(tokens_shape_, schedule);
  reroll_ = std::make_unique<Reroll>(tokens_shape_, schedule, stage_ends_, config_.q_pool);

  int64_t embed_dim = config_.embed_dim, heads = config_.num_heads;
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>("PatchEmbed"));
  patch_proj = patch_embed->register_module(
      "proj", torch::nn::Conv3d(torch::nn::Conv3dOptions(config_.in_chans, embed_dim,
                                                         {config_.patch_kernel[0], config_.patch_kernel[1], config_.patch_kernel[2]})
                                    .stride({config_.patch_stride[0], config_.patch_stride[1], config_.patch_stride[2]})
                                    .padding({config_.patch_padding[0], config_.patch_padding[1], config_.patch_padding[2]})));
  if (config_.sep_pos_embed) {
    pos_embed_spatial = register_parameter("pos_embed_spatial", torch::zeros({1, tokens_shape_[1] * tokens_shape_[2], embed_dim}));
    pos_embed_temporal = register_parameter("pos_embed_temporal", torch::zeros({1, tokens_shape_[0], embed_dim}));
  } else {
    pos_embed = register_parameter("pos_embed", torch::zeros({1, product(tokens_shape_), embed_dim}));
  }
  blocks = register_module("blocks", torch::nn::ModuleList());
  const int64_t flat_q_stride = product(config_.q_stride);
  int64_t window = product(config_.mask_unit_size);
  size_t stage = 0;
  const int64_t depth = stage_ends_.back() + 1;
  for (int64_t i = 0; i < depth; ++i) {
    int64_t dim_out = embed_dim;
    // Mask-unit or global attention lags the stage by one block: global
    // attention starts after the pooling at the next stage's first block.
    bool use_mask_unit_attn = config_.mask_unit_attn[stage];
    const bool pooling = std::find(q_pool_blocks_.begin(), q_pool_blocks_.end(), i) != q_pool_blocks_.end();
    if (std::find(stage_ends_.begin(), stage_ends_.end(), i - 1) != stage_ends_.end()) {
      dim_out = static_cast<int64_t>(static_cast<double>(embed_dim) * config_.dim_mul);
      heads = static_cast<int64_t>(static_cast<double>(heads) * config_.head_mul);
      ++stage;
      if (pooling) window /= flat_q_stride;
    }
    blocks->push_back(HieraBlock(embed_dim, dim_out, heads, config_.mlp_ratio, pooling ? flat_q_stride : 1, window,
                                 use_mask_unit_attn, config_.attention_block));
    embed_dim = dim_out;
  }
  output_dim_ = embed_dim;
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim}).eps(1e-6)));
  auto head_module = register_module("head", std::make_shared<torch::nn::Module>("Head"));
  head = head_module->register_module("projection", torch::nn::Linear(embed_dim, config_.num_classes));
  initialise();
}

// Pretrained weights replace this; it decides what a randomly initialised
// encoder (demos, benchmarks) computes. `reference`: SignHiera.__init__
// (trunc_normal_(std=0.02) cuts at +-2 absolute, 100 standard deviations, so a
// plain normal draw is the same distribution); its blocks start close to the
// identity and the pooled features are nearly linear in the pixels. `fan_in`:
// every weight N(0, 1/fan_in), so each layer keeps its input's scale, and
// spatial position embeddings large enough to make features depend on where
// things are; the temporal ones stay small, or every time step would get its
// own random offset.
void SignHieraImpl::initialise() {
  torch::NoGradGuard no_grad;
  constexpr double kStd = 0.02, kBias = 0.02, kHeadScale = 0.001, kSpatialStd = 0.5;
  const bool fan_in = config_.init == "fan_in";
  auto weight_std = [&](const torch::Tensor& w) {
    return fan_in ? 1.0 / std::sqrt(static_cast<double>(w.numel() / w.size(0))) : kStd;
  };
  for (auto& p : {pos_embed_spatial, pos_embed_temporal, pos_embed})
    if (p.defined()) p.normal_(0, kStd);
  if (fan_in && pos_embed_spatial.defined()) pos_embed_spatial.normal_(0, kSpatialStd);
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::LinearImpl>()) {
      linear->weight.normal_(0, weight_std(linear->weight));
      if (linear->bias.defined()) linear->bias.fill_(kBias);
    } else if (auto* conv = m->as<torch::nn::Conv3dImpl>()) {
      conv->weight.normal_(0, weight_std(conv->weight));
    } else if (auto* layer_norm = m->as<torch::nn::LayerNormImpl>()) {
      layer_norm->weight.fill_(1.0);
      layer_norm->bias.fill_(kBias);
    }
  }
  head->weight.mul_(kHeadScale);
  head->bias.mul_(kHeadScale);
}

torch::Tensor SignHieraImpl::attention_mask(const torch::Tensor& padding) const {
  const int64_t units = product(mask_shape_);
  auto mask = torch::ones({padding.size(0), units});
  auto padded_steps = torch::floor_divide(padding.cpu(), config_.mask_unit_size[0] * config_.patch_stride[0]);
  for (int64_t i = 0; i < padding.size(0); ++i) {
    int64_t padded = padded_steps[i].item<int64_t>() * mask_shape_[1] * mask_shape_[2];
    if (padded > 0) mask[i].narrow(0, units - padded, padded).zero_();
  }
  return mask.to(padding.device());
}

torch::Tensor SignHieraImpl::run_blocks(const torch::Tensor& input, torch::Tensor attn_mask,
                                        std::vector<torch::Tensor>* intermediates) {
  const int64_t b = input.size(0);
  if (!attn_mask.defined()) attn_mask = torch::ones({b, product(mask_shape_)}, input.options());
  // Padded mask units are zeroed before the patch convolution (nearest-upsampled to the input).
  auto unit_mask = attn_mask.view({b, 1, mask_shape_[0], mask_shape_[1], mask_shape_[2]}).to(input.dtype());
  auto input_mask = torch::upsample_nearest3d(unit_mask, {input.size(2), input.size(3), input.size(4)}, c10::nullopt,
                                              c10::nullopt, c10::nullopt);
  auto x = patch_proj->forward(input * input_mask.to(torch::kBool));
  x = x.reshape({b, x.size(1), -1}).transpose(2, 1);
  if (config_.sep_pos_embed)
    x = x + (pos_embed_spatial.repeat({1, tokens_shape_[0], 1}) +
             torch::repeat_interleave(pos_embed_temporal, tokens_shape_[1] * tokens_shape_[2], 1));
  else
    x = x + pos_embed;
  x = (*unroll_)(x);

  // Token-level mask: repeated per mask unit along dims 0.. of [B, T, H, W] as
  // the reference repeats them (its dim index i starts at the batch axis).
  auto mask = attn_mask.view({b, mask_shape_[0], mask_shape_[1], mask_shape_[2]});
  for (size_t i = 0; i < config_.mask_unit_size.size(); ++i)
    mask = torch::repeat_interleave(mask, config_.mask_unit_size[i], static_cast<int64_t>(i));
  mask = (*unroll_)(mask.reshape({b, -1}).unsqueeze(-1));

  const int64_t flat_q_stride = product(config_.q_stride);
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<HieraBlock>()->forward(x, mask);
    const int64_t index = static_cast<int64_t>(i);
    if (std::find(q_pool_blocks_.begin(), q_pool_blocks_.end(), index) != q_pool_blocks_.end())
      mask = std::get<0>(mask.view({b, flat_q_stride, -1, 1}).max(1));
    if (intermediates && std::find(stage_ends_.begin(), stage_ends_.end(), index) != stage_ends_.end())
      intermediates->push_back((*reroll_)(x, index));
  }
  return x;
}

torch::Tensor SignHieraImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask,
                                     std::vector<torch::Tensor>* intermediates) {
  auto tokens = run_blocks(x, attn_mask, intermediates);
  return head->forward(norm->forward(tokens.mean(1)));
}

torch::Tensor SignHieraImpl::extract_features(const torch::Tensor& x, const torch::Tensor& padding) {
  std::vector<torch::Tensor> intermediates;
  run_blocks(x, padding.defined() ? attention_mask(padding) : torch::Tensor(), &intermediates);
  auto features = intermediates.back().mean({2, 3});  // [B, T', C]
  if (!padding.defined()) return features.reshape({-1, features.size(-1)});
  auto padded_steps = torch::floor_divide(padding.cpu(), config_.mask_unit_size[0] * config_.patch_stride[0]);
  std::vector<torch::Tensor> kept;
  for (int64_t i = 0; i < features.size(0); ++i)
    kept.push_back(features[i].narrow(0, 0, features.size(1) - padded_steps[i].item<int64_t>()));
  return torch::cat(kept, 0);
}

}  // namespace slt::hiera
