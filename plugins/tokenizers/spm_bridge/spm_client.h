#pragma once
// C++ side of the SentencePiece bridge: loads slt_spm_bridge.so into its own
// link-map namespace (once per process) and wraps a model.
#include <memory>
#include <string>
#include <vector>

namespace slt::spm {

struct Piece {
  std::string text;
  int32_t id;
};

class Model {
 public:
  // Throws UserError naming `path` when the model cannot be loaded.
  explicit Model(const std::string& path);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  std::vector<Piece> encode(const std::string& text) const;
  std::string decode_pieces(const std::vector<std::string>& pieces) const;
  int32_t piece_size() const;
  int32_t piece_to_id(const std::string& piece) const;
  std::string id_to_piece(int32_t id) const;
  int32_t unk_id() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  bool is_control(int32_t id) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* handle_ = nullptr;
};

// Runs spm_train with `args`; throws UserError with SentencePiece's message.
void train(const std::string& args);

// Where the bridge library was found (for diagnostics).
std::string bridge_path();

}  // namespace slt::spm
