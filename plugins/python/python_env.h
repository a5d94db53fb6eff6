// What the python plugin's step and predictor share: where the Python SDK is, and which
// interpreter runs Python.
#ifndef SLUICE_PLUGINS_PYTHON_PYTHON_ENV_H_
#define SLUICE_PLUGINS_PYTHON_PYTHON_ENV_H_

#include <filesystem>
#include <string>
#include <vector>

namespace sluice::python {

// Where the Python SDK is: beside the plugin folder (lib/sluice/python, both in a build tree
// and once installed), unless $SLUICE_PYTHON_SDK names another folder. Throws
// sdk::StepError-compatible std::runtime_error when it is not there.
std::filesystem::path SdkDir();

// The interpreter: `chosen` (from `from`, e.g. "the task's python param"), else
// $SLUICE_PYTHON, else Debian's /usr/bin/python3 (where apt's python3-* packages are; a
// `python3` first on PATH may be a pyenv or conda shim without them), else python3 on PATH.
// A relative path is relative to `base`. Throws std::runtime_error that starts with `who`
// (`task "train"`, `model folder /x`) and names the path.
std::filesystem::path Interpreter(std::string chosen, std::string from,
                                  const std::filesystem::path& base, const std::string& who);

// The environment a Python child gets: the caller's, with the SDK first on PYTHONPATH,
// unbuffered output, and compiled modules cached under $XDG_CACHE_HOME/sluice/pycache
// (else ~/.cache/...), never beside the scripts.
std::vector<std::string> ChildEnv(const std::filesystem::path& sdk);

}  // namespace sluice::python

#endif  // SLUICE_PLUGINS_PYTHON_PYTHON_ENV_H_
