#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <stdexcept>

namespace sluice::ml {

using nlohmann::json;

const char* TaskKindName(TaskKind kind) {
  switch (kind) {
    case TaskKind::kBinary:
      return "binary";
    case TaskKind::kMulticlass:
      return "multiclass";
    case TaskKind::kRegression:
      return "regression";
  }
  return "binary";
}

bool IsMissing(const std::string& cell) {
  return cell.empty() || cell == "NA" || cell == "N/A" || cell == "NaN" || cell == "nan" ||
         cell == "null" || cell == "?";
}

namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

TaskKind ParseTask(const std::string& name) {
  if (name == "binary") return TaskKind::kBinary;
  if (name == "multiclass") return TaskKind::kMulticlass;
  if (name == "regression") return TaskKind::kRegression;
  throw std::runtime_error("unknown task kind \"" + name + "\"");
}

}  // namespace

Preprocessor Preprocessor::Fit(const CsvTable& table, const std::vector<size_t>& rows,
                               const std::vector<std::string>& features,
                               const std::vector<std::string>& categorical,
                               const std::string& target, TaskKind task,
                               std::vector<std::string> classes, const std::string& scaling) {
  Preprocessor p;
  p.target_ = target;
  p.task_ = task;
  p.classes_ = std::move(classes);
  p.scaling_ = scaling;
  for (const std::string& name : features) {
    const int col = table.Column(name);
    if (col < 0) throw std::runtime_error("no column \"" + name + "\"");
    ColumnTransform c;
    c.name = name;
    c.categorical = std::find(categorical.begin(), categorical.end(), name) != categorical.end();
    if (c.categorical) {
      std::map<std::string, size_t> counts;
      for (size_t r : rows) {
        const std::string& cell = table.rows[r][static_cast<size_t>(col)];
        if (!IsMissing(cell)) ++counts[cell];
      }
      size_t best = 0;
      for (const auto& [level, n] : counts) {
        c.levels.push_back(level);
        if (n > best) {
          best = n;
          c.impute_level = level;
        }
      }
    } else {
      std::vector<double> values;
      values.reserve(rows.size());
      for (size_t r : rows) {
        double v = 0;
        if (ParseNumber(table.rows[r][static_cast<size_t>(col)], &v)) values.push_back(v);
      }
      c.impute = Median(values);
      if (scaling == "standard" && !values.empty()) {
        double sum = 0;
        for (double v : values) sum += v;
        const double mean = sum / static_cast<double>(values.size());
        double ss = 0;
        for (double v : values) ss += (v - mean) * (v - mean);
        const double sd = std::sqrt(ss / static_cast<double>(values.size()));
        c.center = mean;
        c.scale = sd > 0 ? sd : 1;
      } else if (scaling == "minmax" && !values.empty()) {
        const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
        c.center = *lo;
        c.scale = *hi > *lo ? *hi - *lo : 1;
      } else if (scaling != "none" && scaling != "standard" && scaling != "minmax") {
        throw std::runtime_error("scaling must be standard, minmax or none, not \"" + scaling +
                                 "\"");
      }
    }
    p.columns_.push_back(std::move(c));
  }
  p.Index();
  return p;
}

void Preprocessor::Index() {
  num_features_ = 0;
  for (const ColumnTransform& c : columns_) num_features_ += c.categorical ? c.levels.size() : 1;
}

json Preprocessor::ToJson() const {
  json columns = json::array();
  for (const ColumnTransform& c : columns_) {
    if (c.categorical) {
      columns.push_back({{"name", c.name},
                         {"type", "categorical"},
                         {"levels", c.levels},
                         {"impute", c.impute_level}});
    } else {
      columns.push_back({{"name", c.name},
                         {"type", "numeric"},
                         {"impute", c.impute},
                         {"center", c.center},
                         {"scale", c.scale}});
    }
  }
  return {{"format", "sluice.preprocess/1"},
          {"target", target_},
          {"task", TaskKindName(task_)},
          {"classes", classes_},
          {"scaling", scaling_},
          {"columns", columns},
          {"features", FeatureNames()}};
}

Preprocessor Preprocessor::FromJson(const json& j) {
  try {
    if (j.value("format", "") != "sluice.preprocess/1") {
      throw std::runtime_error("not a sluice.preprocess/1 document");
    }
    Preprocessor p;
    p.target_ = j.at("target").get<std::string>();
    p.task_ = ParseTask(j.at("task").get<std::string>());
    p.classes_ = j.at("classes").get<std::vector<std::string>>();
    p.scaling_ = j.value("scaling", "standard");
    for (const json& c : j.at("columns")) {
      ColumnTransform t;
      t.name = c.at("name").get<std::string>();
      t.categorical = c.at("type").get<std::string>() == "categorical";
      if (t.categorical) {
        t.levels = c.at("levels").get<std::vector<std::string>>();
        t.impute_level = c.at("impute").get<std::string>();
      } else {
        t.impute = c.at("impute").get<double>();
        t.center = c.at("center").get<double>();
        t.scale = c.at("scale").get<double>();
      }
      p.columns_.push_back(std::move(t));
    }
    p.Index();
    return p;
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("bad preprocessing spec: ") + e.what());
  }
}

Preprocessor Preprocessor::Load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  try {
    return FromJson(json::parse(in));
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

std::vector<std::string> Preprocessor::FeatureNames() const {
  std::vector<std::string> names;
  for (const ColumnTransform& c : columns_) {
    if (!c.categorical) {
      names.push_back(c.name);
      continue;
    }
    for (const std::string& level : c.levels) names.push_back(c.name + "=" + level);
  }
  return names;
}

void Preprocessor::AppendFeatures(const ColumnTransform& c, const std::string* text, double number,
                                  bool is_number, std::vector<double>* out) const {
  if (c.categorical) {
    const std::string& level = text == nullptr ? c.impute_level : *text;
    for (const std::string& l : c.levels) out->push_back(l == level ? 1.0 : 0.0);
    return;
  }
  const double v = is_number ? number : c.impute;
  out->push_back((v - c.center) / c.scale);
}

std::vector<double> Preprocessor::TransformTable(const CsvTable& table) const {
  std::vector<int> index;
  for (const ColumnTransform& c : columns_) {
    const int col = table.Column(c.name);
    if (col < 0) {
      throw std::runtime_error("column \"" + c.name +
                               "\" is missing (the model was trained on it)");
    }
    index.push_back(col);
  }
  std::vector<double> out;
  out.reserve(table.rows.size() * num_features_);
  for (size_t r = 0; r < table.rows.size(); ++r) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      const ColumnTransform& c = columns_[i];
      const std::string& cell = table.rows[r][static_cast<size_t>(index[i])];
      if (IsMissing(cell)) {
        AppendFeatures(c, nullptr, 0, false, &out);
        continue;
      }
      double v = 0;
      const bool is_number = !c.categorical && ParseNumber(cell, &v);
      if (!c.categorical && !is_number) {
        throw std::runtime_error("line " + std::to_string(table.lines[r]) + ", column \"" + c.name +
                                 "\": \"" + cell + "\" is not a number");
      }
      AppendFeatures(c, &cell, v, is_number, &out);
    }
  }
  return out;
}

std::vector<double> Preprocessor::Labels(const CsvTable& table) const {
  const int col = table.Column(target_);
  if (col < 0) throw std::runtime_error("the target column \"" + target_ + "\" is missing");
  std::vector<double> labels;
  labels.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& cell = table.rows[r][static_cast<size_t>(col)];
    const std::string where =
        "line " + std::to_string(table.lines[r]) + ", column \"" + target_ + "\"";
    if (IsMissing(cell)) throw std::runtime_error(where + ": the label is missing");
    if (task_ == TaskKind::kRegression) {
      double v = 0;
      if (!ParseNumber(cell, &v))
        throw std::runtime_error(where + ": \"" + cell + "\" is not a number");
      labels.push_back(v);
      continue;
    }
    const auto it = std::find(classes_.begin(), classes_.end(), cell);
    if (it == classes_.end()) {
      throw std::runtime_error(where + ": \"" + cell + "\" is not one of the model's classes");
    }
    labels.push_back(static_cast<double>(it - classes_.begin()));
  }
  return labels;
}

std::string Preprocessor::TransformJson(const json& row, std::vector<double>* out) const {
  if (!row.is_object()) return "a row must be a JSON object of column -> value";
  for (const ColumnTransform& c : columns_) {
    const auto it = row.find(c.name);
    if (it == row.end()) return "column \"" + c.name + "\" is missing";
    if (it->is_null()) {
      AppendFeatures(c, nullptr, 0, false, out);
    } else if (c.categorical) {
      if (!it->is_string() && !it->is_number()) {
        return "column \"" + c.name + "\" must be a string (a category), not " + it->dump();
      }
      const std::string text = it->is_string() ? it->get<std::string>() : it->dump();
      AppendFeatures(c, &text, 0, false, out);
    } else {
      if (!it->is_number()) return "column \"" + c.name + "\" must be a number, not " + it->dump();
      AppendFeatures(c, nullptr, it->get<double>(), true, out);
    }
  }
  if (row.size() > columns_.size() + 1 ||
      (row.size() == columns_.size() + 1 && !row.contains(target_))) {
    for (const auto& [name, value] : row.items()) {
      bool known = name == target_;
      for (const ColumnTransform& c : columns_) known = known || c.name == name;
      if (!known) return "unknown column \"" + name + "\"";
    }
  }
  return "";
}

}  // namespace sluice::ml
