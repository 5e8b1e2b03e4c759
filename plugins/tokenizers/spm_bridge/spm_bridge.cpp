// The C side of the SentencePiece bridge; see spm_bridge.h for why it exists.
#include "spm_bridge.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

struct slt_spm_model {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {
void write_error(char* error, size_t size, const std::string& message) {
  if (!error || size == 0) return;
  std::strncpy(error, message.c_str(), size - 1);
  error[size - 1] = '\0';
}
}  // namespace

extern "C" {

__attribute__((visibility("default"))) int slt_spm_bridge_version(void) { return SLT_SPM_BRIDGE_VERSION; }

__attribute__((visibility("default"))) slt_spm_model* slt_spm_load(const char* path, char* error, size_t error_size) {
  // No exception may cross this C boundary.
  auto* model = new slt_spm_model();
  try {
    auto status = model->processor.Load(path);
    if (status.ok()) return model;
    write_error(error, error_size, status.ToString());
  } catch (const std::exception& e) {
    write_error(error, error_size, e.what());
  }
  delete model;
  return nullptr;
}

__attribute__((visibility("default"))) void slt_spm_free(slt_spm_model* model) { delete model; }

__attribute__((visibility("default"))) int32_t slt_spm_piece_size(const slt_spm_model* m) { return m->processor.GetPieceSize(); }

__attribute__((visibility("default"))) int32_t slt_spm_piece_to_id(const slt_spm_model* m, const char* piece, size_t length) {
  return m->processor.PieceToId(std::string(piece, length));
}

__attribute__((visibility("default"))) void slt_spm_id_to_piece(const slt_spm_model* m, int32_t id, slt_spm_text_fn fn, void* ctx) {
  const std::string& piece = m->processor.IdToPiece(id);
  fn(ctx, piece.data(), piece.size());
}

__attribute__((visibility("default"))) int32_t slt_spm_unk_id(const slt_spm_model* m) { return m->processor.unk_id(); }
__attribute__((visibility("default"))) int32_t slt_spm_bos_id(const slt_spm_model* m) { return m->processor.bos_id(); }
__attribute__((visibility("default"))) int32_t slt_spm_eos_id(const slt_spm_model* m) { return m->processor.eos_id(); }
__attribute__((visibility("default"))) int32_t slt_spm_pad_id(const slt_spm_model* m) { return m->processor.pad_id(); }
__attribute__((visibility("default"))) int slt_spm_is_control(const slt_spm_model* m, int32_t id) { return m->processor.IsControl(id); }

__attribute__((visibility("default"))) int slt_spm_encode(const slt_spm_model* m, const char* text, size_t length,
                                                          slt_spm_piece_fn fn, void* ctx) {
  try {
    std::vector<std::string> pieces;
    if (!m->processor.Encode(std::string(text, length), &pieces).ok()) return -1;
    for (const auto& piece : pieces) fn(ctx, piece.data(), piece.size(), m->processor.PieceToId(piece));
    return 0;
  } catch (const std::exception&) {
    return -1;
  }
}

__attribute__((visibility("default"))) int slt_spm_decode_pieces(const slt_spm_model* m, const char* pieces, size_t length,
                                                                 size_t count, slt_spm_text_fn fn, void* ctx) {
  std::vector<std::string> list;
  list.reserve(count);
  size_t start = 0;
  for (size_t i = 0; i < count && start <= length; ++i) {
    size_t end = start;
    while (end < length && pieces[end] != '\0') ++end;
    list.emplace_back(pieces + start, end - start);
    start = end + 1;
  }
  try {
    std::string text;
    if (!m->processor.Decode(list, &text).ok()) return -1;
    fn(ctx, text.data(), text.size());
    return 0;
  } catch (const std::exception&) {
    return -1;
  }
}

__attribute__((visibility("default"))) int slt_spm_train(const char* args, char* error, size_t error_size) {
  try {
    auto status = sentencepiece::SentencePieceTrainer::Train(args);
    if (status.ok()) return 0;
    write_error(error, error_size, status.ToString());
  } catch (const std::exception& e) {
    write_error(error, error_size, e.what());
  }
  return 1;
}

}  // extern "C"
