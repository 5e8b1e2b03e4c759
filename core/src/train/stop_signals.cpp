#include "slt/train/stop_signals.h"

#include <csignal>

namespace slt {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
  }
  g_stop_signal = signal;
}

}  // namespace

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);  // SLURM's warning before the time limit (--signal=USR1@N)
}

struct StopSignals::Saved {
  struct sigaction interrupt {}, terminate {}, user1 {};
};

StopSignals::StopSignals() : saved_(std::make_unique<Saved>()) {
  sigaction(SIGINT, nullptr, &saved_->interrupt);
  sigaction(SIGTERM, nullptr, &saved_->terminate);
  sigaction(SIGUSR1, nullptr, &saved_->user1);
  catch_stop_signals();
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &saved_->interrupt, nullptr);
  sigaction(SIGTERM, &saved_->terminate, nullptr);
  sigaction(SIGUSR1, &saved_->user1, nullptr);
}

int StopSignals::pending() { return g_stop_signal; }

}  // namespace slt
