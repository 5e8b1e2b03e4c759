#include "slt/config/run_config.h"

#include "slt/config/compose.h"
#include "slt/errors.h"

namespace slt {

namespace {

ConfigSchema build_run_schema() {
  using V = ValueType;
  ConfigSchema s;
  // common
  s.add("common.output_dir", V::String, "${hydra:sweep.dir}/${hydra:sweep.subdir}",
        "Directory the run writes its config, logs and checkpoints to");
  s.add("common.log_dir", V::String, "${hydra:sweep.dir}/${hydra:sweep.subdir}/logs",
        "Directory for log files");
  s.add_optional("common.resume", V::String, nullptr, "Path to training checkpoint to resume from");
  s.add_optional("common.load_model", V::String, nullptr,
                 "Path to model weights to load at the start of the run");
  s.add("common.seed", V::Int, 42, "Random seed");
  s.add("common.device", V::String, "cuda", "Device to train and evaluate on");
  s.add("common.fp16", V::Bool, true, "Whether to use fp16 automatic mixed-precision");
  s.add("common.bf16", V::Bool, false,
        "Whether to use bf16 automatic mixed-precision (slt addition; CUDA, or CPU when "
        "common.device=cpu)");
  s.add("common.eval", V::Bool, false, "Perform evaluation only");
  s.add("common.dist_eval", V::Bool, true,
        "Enabling distributed evaluation (recommended during training for faster monitor");
  s.add("common.pin_mem", V::Bool, true, "Whether to pin memory");
  s.add("common.num_workers", V::Int, 10, "Num dataloader workers").at_least(0);
  s.add("common.eval_print_samples", V::Bool, false,
        "Whether to print hyps and refs during evaluation");
  s.add("common.print_freq", V::Int, 50,
        "Log training loss, accuracy, learning rate and speed every N batches (slt addition; the reference "
        "logs every 50)").at_least(1);
  s.add("common.max_checkpoints", V::Int, 3, "Only keep the last N checkpoints").at_least(1);
  s.add_optional("common.eval_steps", V::Int, nullptr,
                 "Interval for evaluation during training. None means evaluation is only "
                 "performed after every epoch.").at_least(1);
  s.add("common.eval_best_model_after_training", V::Bool, true,
        "Whether to run evaluation on the best model (based on validation BLEU-4) after training");
  s.add("common.overwrite_output_dir", V::Bool, false,
        "Whether to overwrite files in the output directory in case it already exists");
  s.add_implicit("common.num_threads", V::Int,
                 "CPU threads for LibTorch's operators; null: every CPU the process may run on (its affinity and "
                 "cgroup quota), or OMP_NUM_THREADS when set (slt addition)").between(1, 4096);
  s.add_implicit("common.resume_with_changed_config", V::Bool,
                 "Resume from the folder's checkpoint although the config changed keys the weights depend on "
                 "(seed, model, data, optimizer); by default such a resume is refused (slt addition)");
  s.add("common.compute_bleurt", V::Bool, false,
        "Compute BLEURT scores as part of the full evaluation. Requires tensorflow-gpu and "
        "sufficient GPU memory for the BLEURT-20 checkpoint.");
  // model
  s.add_required("model.name_or_path", V::String, "Path or identifier of pretrained transformer model");
  s.add_required("model.feature_dim", V::Int, "Embedding dimension of features").at_least(1);
  s.add("model.from_scratch", V::Bool, false, "Whether to train from scratch");
  s.add("model.dropout", V::Float, 0.3, "Dropout probability for the classifier").between(0, 1);
  s.add("model.num_beams", V::Int, 5, "Num beams for generation").between(1, 256);
  s.add_selector("model.arch",
                 "Model component by name (slt-run --list-plugins); null: the component that claims "
                 "model.name_or_path (slt addition)");
  s.add_optional("model.tokenizer", V::String, nullptr,
                 "Tokenizer component by name; null: the one that claims the files in model.name_or_path "
                 "(slt addition)");
  s.add("model.lower_case", V::Bool, false,
        "Whether to train with lowercase labels and apply truecasing in postprocessing");
  s.add("model.min_source_positions", V::Int, "${data.min_source_positions}",
        "For Fairseq compatibility: min number of source positions");
  s.add("model.max_source_positions", V::Int, "${data.max_source_positions}",
        "For Fairseq compatibility: max number of source positions");
  s.add("model.max_target_positions", V::Int, "${data.max_target_positions}",
        "For Fairseq compatibility: max number of target positions");
  s.add_optional("model.feats_type", V::String, "hiera", "Feature type");
  s.add_optional("model.activation_fn", V::String, nullptr, "Activation function to use");
  s.add_optional("model.encoder_normalize_before", V::Bool, nullptr,
                 "Whether to apply layernorm before each encoder block");
  s.add_optional("model.encoder_embed_dim", V::Int, nullptr, "Embedding dimension of encoder");
  s.add_optional("model.encoder_ffn_embed_dim", V::Int, nullptr, "Encoder dimension for FFN");
  s.add_optional("model.encoder_attention_heads", V::Int, nullptr, "Num encoder attention heads");
  s.add_optional("model.encoder_layerdrop", V::Float, nullptr, "Encoder layerdrop rate").between(0, 1);
  s.add_optional("model.encoder_layers", V::Int, nullptr, "Num encoder layers");
  s.add_optional("model.decoder_normalize_before", V::Bool, nullptr,
                 "Whether to apply layernorm before each decoder block");
  s.add_optional("model.decoder_embed_dim", V::Int, nullptr, "Embedding dimension of decoder");
  s.add_optional("model.decoder_ffn_embed_dim", V::Int, nullptr, "Decoder dimension for FFN");
  s.add_optional("model.decoder_attention_heads", V::Int, nullptr, "Num decoder attention heads");
  s.add_optional("model.decoder_layerdrop", V::Float, nullptr, "Decoder layerdrop rate").between(0, 1);
  s.add_optional("model.decoder_layers", V::Int, nullptr, "Num decoder layers");
  s.add_optional("model.decoder_output_dim", V::Int, nullptr, "Decoder dimension for outputs");
  s.add_optional("model.classifier_dropout", V::Float, nullptr, "Dropout probability").between(0, 1);
  s.add_optional("model.attention_dropout", V::Float, nullptr,
                 "Dropout probability for attention weights").between(0, 1);
  s.add_optional("model.activation_dropout", V::Float, nullptr,
                 "Dropout probability after activation in FFN.").between(0, 1);
  s.add_optional("model.layernorm_embedding", V::Bool, nullptr, "Apply LayerNorm to embeddings");
  s.add_optional("model.no_scale_embedding", V::Bool, nullptr, "Do not scale embeddings");
  s.add_optional("model.share_decoder_input_output_embed", V::Bool, nullptr,
                 "share decoder input and output embeddings");
  s.add_optional("model.num_hidden_layers", V::Int, nullptr, "Number of hidden layers.");
  // data
  s.add_required("data.train_data_dirs", V::String, "Comma-separated paths to train data directories");
  s.add_required("data.val_data_dir", V::String, "Path to validation data directory");
  s.add_implicit("data.feature_stats", V::String,
                 "Per-dimension mean and std (.pt from `slt-data feature-stats`) that input features are normalised "
                 "with in training, evaluation and slt-translate, as fairseq's global CMVN; null: features as they "
                 "are, as the reference (slt addition)");
  s.add_selector("data.dataset",
                 "Dataset component for every data folder; null: the one that claims each folder (slt addition)");
  s.add("data.num_epochs_extracted", V::Int, 1,
        "Number of epochs that (augmented) features have been extracted for").at_least(1);
  s.add("data.min_source_positions", V::Int, 0, "Min number of tokens in the source sequence").at_least(0);
  s.add("data.max_source_positions", V::Int, 1024, "Max number of tokens in the source sequence").at_least(1);
  s.add("data.max_target_positions", V::Int, 1024, "Max number of tokens in the target sequence").between(1, 65536);
  // criterion
  s.add("criterion.label_smoothing", V::Float, 0.2, "Label smoothing factor").between(0, 1);
  // optim
  s.add("optim.clip_grad", V::Float, 1.0, "Gradient norm clipping threshold").at_least(0);
  s.add("optim.lr", V::Float, 0.001, "Learning rate").at_least(0);
  s.add("optim.min_lr", V::Float, 1e-4, "Minimum learning rate after decay").at_least(0);
  s.add("optim.weight_decay", V::Float, 1e-1, "Adam weight decay").at_least(0);
  s.add("optim.start_epoch", V::Int, 0, "Start epoch").at_least(0);
  s.add("optim.epochs", V::Int, 200, "Number of training epochs").at_least(0);
  s.add("optim.warmup_epochs", V::Int, 10, "Number of epochs to warm up learning rate for").at_least(0);
  s.add("optim.train_batch_size", V::Int, 32, "Batch size for training").at_least(1);
  s.add("optim.val_batch_size", V::Int, 64, "Batch size for validation").at_least(1);
  s.add("optim.gradient_accumulation_steps", V::Int, 1, "Gradient accumulation steps").at_least(1);
  s.add("optim.early_stopping", V::Bool, true, "Whether to apply early stopping");
  s.add("optim.patience", V::Int, 10, "Early stop after this many epochs without improvement.").at_least(0);
  s.add_optional("optim.epoch_offset", V::Int, nullptr,
                 "Number of steps to skip in current epoch when resuming training.").at_least(0);
  // dist
  s.add("dist.world_size", V::Int, 1,
        "Number of distributed processes; above 1 without a torchrun or SLURM environment, slt-run starts them "
        "on this machine").at_least(1).at_most(1024);
  s.add("dist.port", V::Int, 1, "Port for dist communication");
  s.add("dist.local_rank", V::Int, -1, "Local rank");
  s.add("dist.enabled", V::Bool, false, "Use distributed training");
  s.add_optional("dist.rank", V::Int, nullptr, "Global process rank");
  s.add_optional("dist.dist_url", V::String, nullptr, "Url for torch.distributed init_method");
  s.add_optional("dist.gpu", V::Int, nullptr, "Index of GPU device on machine");
  s.add_optional("dist.dist_backend", V::String, nullptr,
                 "Backend for distributed communication: gloo (CPU tensors; the default) or nccl (CUDA)");
  s.add("dist.timeout", V::Int, 1800,
        "Seconds a rank waits for the others in a collective before it stops, naming the rank at fault")
      .at_least(1);
  // wandb: accepted for compatibility; slt writes TensorBoard files and metrics.jsonl instead.
  s.add("wandb.enabled", V::Bool, true, "Whether to log to wandb");
  s.add_optional("wandb.project", V::String, nullptr, "Wandb project name");
  s.add_optional("wandb.entity", V::String, nullptr, "Wandb entity name");
  s.add_optional("wandb.name", V::String, nullptr, "Wandb run name");
  s.add_optional("wandb.run_id", V::String, nullptr, "Wandb run id, mainly used to resume runs");
  s.add("wandb.log_code", V::Bool, true, "Log code as an artifact to wandb");
  // sweep
  s.add("sweep.dir", V::String, "${hydra:sweep.dir}", "Hydra sweep directory");
  s.add("sweep.subdir", V::String, "${hydra:sweep.subdir}", "Hydra sweep sub-directory");
  // top level
  s.add("debug", V::Bool, false, "Run in debugging mode");
  s.add("fairseq", V::Bool, false, "Use fairseq functionality");
  s.add("cmd", V::String, "${oc.env:RUN_CMD}", "Stores the CLI command used for this run");
  // slt additions
  s.add("plugins.paths", V::List, ConfigNode::list(),
        "Extra folders searched for plugin libraries (after --plugin-path and SLT_PLUGIN_PATH)");
  return s;
}

}  // namespace

const ConfigSchema& run_schema() {
  static const ConfigSchema schema = build_run_schema();
  return schema;
}

void register_base_config() { ConfigStore::instance().store("base_config", run_schema().defaults()); }

}  // namespace slt
