#include "spm_client.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "slt/errors.h"
#include "slt/io/files.h"
#include "slt/plugin/plugin_loader.h"
#include "spm_bridge.h"

namespace fs = std::filesystem;

namespace slt::spm {

namespace {

struct Bridge {
  std::string path;
  decltype(&slt_spm_load) load;
  decltype(&slt_spm_free) free;
  decltype(&slt_spm_piece_size) piece_size;
  decltype(&slt_spm_piece_to_id) piece_to_id;
  decltype(&slt_spm_id_to_piece) id_to_piece;
  decltype(&slt_spm_unk_id) unk_id;
  decltype(&slt_spm_bos_id) bos_id;
  decltype(&slt_spm_eos_id) eos_id;
  decltype(&slt_spm_pad_id) pad_id;
  decltype(&slt_spm_is_control) is_control;
  decltype(&slt_spm_encode) encode;
  decltype(&slt_spm_decode_pieces) decode_pieces;
  decltype(&slt_spm_train) train;
};

std::vector<fs::path> bridge_candidates() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("SLT_SPM_BRIDGE")) candidates.emplace_back(env);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&bridge_candidates), &info) && info.dli_fname)
    candidates.push_back(fs::path(info.dli_fname).parent_path() / "slt_spm_bridge.so");
  candidates.push_back(slt::default_plugin_dir() / "slt_spm_bridge.so");
  return candidates;
}

const Bridge& bridge() {
  static std::once_flag once;
  static Bridge* loaded = nullptr;  // never unloaded
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& candidate : bridge_candidates()) {
      if (!fs::exists(candidate)) {
        tried += " " + candidate.string();
        continue;
      }
      // A fresh link-map namespace: SentencePiece's protobuf never meets LibTorch's.
      void* handle = dlmopen(LM_ID_NEWLM, candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        failure = "cannot load the SentencePiece bridge " + candidate.string() + ": " + dlerror();
        return;
      }
      auto sym = [&](const char* name) {
        void* s = dlsym(handle, name);
        if (!s) throw std::runtime_error(std::string("missing symbol ") + name);
        return s;
      };
      try {
        auto version = reinterpret_cast<decltype(&slt_spm_bridge_version)>(sym("slt_spm_bridge_version"));
        if (version() != SLT_SPM_BRIDGE_VERSION) {
          failure = "SentencePiece bridge " + candidate.string() + " has version " + std::to_string(version()) +
                    ", expected " + std::to_string(SLT_SPM_BRIDGE_VERSION) + "; rebuild slt";
          return;
        }
        auto* b = new Bridge();
        b->path = candidate.string();
#define SLT_BIND(field, name) b->field = reinterpret_cast<decltype(b->field)>(sym(name))
        SLT_BIND(load, "slt_spm_load");
        SLT_BIND(free, "slt_spm_free");
        SLT_BIND(piece_size, "slt_spm_piece_size");
        SLT_BIND(piece_to_id, "slt_spm_piece_to_id");
        SLT_BIND(id_to_piece, "slt_spm_id_to_piece");
        SLT_BIND(unk_id, "slt_spm_unk_id");
        SLT_BIND(bos_id, "slt_spm_bos_id");
        SLT_BIND(eos_id, "slt_spm_eos_id");
        SLT_BIND(pad_id, "slt_spm_pad_id");
        SLT_BIND(is_control, "slt_spm_is_control");
        SLT_BIND(encode, "slt_spm_encode");
        SLT_BIND(decode_pieces, "slt_spm_decode_pieces");
        SLT_BIND(train, "slt_spm_train");
#undef SLT_BIND
        loaded = b;
      } catch (const std::exception& e) {
        failure = "SentencePiece bridge " + candidate.string() + " is incomplete: " + e.what();
      }
      return;
    }
    failure = "the SentencePiece bridge slt_spm_bridge.so was not found (looked at:" + tried +
              "); set SLT_SPM_BRIDGE to its path";
  });
  if (!loaded) throw slt::Error(failure);
  return *loaded;
}

void append_text(void* ctx, const char* text, size_t length) { static_cast<std::string*>(ctx)->assign(text, length); }

void append_piece(void* ctx, const char* piece, size_t length, int32_t id) {
  static_cast<std::vector<Piece>*>(ctx)->push_back(Piece{std::string(piece, length), id});
}

}  // namespace

Model::Model(const std::string& path) : path_(path) {
  slt::require_regular_file(path, "SentencePiece model");
  char error[1024] = {};
  handle_ = bridge().load(path.c_str(), error, sizeof error);
  if (!handle_) throw slt::UserError("cannot load SentencePiece model '" + path + "': " + error);
}

Model::~Model() {
  if (handle_) bridge().free(static_cast<slt_spm_model*>(handle_));
}

std::vector<Piece> Model::encode(const std::string& text) const {
  std::vector<Piece> pieces;
  if (bridge().encode(static_cast<slt_spm_model*>(handle_), text.data(), text.size(), &append_piece, &pieces) != 0)
    throw slt::Error("SentencePiece could not encode a text with '" + path_ + "'");
  return pieces;
}

std::string Model::decode_pieces(const std::vector<std::string>& pieces) const {
  std::string joined;
  for (const auto& p : pieces) joined += p + '\0';
  std::string text;
  if (bridge().decode_pieces(static_cast<slt_spm_model*>(handle_), joined.data(), joined.size(), pieces.size(),
                             &append_text, &text) != 0)
    throw slt::Error("SentencePiece could not decode pieces with '" + path_ + "'");
  return text;
}

int32_t Model::piece_size() const { return bridge().piece_size(static_cast<slt_spm_model*>(handle_)); }
int32_t Model::piece_to_id(const std::string& piece) const {
  return bridge().piece_to_id(static_cast<slt_spm_model*>(handle_), piece.data(), piece.size());
}
std::string Model::id_to_piece(int32_t id) const {
  // SentencePiece aborts the process on an id outside its vocabulary.
  if (id < 0 || id >= piece_size())
    throw slt::UserError("token id " + std::to_string(id) + " is outside the vocabulary of '" + path_ + "' (0.." +
                         std::to_string(piece_size() - 1) + ")");
  std::string piece;
  bridge().id_to_piece(static_cast<slt_spm_model*>(handle_), id, &append_text, &piece);
  return piece;
}
int32_t Model::unk_id() const { return bridge().unk_id(static_cast<slt_spm_model*>(handle_)); }
int32_t Model::bos_id() const { return bridge().bos_id(static_cast<slt_spm_model*>(handle_)); }
int32_t Model::eos_id() const { return bridge().eos_id(static_cast<slt_spm_model*>(handle_)); }
int32_t Model::pad_id() const { return bridge().pad_id(static_cast<slt_spm_model*>(handle_)); }
bool Model::is_control(int32_t id) const {
  if (id < 0 || id >= piece_size()) return false;
  return bridge().is_control(static_cast<slt_spm_model*>(handle_), id) != 0; }

void train(const std::string& args) {
  char error[2048] = {};
  if (bridge().train(args.c_str(), error, sizeof error) != 0)
    throw slt::UserError(std::string("SentencePiece training failed: ") + error);
}

std::string bridge_path() { return bridge().path; }

}  // namespace slt::spm
