#include "test_util.h"

#include <date/date.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sluice::testing {

std::string DataPath(const std::string& relative) {
  return std::string(SLUICE_TEST_DATA_DIR) + "/" + relative;
}

std::string SourcePath(const std::string& relative) {
  return std::string(SLUICE_SOURCE_DIR) + "/" + relative;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::chrono::sys_seconds UtcTime(int y, unsigned mo, unsigned d, int h, int mi) {
  return std::chrono::sys_seconds(date::sys_days(date::year(y) / mo / d).time_since_epoch()) +
         std::chrono::hours(h) + std::chrono::minutes(mi);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("sluice-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

// argv for the sluice binary; the strings in `storage` must outlive the result.
std::vector<char*> SluiceArgv(const std::vector<std::string>& args,
                              std::vector<std::string>* storage) {
  *storage = {SLUICE_BINARY};
  storage->insert(storage->end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : *storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

}  // namespace

CommandResult RunSluice(const std::vector<std::string>& args) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> storage;
  std::vector<char*> argv = SluiceArgv(args, &storage);

  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    ::setenv("NO_COLOR", "1", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);

  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int SpawnSluice(const std::vector<std::string>& args, const std::string& output_file) {
  std::vector<std::string> storage;
  std::vector<char*> argv = SluiceArgv(args, &storage);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int fd = open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    ::setenv("NO_COLOR", "1", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

HttpReply HttpCall(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& token, const std::string& body) {
  namespace http = boost::beast::http;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    boost::beast::tcp_stream stream(io);
    stream.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code write_error;
    http::write(stream, req, write_error);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception&) {
    return {};
  }
}

double TimeScale() {
  static const double scale = [] {
    const char* env = std::getenv("SLUICE_TEST_TIME_SCALE");
    const double value = env != nullptr ? std::atof(env) : 1.0;
    return value >= 1.0 ? value : 1.0;
  }();
  return scale;
}

bool WaitFor(const std::function<bool()>& done, int seconds) {
  const int polls = static_cast<int>(seconds * 20 * TimeScale());
  for (int i = 0; i < polls; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

unsigned short DaemonPort(const std::string& state_dir) {
  const std::string file = state_dir + "/daemon.json";
  REQUIRE(WaitFor([&] { return std::filesystem::exists(file); }));
  nlohmann::json daemon;
  std::ifstream(file) >> daemon;
  const std::string url = daemon["url"];
  return static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
}

std::vector<int> WorkerPids(int pid) {
  std::vector<int> workers;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& thread : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream children(thread.path() / "children");
    int child = 0;
    while (children >> child) {
      std::ifstream cmdline("/proc/" + std::to_string(child) + "/cmdline");
      std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
      if (args.find(std::string("worker") + '\0') != std::string::npos) workers.push_back(child);
    }
  }
  return workers;
}

}  // namespace sluice::testing
