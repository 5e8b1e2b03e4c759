// slt-run: compose a Hydra-style config and run it (one run, or a --multirun sweep).
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "slt/runtime/components.h"
#include "slt/config/compose.h"
#include "slt/plugin/describe.h"
#include "slt/runtime/doctor.h"
#include "command_line.h"
#include "slt/runtime/app.h"
#include "slt/errors.h"
#include "slt/runtime/log.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/config/run_config.h"
#include "slt/text/text.h"
#include "slt/train/trainer.h"
#include "slt/version.h"
#include "slt/video/ffmpeg.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

void write_file(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw slt::Error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

int run(int argc, char** argv) {
  po::options_description options("Options");
  std::vector<std::string> config_dirs, plugin_paths, overrides;
  options.add_options()
      ("help,h", "show this help (with a config: also its groups and composed values)")
      ("config,c", po::value<std::string>(), "config file to run (e.g. configs/slt_t5.yaml)")
      ("config-name", po::value<std::string>(), "config looked up by name on the config search path")
      ("config-dir", po::value(&config_dirs)->composing(), "extra folder searched for configs (repeatable)")
      ("multirun,m", "sweep: a=1,2 b=x,y runs the cartesian product, one after the other")
      ("cfg", po::value<std::string>(), "print the composed config and exit: job, hydra or all")
      ("list-plugins", "list the plugins found and their components")
      ("describe", po::value<std::string>(), "print the config schema of a component, KIND.NAME as --list-plugins shows it")
      ("plugin-path", po::value(&plugin_paths)->composing(), "folder searched first for plugins (repeatable)")
      ("doctor", "report versions, BLAS, threads, CUDA, FFmpeg, plugins and GEMM speed")
      ("log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn or error")
      ("version", "print the slt version");
  po::options_description hidden;
  hidden.add_options()("overrides", po::value(&overrides)->composing());
  po::positional_options_description positional;
  positional.add("overrides", -1);
  auto vm = slt::parse_command_line("slt-run", argc, argv, options, hidden, positional);
  slt::setup_logging(vm["log-level"].as<std::string>());

  if (vm.count("version")) {
    std::cout << "slt " << SLT_VERSION_STRING << "\n";
    return 0;
  }
  auto plugin_dirs = slt::plugin_search_path(plugin_paths);
  if (vm.count("doctor")) {
    auto report = slt::run_doctor(plugin_dirs);
    slt::video::FfmpegInfo ffmpeg = slt::video::ffmpeg_info();
    report.ffmpeg_version = ffmpeg.version;
    report.h264_decoder = ffmpeg.h264_decoder;
    std::cout << report.to_text();
    return 0;
  }
  if (vm.count("list-plugins")) {
    std::cout << slt::format_plugin_list(slt::load_plugins(plugin_dirs), slt::Registry::global());
    return 0;
  }
  if (vm.count("describe")) {
    slt::load_plugins(plugin_dirs);
    auto [kind, name] = slt::split_component_name(vm["describe"].as<std::string>());
    std::cout << slt::format_component(slt::Registry::global().get(kind, name));
    return 0;
  }

  slt::register_base_config();
  // Plugins first: their schemas say which keys a plain key=value may set.
  slt::load_plugins(plugin_dirs);
  slt::ComposeRequest request;
  request.declared_key = slt::accepts_key;
  request.search_path = slt::config_search_path(config_dirs, argv[0]);
  if (vm.count("config")) request.config_file = vm["config"].as<std::string>();
  if (vm.count("config-name")) request.config_name = vm["config-name"].as<std::string>();
  request.overrides = overrides;
  request.multirun = vm.count("multirun") > 0;
  std::string command_line = "slt-run";
  for (int i = 1; i < argc; ++i) command_line += " " + slt::shell_quote(argv[i]);
  request.command_line = command_line;

  if (vm.count("help")) {
    std::cout << "Usage: slt-run [--config PATH | --config-name NAME] [options] [key=value ...]\n\n"
              << options << "\nOverrides (Hydra grammar): a.b=v  +a.b=v (add)  ++a.b=v  ~a.b (delete)"
                            "  group=option  a=1,2 (sweep with -m)\n\nConfig groups:\n";
    for (const auto& [group, group_options] : slt::list_config_groups(request.search_path))
      std::cout << "  " << group << ": " << slt::join(group_options) << "\n";
    if (!request.config_file.empty() || !request.config_name.empty()) {
      auto runs = slt::compose_runs(request);
      std::cout << "\nComposed config (" << (request.config_name.empty() ? request.config_file.string() : request.config_name)
                << "):\n" << runs.front().job_config().to_yaml();
    }
    return 0;
  }

  auto runs = slt::compose_runs(request);
  for (auto& run : runs) {
    slt::ConfigNode job = run.job_config();
    slt::load_plugins(slt::plugin_search_path(plugin_paths, &job));  // the config's plugins.paths
    slt::validate_job(job);
    for (auto& [key, value] : job.items()) run.config[key] = value;  // validated (typed) values
  }

  if (vm.count("cfg")) {
    std::string what = vm["cfg"].as<std::string>();
    if (what != "job" && what != "hydra" && what != "all")
      throw slt::UserError("--cfg takes job, hydra or all, not '" + what + "'");
    for (size_t i = 0; i < runs.size(); ++i) {
      if (i) std::cout << "---\n";
      if (what == "job") std::cout << runs[i].job_config().to_yaml();
      else if (what == "hydra") std::cout << runs[i].config.at("hydra")->to_yaml();
      else std::cout << runs[i].config.to_yaml();
    }
    return 0;
  }

  for (const auto& run : runs) slt::require_no_missing_keys(run.job_config());
  int failed = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    slt::ConfigNode job = runs[i].job_config();
    if (!job.get_or<bool>("common.eval", false)) {  // an evaluation writes next to the model it loads, not here
      fs::path output_dir = job.require<std::string>("common.output_dir");
      fs::create_directories(output_dir);
      write_file(output_dir / "config.yaml", job.to_yaml());
      slt::ConfigNode overrides_list = slt::ConfigNode::list();
      for (const auto& o : runs[i].task_overrides) overrides_list.elements().emplace_back(o);
      write_file(output_dir / "overrides.yaml", overrides_list.to_yaml());
    }
    if (runs.size() > 1) spdlog::info("run {}/{}: {}", i + 1, runs.size(), slt::join(runs[i].task_overrides, " "));
    try {
      auto outcome = slt::run_translation(job);
      if (outcome.status == slt::RunOutcome::Status::Interrupted) {
        spdlog::warn("stopped by a signal; run the same command again to resume from {}", outcome.output_dir.string());
        return 128 + outcome.stop_signal;  // the shell's convention for "stopped by signal N"
      }
    } catch (const slt::UserError&) {
      throw;  // the same mistake would stop every run of a sweep
    } catch (const slt::Error& e) {
      if (runs.size() == 1) throw;
      spdlog::error("run {}/{} failed: {}", i + 1, runs.size(), e.what());
      ++failed;
    }
  }
  if (failed) throw slt::Error(std::to_string(failed) + " of " + std::to_string(runs.size()) + " runs failed (see above)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slt::catch_stop_signals();  // a SLURM preemption during start-up must not lose the run
  return slt::run_app("slt-run", run, argc, argv);
}
