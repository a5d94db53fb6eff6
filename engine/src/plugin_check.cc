#include "sluice/plugin_check.h"

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

}  // namespace

void CheckDagAgainstPlugins(const Dag& dag, const PluginCatalog& catalog,
                            bool missing_step_is_error, Diagnostics* diagnostics) {
  const std::string& file = dag.spec().source_path;
  const std::vector<std::string> steps = catalog.StepNames();
  for (const TaskSpec& task : dag.tasks()) {
    const StepManifest* step = catalog.FindStep(task.plugin);
    if (step == nullptr) {
      std::string hint = DidYouMean(task.plugin, steps);
      if (hint.empty())
        hint = "`sluice plugins list` shows the installed plugins; SLUICE_PLUGIN_PATH adds folders";
      std::string message =
          "task \"" + task.id + "\": no installed plugin provides step \"" + task.plugin + "\"";
      if (missing_step_is_error)
        diagnostics->Error(file, task.plugin_pos, message, hint);
      else
        diagnostics->Warning(file, task.plugin_pos, message, hint);
      continue;
    }
    std::vector<std::string> declared;
    for (const ParamManifest& p : step->params) declared.push_back(p.name);
    for (const auto& item : task.params.items()) {
      auto key_pos = task.param_pos.find(item.key());
      SourcePos pos = key_pos == task.param_pos.end() ? task.pos : key_pos->second;
      const ParamManifest* param = step->FindParam(item.key());
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
  diagnostics->Sort();
}

}  // namespace sluice
