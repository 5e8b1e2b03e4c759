#pragma once
// A plain C interface around SentencePiece, built as its own library
// (slt_spm_bridge.so) and loaded with dlmopen(LM_ID_NEWLM) into a separate
// link-map namespace. Why: Debian's libsentencepiece carries and exports its
// own protobuf 3.14, LibTorch loads the system protobuf 3.21; in one namespace
// the two abort at load time. Nothing but C types crosses this boundary, and
// memory is never freed across it (each namespace has its own allocator).
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLT_SPM_BRIDGE_VERSION 1

typedef struct slt_spm_model slt_spm_model;
// Receives one piece (not NUL-terminated) and its id.
typedef void (*slt_spm_piece_fn)(void* ctx, const char* piece, size_t length, int32_t id);
// Receives a string result.
typedef void (*slt_spm_text_fn)(void* ctx, const char* text, size_t length);

int slt_spm_bridge_version(void);
// NULL on failure, with the reason written to `error` (NUL-terminated, truncated to error_size).
slt_spm_model* slt_spm_load(const char* path, char* error, size_t error_size);
void slt_spm_free(slt_spm_model* model);
int32_t slt_spm_piece_size(const slt_spm_model* model);
int32_t slt_spm_piece_to_id(const slt_spm_model* model, const char* piece, size_t length);
void slt_spm_id_to_piece(const slt_spm_model* model, int32_t id, slt_spm_text_fn fn, void* ctx);
int32_t slt_spm_unk_id(const slt_spm_model* model);
int32_t slt_spm_bos_id(const slt_spm_model* model);
int32_t slt_spm_eos_id(const slt_spm_model* model);
int32_t slt_spm_pad_id(const slt_spm_model* model);
int slt_spm_is_control(const slt_spm_model* model, int32_t id);
// Encodes UTF-8 text into pieces with their ids.
int slt_spm_encode(const slt_spm_model* model, const char* text, size_t length, slt_spm_piece_fn fn, void* ctx);
// Decodes pieces given as one buffer of NUL-separated strings.
int slt_spm_decode_pieces(const slt_spm_model* model, const char* pieces, size_t length, size_t count,
                          slt_spm_text_fn fn, void* ctx);
// spm_train with a command line ("--input=... --model_prefix=..."); 0 on success.
int slt_spm_train(const char* args, char* error, size_t error_size);

#ifdef __cplusplus
}
#endif
