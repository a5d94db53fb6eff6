#include "sluice/plugin_check.h"

#include <filesystem>

#include "sluice/script_manifest.h"
#include "sluice/suggest.h"
#include "sluice/template.h"

namespace sluice {

using nlohmann::json;

namespace {

bool Matches(const json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  return true;
}

std::string TypeOf(const json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();
}

// The value a param will have as far as it can be known before a run: a string that is
// exactly one `{{ params.X }}` placeholder has the type of X's default; other templated
// strings are strings; run variables are strings.
json StaticValue(const json& value, const json& dag_params) {
  if (!value.is_string()) return value;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.find("{{") == std::string::npos) return value;
  TemplateError error;
  auto t = Template::Parse(text, &error);
  if (t && t->placeholders().size() == 1) {
    const auto& p = t->placeholders()[0];
    const std::string trimmed = text.substr(text.find_first_not_of(' '));
    if (text.rfind("{{", 0) == 0 && text.size() >= 2 &&
        text.compare(text.size() - 2, 2, "}}") == 0 && p.path.size() >= 2 &&
        p.path[0] == "params") {
      const json* node = &dag_params;
      for (size_t i = 1; i < p.path.size() && node->is_object() && node->contains(p.path[i]); ++i) {
        node = &(*node)[p.path[i]];
      }
      return *node;
    }
  }
  return value;
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A task of a step whose script declares its params (python.function): checks the task's
// other params and its inputs against the script's declaration, read without running it.
// `outputs` gets the outputs the script declares, when it could be read.
void CheckAgainstScript(const Dag& dag, const TaskSpec& task, const StepManifest& step,
                        std::vector<std::string>* outputs, Diagnostics* diagnostics) {
  const std::string& file = dag.spec().source_path;
  const json& given = task.params.value(step.script_manifest_param, json());
  if (!given.is_string()) return;  // the step's own check reports a missing script param
  const std::string script = given.get<std::string>();
  if (script.find("{{") != std::string::npos) return;  // known only when the run renders it
  auto at = [&](const std::string& param) {
    auto v = task.param_value_pos.find(param);
    if (v != task.param_value_pos.end()) return v->second;
    auto k = task.param_pos.find(param);
    return k == task.param_pos.end() ? task.pos : k->second;
  };
  const std::filesystem::path folder = std::filesystem::path(file).parent_path();
  std::filesystem::path path(script);
  if (path.is_relative()) path = folder / path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    diagnostics->Error(file, at(step.script_manifest_param),
                       "task \"" + task.id + "\": script " + script + " does not exist",
                       "a relative script path is relative to the DAG file's folder (" +
                           (folder.empty() ? std::string(".") : folder.string()) + ")");
    return;
  }
  const json& named = task.params.value(step.script_manifest_function_param, json(""));
  if (!named.is_string()) return;  // the step's own check reports the type
  const std::string function = named.get<std::string>();
  if (function.find("{{") != std::string::npos) return;
  StatusOr<ScriptManifest> read = ReadScriptManifest(step.script_manifest_command, path, function);
  if (!read.ok()) {
    diagnostics->Warning(file, at(step.script_manifest_param),
                         "task \"" + task.id + "\": its params were not checked against " + script +
                             ": " + read.status().message(),
                         "");
    return;
  }
  const ScriptManifest& m = *read;
  if (!m.error.empty()) {
    const bool no_function = m.error.rfind("has no function", 0) == 0;
    std::string where = script;
    if (m.line > 0) where += ":" + std::to_string(m.line) + ":" + std::to_string(m.column);
    std::string hint;
    if (no_function) hint = DidYouMean(function, m.candidates);
    if (hint.empty() && !m.candidates.empty()) hint = "it has: " + Joined(m.candidates);
    diagnostics->Error(
        file, at(no_function ? step.script_manifest_function_param : step.script_manifest_param),
        "task \"" + task.id + "\": " + where + " " + m.error, hint);
    return;
  }
  *outputs = m.outputs;
  const std::string fn = m.function + "() in " + script;
  std::vector<std::string> declared;
  for (const ScriptManifest::Param& p : m.params) declared.push_back(p.name);
  for (const auto& item : task.params.items()) {
    if (step.FindParam(item.key()) != nullptr || !m.params_known) continue;
    const ScriptManifest::Param* param = m.FindParam(item.key());
    auto key_pos = task.param_pos.find(item.key());
    const SourcePos pos = key_pos == task.param_pos.end() ? task.pos : key_pos->second;
    if (param == nullptr) {
      if (m.any_arguments || Contains(m.arguments, item.key())) continue;
      std::vector<std::string> known = declared;
      for (const std::string& a : m.arguments) {
        if (!Contains(known, a) && !Contains(m.inputs, a)) known.push_back(a);
      }
      std::string hint = DidYouMean(item.key(), known);
      if (hint.empty()) hint = known.empty() ? "it declares none" : "it declares: " + Joined(known);
      diagnostics->Error(file, pos,
                         "task \"" + task.id + "\": " + fn + " has no param \"" + item.key() + "\"",
                         hint);
      continue;
    }
    const json value = StaticValue(item.value(), dag.spec().params);
    if (param->type == "any" || value.is_null() || Matches(value, param->type)) continue;
    diagnostics->Error(file, at(item.key()),
                       "task \"" + task.id + "\": param \"" + item.key() + "\" must be " +
                           param->type + ", not " + TypeOf(value),
                       "declared at " + script + ":" + std::to_string(param->line) + ":" +
                           std::to_string(param->column) + " with default " +
                           param->default_value.dump());
  }
  if (!m.inputs_known) return;
  std::vector<std::string> given_inputs;
  for (const TaskSpec::Input& in : task.inputs) {
    given_inputs.push_back(in.name);
    if (Contains(m.inputs, in.name) || Contains(m.arguments, in.name) || m.any_arguments) continue;
    std::string hint = DidYouMean(in.name, m.inputs);
    if (hint.empty()) {
      hint = m.inputs.empty() ? "it declares no inputs" : "it declares: " + Joined(m.inputs);
    }
    diagnostics->Error(file, task.pos,
                       "task \"" + task.id + "\": " + fn + " has no input \"" + in.name + "\"",
                       hint);
  }
  for (const std::string& name : m.inputs) {
    if (Contains(given_inputs, name)) continue;
    diagnostics->Error(file, task.pos,
                       "task \"" + task.id + "\": " + fn + " needs input \"" + name + "\"",
                       "add inputs = { " + name + " = \"TASK.OUTPUT\" }");
  }
}

// Inputs and `when` conditions name outputs their upstream steps declare.
void CheckReferences(const Dag& dag, const std::vector<std::vector<std::string>>& outputs,
                     Diagnostics* diagnostics) {
  const std::string& file = dag.spec().source_path;
  auto check = [&](const TaskSpec& task, const std::string& what, const std::string& from,
                   const std::string& output, SourcePos pos) {
    const int64_t upstream = dag.IndexOf(from);
    if (upstream < 0) return;
    const std::vector<std::string>& declared = outputs[static_cast<size_t>(upstream)];
    if (declared.empty() || Contains(declared, output)) return;
    const TaskSpec& up = dag.tasks()[static_cast<size_t>(upstream)];
    std::string hint = DidYouMean(output, declared);
    if (hint.empty()) hint = "it declares: " + Joined(declared);
    diagnostics->Error(file, pos,
                       "task \"" + task.id + "\" " + what + " reads \"" + from + "." + output +
                           "\", but step \"" + up.plugin + "\" of task \"" + from +
                           "\" declares no output \"" + output + "\"",
                       hint);
  };
  for (const TaskSpec& task : dag.tasks()) {
    for (const TaskSpec::Input& in : task.inputs) {
      check(task, "input \"" + in.name + "\"", in.task, in.output, in.output_pos);
    }
    if (!task.when) continue;
    const std::vector<Expression::Reference>& refs = task.when->references();
    for (size_t k = 0; k < refs.size(); ++k) {
      const std::vector<std::string>& path = refs[k].path;
      if (path.size() < 2 || path[0] == "params") continue;
      SourcePos pos = k < task.when_ref_pos.size() ? task.when_ref_pos[k] : task.pos;
      if (pos.known()) pos.column += static_cast<uint32_t>(path[0].size() + 1);
      check(task, "`when`", path[0], path[1], pos);
    }
  }
}

}  // namespace

void CheckDagAgainstPlugins(const Dag& dag, const PluginCatalog& catalog,
                            Diagnostics* diagnostics) {
  const std::string& file = dag.spec().source_path;
  const std::vector<std::string> steps = catalog.StepNames();
  // Each task's declared outputs; empty when its step declares none (core.shell publishes
  // what its command says): those are not checked.
  std::vector<std::vector<std::string>> outputs(dag.size());
  for (size_t index = 0; index < dag.size(); ++index) {
    const TaskSpec& task = dag.tasks()[index];
    const StepManifest* step = catalog.FindStep(task.plugin);
    if (step == nullptr) {
      std::string hint = DidYouMean(task.plugin, steps);
      if (hint.empty()) {
        hint =
            "`sluice plugins list` shows the installed plugins; --plugin-dir or "
            "SLUICE_PLUGIN_PATH adds folders (`dag validate --no-plugins` skips this check)";
      }
      diagnostics->Error(
          file, task.plugin_pos,
          "task \"" + task.id + "\": no installed plugin provides step \"" + task.plugin + "\"",
          hint);
      continue;
    }
    std::vector<std::string> declared;
    for (const ParamManifest& p : step->params) declared.push_back(p.name);
    for (const auto& item : task.params.items()) {
      auto key_pos = task.param_pos.find(item.key());
      SourcePos pos = key_pos == task.param_pos.end() ? task.pos : key_pos->second;
      const ParamManifest* param = step->FindParam(item.key());
      if (param == nullptr && step->any_params) continue;
      if (param == nullptr) {
        std::string hint = DidYouMean(item.key(), declared);
        if (hint.empty()) {
          hint = declared.empty() ? "step \"" + step->name + "\" takes no params" : "it takes: ";
          for (size_t i = 0; i < declared.size(); ++i) hint += (i ? ", " : "") + declared[i];
        }
        diagnostics->Error(file, pos,
                           "task \"" + task.id + "\": step \"" + step->name + "\" has no param \"" +
                               item.key() + "\"",
                           hint);
        continue;
      }
      const json value = StaticValue(item.value(), dag.spec().params);
      if (!value.is_null() && !Matches(value, param->type)) {
        auto value_pos = task.param_value_pos.find(item.key());
        diagnostics->Error(
            file, value_pos == task.param_value_pos.end() ? pos : value_pos->second,
            "task \"" + task.id + "\": param \"" + item.key() + "\" must be " + param->type +
                ", not " + TypeOf(value),
            param->doc.empty() ? std::string() : "\"" + item.key() + "\": " + param->doc);
      }
    }
    for (const StepManifest::Output& o : step->outputs) outputs[index].push_back(o.name);
    if (!step->script_manifest_command.empty()) {
      CheckAgainstScript(dag, task, *step, &outputs[index], diagnostics);
    }
    for (const ParamManifest& param : step->params) {
      if (param.required && !task.params.contains(param.name)) {
        diagnostics->Error(
            file, task.pos,
            "task \"" + task.id + "\": step \"" + step->name + "\" needs param \"" + param.name +
                "\"",
            "add it to the task's params" + (param.doc.empty() ? std::string() : ": " + param.doc));
      }
    }
    if (!step->inputs.empty() || !task.inputs.empty()) {
      std::vector<std::string> names;
      for (const auto& in : step->inputs) names.push_back(in.name);
      for (const TaskSpec::Input& in : task.inputs) {
        if (!step->any_inputs && std::find(names.begin(), names.end(), in.name) == names.end()) {
          std::string hint = DidYouMean(in.name, names);
          if (hint.empty()) {
            hint = names.empty() ? "step \"" + step->name + "\" takes no inputs" : "it takes: ";
            for (size_t i = 0; i < names.size(); ++i) hint += (i ? ", " : "") + names[i];
          }
          diagnostics->Error(file, task.pos,
                             "task \"" + task.id + "\": step \"" + step->name +
                                 "\" has no input \"" + in.name + "\"",
                             hint);
        }
      }
      for (const auto& in : step->inputs) {
        bool given = false;
        for (const TaskSpec::Input& ti : task.inputs) given |= ti.name == in.name;
        if (in.required && !given) {
          diagnostics->Error(file, task.pos,
                             "task \"" + task.id + "\": step \"" + step->name +
                                 "\" needs input \"" + in.name + "\"",
                             "add inputs = { " + in.name + " = \"TASK.OUTPUT\" }" +
                                 (in.doc.empty() ? std::string() : " (" + in.doc + ")"));
        }
      }
    }
  }
  CheckReferences(dag, outputs, diagnostics);
  diagnostics->Sort();
}

}  // namespace sluice
