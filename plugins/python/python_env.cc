#include "python/python_env.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "common/child_step.h"

namespace sluice::python {

namespace fs = std::filesystem;

namespace {

bool Executable(const fs::path& path) {
  std::error_code ec;
  return access(path.c_str(), X_OK) == 0 && fs::is_regular_file(path, ec);
}

}  // namespace

fs::path SdkDir() {
  fs::path dir;
  if (const char* env = std::getenv("SLUICE_PYTHON_SDK"); env != nullptr && *env != '\0') {
    dir = env;
  } else {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&SdkDir), &info) != 0 && info.dli_fname != nullptr) {
      dir = fs::path(info.dli_fname).parent_path().parent_path() / "python";
    }
  }
  std::error_code ec;
  if (dir.empty() || !fs::is_regular_file(dir / "sluice" / "_run.py", ec)) {
    throw std::runtime_error(
        "the Python SDK is not installed beside the python plugin (looked in " + dir.string() +
        "); reinstall Sluice or set SLUICE_PYTHON_SDK");
  }
  return dir;
}

fs::path Interpreter(std::string chosen, std::string from, const fs::path& base,
                     const std::string& who) {
  if (chosen.empty()) {
    const char* env = std::getenv("SLUICE_PYTHON");
    if (env != nullptr && *env != '\0') {
      chosen = env;
      from = "$SLUICE_PYTHON";
    }
  }
  if (chosen.empty()) {
    if (Executable("/usr/bin/python3")) return "/usr/bin/python3";
    chosen = "python3";
    from = "the default";
  }
  if (chosen.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    const std::string found =
        sluice::plugins::FindOnPath(chosen, path != nullptr ? path : "/usr/bin:/bin");
    if (!found.empty()) return found;
    throw std::runtime_error(who + ": no Python interpreter \"" + chosen + "\" on PATH (" + from +
                             "); set python = \"/path/to/python\" in the task's params");
  }
  fs::path p(chosen);
  if (p.is_relative() && !base.empty()) p = base / p;
  if (!Executable(p)) {
    throw std::runtime_error(who + ": the Python interpreter " + p.string() + " (" + from +
                             ") does not exist or cannot be run");
  }
  return p;
}

std::vector<std::string> ChildEnv(const fs::path& sdk) {
  std::vector<std::string> env;
  const char* old_path = std::getenv("PYTHONPATH");
  env.push_back("PYTHONPATH=" + sdk.string() +
                (old_path != nullptr && *old_path != '\0' ? ":" + std::string(old_path) : ""));
  env.emplace_back("PYTHONUNBUFFERED=1");  // print() reaches the log as it happens
  // Compiled modules (the SDK's, those a script imports) are cached in a folder of their
  // own, never beside the script: recompiling the SDK cost every try ~4 ms.
  if (const char* own = std::getenv("PYTHONPYCACHEPREFIX"); own == nullptr || *own == '\0') {
    const char* cache = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string dir = cache != nullptr && *cache != '\0' ? std::string(cache) + "/sluice/pycache"
                      : home != nullptr && *home != '\0'
                          ? std::string(home) + "/.cache/sluice/pycache"
                          : "/tmp/sluice-pycache-" + std::to_string(getuid());
    env.push_back("PYTHONPYCACHEPREFIX=" + dir);
  }
  return env;
}

}  // namespace sluice::python
