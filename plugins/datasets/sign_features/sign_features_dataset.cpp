// Feature datasets with the reference SignFeaturesDataset semantics, and the
// named datasets built on it (how2sign, youtube_asl).
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include "slt/io/files.h"
#include "slt/data/dataset.h"
#include "slt/plugin/plugin.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"
#include "slt/text/unicode.h"

namespace fs = std::filesystem;

namespace {

constexpr int kRetries = 10;  // as the reference

class SignFeaturesDataset : public slt::FeatureDataset {
 public:
  // `data`: the run's data section (min/max_source_positions, num_epochs_extracted).
  SignFeaturesDataset(const slt::ConfigNode& data, const slt::ComponentContext& context, std::string name,
                      std::vector<std::string> splits)
      : root_(context.data_path),
        split_(context.split),
        min_length_(data.require<int64_t>("min_source_positions")),
        max_length_(data.require<int64_t>("max_source_positions")),
        epochs_extracted_(std::max<int64_t>(1, data.require<int64_t>("num_epochs_extracted"))),
        rng_(context.seed) {
    if (std::find(splits.begin(), splits.end(), split_) == splits.end())
      throw slt::UserError(name + " has no '" + split_ + "' split (it has: " + join(splits) + "); " +
                           (split_ == "train" ? "" : "use another dataset for data.val_data_dir"));
    const ConfigLimit debug_limit = context.debug ? ConfigLimit{true, 100} : ConfigLimit{};
    fs::path manifest = root_ / "manifests" / (split_ + "_features.tsv");
    std::ifstream in = slt::open_regular_file(manifest, "manifest");
    std::string line;
    size_t line_number = 0, invalid = 0, truncated = 0;
    while (std::getline(in, line)) {
      if (debug_limit.enabled && line_number >= debug_limit.count) break;
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto fields = slt::split(slt::trim(line), '\t');  // Python's line.strip().split("\t")
      int64_t length = 0;
      std::string why;
      if (fields.size() != 3) why = "expected video_name<TAB>length<TAB>label, found " + std::to_string(fields.size()) + " fields";
      else if (!parse_length(fields[1], length)) why = "length '" + fields[1] + "' is not a frame count from 0 to 10^8";
      else if (!safe_name(fields[0])) why = "video name '" + fields[0] + "' is empty, has a '/' or is '.' or '..'";
      else if (!slt::unicode::is_valid_utf8(fields[2])) why = "the label is not valid UTF-8";
      if (!why.empty()) {
        if (++invalid <= kReportedLines) spdlog::warn("{}:{}: skipped: {}", manifest.string(), line_number, why);
        continue;
      }
      if (max_length_ > 0 && length > max_length_) ++truncated;
      if (split_ == "train" && length < min_length_) {
        ++invalid;
        continue;
      }
      std::string name_field = fields[0];
      std::string stem = fs::path(name_field).replace_extension().string();
      entries_.push_back({fs::path(name_field.substr(0, 5)) / (stem + ".pt"), fs::path(stem).filename().string(),
                          fields[2], length});
    }
    spdlog::info("{} {}: {} items from {} ({} invalid or too short skipped, {} longer than {} will be truncated)",
                 name, split_, entries_.size(), manifest.string(), invalid, truncated, max_length_);
    if (entries_.empty())
      throw slt::UserError("the '" + split_ + "' split of " + root_.string() + " is empty: no usable line in " +
                           manifest.string());
  }

  size_t size() const override { return entries_.size(); }
  const std::string& label(size_t index) const override { return entries_.at(index).label; }
  int64_t length(size_t index) const override { return entries_.at(index).length; }
  const std::string& split() const override { return split_; }
  void set_epoch(int64_t epoch) override { epoch_ = epoch % epochs_extracted_; }

  slt::FeatureSource open(size_t index) const override {
    std::string last_error;
    for (int attempt = 0; attempt < kRetries; ++attempt) {
      fs::path file = feature_path(index);
      try {
        auto tensor = std::make_shared<slt::PtTensorFile>(file.string());
        if (tensor->sizes().size() != 2)
          throw slt::TensorFileError("'" + file.string() + "' holds a tensor of shape " + shape(tensor->sizes()) +
                                     ", expected [frames, feature_dim]");
        int64_t frames = tensor->sizes()[0];
        if (frames == 0 || tensor->sizes()[1] == 0)
          throw slt::TensorFileError("'" + file.string() + "' holds no features (shape " + shape(tensor->sizes()) + ")");
        if (max_length_ > 0 && frames > max_length_) frames = max_length_;
        return {static_cast<int64_t>(index), entries_[index].feature_id, entries_[index].label, frames,
                tensor->sizes()[1], file.string(),
                [tensor, frames](float* destination) { tensor->read_rows_as_float(destination, frames); }};
      } catch (const std::exception& e) {
        last_error = e.what();
        if (split_ == "test")
          throw slt::UserError("cannot read test features " + file.string() + ": " + e.what());
        spdlog::warn("cannot read features {} (try {} of {}): {}", file.string(), attempt + 1, kRetries, e.what());
        std::lock_guard<std::mutex> lock(rng_mutex_);
        index = std::uniform_int_distribution<size_t>(0, entries_.size() - 1)(rng_);
        spdlog::warn("using item {} instead", index);
      }
    }
    throw slt::UserError("failed to read features after " + std::to_string(kRetries) + " tries in " + root_.string() +
                         "; last error: " + last_error);
  }

 private:
  struct Entry {
    fs::path relative;  // <first 5 chars>/<stem>.pt
    std::string feature_id;
    std::string label;
    int64_t length;
  };
  struct ConfigLimit {
    bool enabled = false;
    size_t count = 0;
  };

  fs::path feature_path(size_t index) const {
    return root_ / "features" / std::to_string(epoch_) / entries_[index].relative;
  }

  static constexpr size_t kReportedLines = 5;  // skipped lines named one by one; the rest only counted

  // The reference reads int(float(length)): "12" and "12.0" are both 12 frames.
  static bool parse_length(const std::string& text, int64_t& value) {
    try {
      size_t used = 0;
      const double number = std::stod(text, &used);
      if (used != text.size() || !(number >= 0 && number <= 1e8)) return false;
      value = static_cast<int64_t>(number);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  // Feature files live at <root>/features/<epoch>/<first 5 chars>/<name>.pt:
  // a name must not lead anywhere else.
  static bool safe_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
  }

  static std::string shape(const std::vector<int64_t>& sizes) {
    std::string s = "[";
    for (size_t d = 0; d < sizes.size(); ++d) s += (d ? ", " : "") + std::to_string(sizes[d]);
    return s + "]";
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  }

  fs::path root_;
  std::string split_;
  int64_t min_length_, max_length_, epochs_extracted_;
  int64_t epoch_ = 0;
  std::vector<Entry> entries_;
  mutable std::mutex rng_mutex_;
  mutable std::mt19937_64 rng_;
};

template <const char* Name, bool TrainOnly>
struct NamedDataset : SignFeaturesDataset {
  NamedDataset(const slt::ConfigNode& data, const slt::ComponentContext& context)
      : SignFeaturesDataset(data, context, Name,
                            TrainOnly ? std::vector<std::string>{"train"}
                                      : std::vector<std::string>{"train", "val", "test"}) {}
};

constexpr char kSignFeatures[] = "sign_features";
constexpr char kHow2Sign[] = "how2sign";
constexpr char kYouTubeAsl[] = "youtube_asl";

// The keys of the run's `data` section these datasets read (their defaults are the run schema's).
slt::ConfigSchema data_schema() {
  slt::ConfigSchema s;
  s.add_required("min_source_positions", slt::ValueType::Int, "Training items shorter than this are skipped");
  s.add_required("max_source_positions", slt::ValueType::Int, "Items are truncated to this many frames");
  s.add_required("num_epochs_extracted", slt::ValueType::Int, "Feature epochs on disk: features/<epoch % N>/");
  return s;
}

// Any folder is read as plain extracted features; a folder whose name says
// How2Sign or YouTube-ASL gets that dataset's split rules.
slt::ComponentClaim folder_named(const char* word) {
  return [word](const slt::ClaimQuery& q) {
    std::string name = q.path.lexically_normal().filename().string();
    if (name.empty()) name = q.path.lexically_normal().parent_path().filename().string();
    return slt::ascii_lower(name).find(word) != std::string::npos ? 10 : 0;
  };
}

void register_components(slt::Registrar& registrar) {
  registrar.add<NamedDataset<kSignFeatures, false>>(slt::kinds::kDataset, kSignFeatures,
                                                    "Extracted features + manifests (train/val/test)", data_schema(),
                                                    [](const slt::ClaimQuery&) { return 1; });
  registrar.add<NamedDataset<kHow2Sign, false>>(slt::kinds::kDataset, kHow2Sign, "How2Sign features (train/val/test)",
                                                data_schema(), folder_named("how2sign"));
  registrar.add<NamedDataset<kYouTubeAsl, true>>(slt::kinds::kDataset, kYouTubeAsl, "YouTube-ASL features (train only)",
                                                 data_schema(), folder_named("youtube"));
}

}  // namespace

SLT_PLUGIN("sign_features", "1.0.0", register_components)
