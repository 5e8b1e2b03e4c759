#pragma once
// A real SLURM controller and node on this machine for the tests: munged,
// slurmctld and slurmd from Debian's packages, configured in a temporary
// folder (proctrack/linuxproc, task/none, no accounting) on free ports, and
// stopped at the end. Where they cannot be started, `unavailable` says why.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../test_helpers.h"

namespace slurm_test {

namespace fs = std::filesystem;

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}

inline std::string find_program(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"})
    if (::access((fs::path(dir) / name).c_str(), X_OK) == 0) return (fs::path(dir) / name).string();
  return "";
}

class Cluster {
 public:
  Cluster() : dir_(fs::temp_directory_path() / ("slt-slurm-" + std::to_string(::getpid()))) { start(); }
  ~Cluster() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Empty when the cluster runs; otherwise why it could not be started.
  const std::string& unavailable() const { return unavailable_; }
  const fs::path& dir() const { return dir_; }
  std::string partition() const { return "debug"; }
  /// The daemons' logs, for a failing test's message.
  std::string logs() const {
    std::string text;
    for (const char* name : {"slurmctld.log", "slurmd.log"}) {
      std::ifstream in(dir_ / name);
      text += std::string("--- ") + name + "\n" + std::string(std::istreambuf_iterator<char>(in), {});
    }
    return text;
  }

 private:
  void start() {
    if (::geteuid() != 0) return give_up("slurmd must run as root to start jobs, and these tests do not run as root");
    for (const char* program : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo"})
      if (find_program(program).empty())
        return give_up(std::string(program) + " is not installed (Debian: slurmctld slurmd slurm-client munge; "
                                              "scripts/install-deps.sh --with-tests)");
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_ / "state");
    fs::create_directories(dir_ / "spool");
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
    {
      std::ofstream key(dir_ / "munge.key", std::ios::binary);
      std::ifstream random("/dev/urandom", std::ios::binary);
      std::string bytes(1024, '\0');
      random.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      key << bytes;
    }
    fs::permissions(dir_ / "munge.key", fs::perms::owner_read, fs::perm_options::replace);
    const std::string d = dir_.string();
    if (slt_test::run_command(find_program("munged") + " --force --socket=" + d + "/munge.sock --key-file=" + d +
                              "/munge.key --log-file=" + d + "/munged.log --pid-file=" + d + "/munged.pid --seed-file=" +
                              d + "/munged.seed")
            .exit_code != 0)
      return give_up("munged did not start (see " + d + "/munged.log)");
    munged_ = true;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string node(host);
    node = node.substr(0, node.find('.'));
    long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    const long memory_mb = pages * page / (1 << 20) - 512;
    std::ofstream conf(dir_ / "slurm.conf");
    conf << "ClusterName=slttest\n"
         << "SlurmctldHost=" << node << "(127.0.0.1)\n"
         << "SlurmctldPort=" << free_port() << "\nSlurmdPort=" << free_port() << "\n"
         // cred_expire also delays a requeued job's restart (120 s by default).
         << "AuthType=auth/munge\nAuthInfo=socket=" << d << "/munge.sock,cred_expire=5\nCredType=cred/munge\n"
         << "SlurmUser=root\nSlurmdUser=root\n"
         << "StateSaveLocation=" << d << "/state\nSlurmdSpoolDir=" << d << "/spool\n"
         << "SlurmctldPidFile=" << d << "/slurmctld.pid\nSlurmdPidFile=" << d << "/slurmd.pid\n"
         << "SlurmctldLogFile=" << d << "/slurmctld.log\nSlurmdLogFile=" << d << "/slurmd.log\n"
         << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
         << "AccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n"
         << "SchedulerType=sched/builtin\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n"
         << "MpiDefault=none\nReturnToService=2\nInactiveLimit=0\nKillWait=5\nMinJobAge=3600\n"
         << "SchedulerParameters=sched_interval=1\n"
         << "NodeName=" << node << " NodeAddr=127.0.0.1 CPUs=" << std::max(1u, std::thread::hardware_concurrency())
         << " RealMemory=" << memory_mb << " State=UNKNOWN\n"
         << "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n";
    conf.close();
    ::setenv("SLURM_CONF", (dir_ / "slurm.conf").c_str(), 1);
    if (slt_test::run_command(find_program("slurmctld") + " -c").exit_code != 0)
      return give_up("slurmctld did not start:\n" + logs());
    controller_ = true;
    if (slt_test::run_command(find_program("slurmd")).exit_code != 0) return give_up("slurmd did not start:\n" + logs());
    node_ = true;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto state = slt_test::run_command("sinfo --noheader --format=%T");
      if (state.exit_code == 0 && state.output.find("idle") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    give_up("the test node did not become idle within 30 s:\n" + logs());
  }

  void give_up(const std::string& why) {
    unavailable_ = why;
    stop();
  }

  void stop() {
    if (controller_ || node_) slt_test::run_command("scancel --full --quiet --user=root; scontrol shutdown");
    for (const char* pid_file : {"slurmd.pid", "slurmctld.pid"}) {
      std::ifstream in(dir_ / pid_file);
      long pid = 0;
      if (in >> pid && pid > 0) {
        for (int i = 0; i < 50 && ::kill(static_cast<pid_t>(pid), 0) == 0; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ::kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
    if (munged_) slt_test::run_command(find_program("munged") + " --stop --socket=" + (dir_ / "munge.sock").string());
    controller_ = node_ = munged_ = false;
    ::unsetenv("SLURM_CONF");
  }

  fs::path dir_;
  std::string unavailable_;
  bool munged_ = false, controller_ = false, node_ = false;
};

}  // namespace slurm_test
