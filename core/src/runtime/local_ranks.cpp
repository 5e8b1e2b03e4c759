#include "slt/runtime/local_ranks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include "slt/errors.h"
#include "slt/runtime/threads.h"
#include "slt/train/stop_signals.h"

extern char** environ;

namespace slt {

namespace {

// A port nobody listens on now; rank 0 binds it a moment later.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw Error(std::string("cannot find a free local port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

int run_local_ranks(const std::vector<std::string>& arguments, const LocalRanksOptions& options) {
  const int n = options.processes;
  const std::string port = std::to_string(free_port());
  const bool threads_set = std::getenv("OMP_NUM_THREADS") != nullptr;
  const int threads = std::max(1, usable_cpus() / n);
  spdlog::info("starting {} local ranks (MASTER_ADDR=127.0.0.1 MASTER_PORT={}{})", n, port,
               threads_set ? "" : ", " + std::to_string(threads) + " threads each");

  std::vector<std::string> inherited;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    for (const char* replaced :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLT_LAUNCHER_PID"})
      if (name == replaced) name.clear();
    if (!name.empty()) inherited.push_back(entry);
  }
  std::vector<pid_t> pids;
  for (int rank = 0; rank < n; ++rank) {
    std::vector<std::string> env = inherited;
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(n));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(n));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + port);
    env.push_back("SLT_LAUNCHER_PID=" + std::to_string(::getpid()));
    if (!threads_set) env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe";
    std::vector<std::string> args{self};
    args.insert(args.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Each rank in its own process group: a Ctrl-C at the terminal reaches
    // this launcher only, which passes it on once (a second SIGINT kills).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    pid_t pid = -1;
    int error = posix_spawn(&pid, self.c_str(), nullptr, &attributes, argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      for (pid_t started : pids) ::kill(started, SIGKILL);
      throw Error(std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(error));
    }
    pids.push_back(pid);
  }

  std::vector<std::optional<int>> statuses(static_cast<size_t>(n));
  std::optional<int> first_failure;
  std::chrono::steady_clock::time_point failed_at;
  int forwarded = 0;
  bool terminated = false;
  for (int running = n; running > 0;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      auto it = std::find(pids.begin(), pids.end(), pid);
      if (it == pids.end()) continue;
      const int rank = static_cast<int>(it - pids.begin());
      statuses[rank] = status;
      --running;
      // A rank stopped by the signal passed on to it (128 + N) did as asked.
      const bool failed = !(WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
                                                  (forwarded && WEXITSTATUS(status) == 128 + forwarded)));
      if (failed && !first_failure) {
        first_failure = rank;
        failed_at = std::chrono::steady_clock::now();
        spdlog::error("rank {} failed first ({}); waiting up to {} s for the other ranks to stop", rank,
                      describe_status(status), options.grace.count());
      }
      continue;
    }
    if (int signal = StopSignals::pending(); signal && !forwarded) {
      forwarded = signal;
      spdlog::warn("{} received: passing it on to the ranks", strsignal(signal));
      for (size_t r = 0; r < pids.size(); ++r)
        if (!statuses[r]) ::kill(pids[r], signal);
    }
    if (first_failure && !terminated && std::chrono::steady_clock::now() - failed_at > options.grace) {
      terminated = true;
      for (size_t r = 0; r < pids.size(); ++r)
        if (!statuses[r]) {
          spdlog::error("rank {} did not stop by itself: killing it", r);
          ::kill(pids[r], SIGKILL);
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!first_failure) {
    if (forwarded) spdlog::warn("every rank stopped on {}; run the same command again to resume", strsignal(forwarded));
    return forwarded ? 128 + forwarded : 0;
  }
  std::string summary;
  for (int r = 0; r < n; ++r) summary += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + ": " + describe_status(*statuses[r]);
  spdlog::error("the job failed: rank {} first ({})", *first_failure, summary);
  return exit_code_of(*statuses[*first_failure]);
}

void stop_with_launcher() {
  const char* launcher = std::getenv("SLT_LAUNCHER_PID");
  if (!launcher) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (std::to_string(::getppid()) != launcher) std::raise(SIGTERM);  // it died before the request
}

}  // namespace slt
