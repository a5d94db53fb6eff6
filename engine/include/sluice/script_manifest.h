// What a script-defined step declares (a python.function task's @step): read by the step's
// reader command in a child process, which parses the script without running any of it, and
// cached by the script's content, so that a daemon rescanning its DAG folder starts no
// process for a script it has read before.
//
// Thread safety: ReadScriptManifest may be called from any thread.
#ifndef SLUICE_SCRIPT_MANIFEST_H_
#define SLUICE_SCRIPT_MANIFEST_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct ScriptManifest {
  // Set when the script cannot be read as declared: "has no function \"trian\"", a syntax
  // error. `line`/`column` point into the script (0: no position); `candidates` are the
  // functions it has.
  std::string error;
  int line = 0;
  int column = 0;
  std::vector<std::string> candidates;

  std::string function;
  struct Param {
    std::string name;
    std::string type;  // string | integer | number | boolean | array | object | any
    nlohmann::json default_value;
    int line = 0;
    int column = 0;
  };
  bool params_known = true;  // false: not a literal (the check is skipped)
  std::vector<Param> params;
  bool inputs_known = true;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> arguments;  // the function's parameter names (not ctx)
  bool any_arguments = false;          // it takes **kwargs

  const Param* FindParam(const std::string& name) const;
};

// Runs `command` + [script, function] (at most 10 s) and parses what it prints. An error
// status when the reader itself could not run or printed no manifest; a script problem is a
// manifest with `error` set.
StatusOr<ScriptManifest> ReadScriptManifest(const std::vector<std::string>& command,
                                            const std::string& script, const std::string& function);

}  // namespace sluice

#endif  // SLUICE_SCRIPT_MANIFEST_H_
