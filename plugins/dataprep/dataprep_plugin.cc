// The `dataprep` plugin: from a CSV file to the dataset the trainers read.
//
//   dataprep.csv  load a CSV, check it against an optional schema, split it (stratified,
//                 seeded) into train/valid/test, fit the preprocessing (imputation, scaling,
//                 one-hot) on the training split, and profile the data
//
// Outputs: `dataset` (a folder: train.csv, valid.csv, test.csv with the raw rows,
// preprocess.json, profile.json, meta.json), `preprocess` (preprocess.json alone: the
// scaling statistics that inference reuses) and `profile` (the training split's profile,
// the reference for monitor.drift). See plugins/dataprep/README.md.
#include <sluice/step.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "../ml/csv.h"
#include "../ml/model.h"
#include "../ml/preprocess.h"
#include "../ml/profile.h"

namespace {

using nlohmann::json;
using sluice::ml::CsvTable;
using sluice::ml::IsMissing;
using sluice::ml::ParseNumber;
using sluice::ml::TaskKind;
using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

std::vector<std::string> StringList(const Context& ctx, const std::string& name) {
  const json& v = ctx.params()[name];
  if (v.is_null()) return {};
  std::vector<std::string> out;
  for (const json& item : v) {
    if (!item.is_string()) throw StepError("param \"" + name + "\" must list column names");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// Collects schema violations: per (column, rule), a count and the first few file lines.
class SchemaReport {
 public:
  explicit SchemaReport(const CsvTable& table) : table_(table) {}
  void Add(const std::string& column, const std::string& rule, size_t row) {
    Entry& e = entries_[{column, rule}];
    if (e.lines.size() < kLinesShown) e.lines.push_back(table_.Where(row));
    ++e.count;
    rows_.insert(row);
  }
  void AddTable(const std::string& problem) { table_problems_.push_back(problem); }
  bool empty() const { return entries_.empty() && table_problems_.empty(); }
  std::vector<std::string> Lines() const {
    std::vector<std::string> out = table_problems_;
    for (const auto& [key, e] : entries_) {
      std::string lines;
      for (const std::string& l : e.lines) lines += (lines.empty() ? "" : ", ") + l;
      if (e.count > e.lines.size())
        lines += " and " + std::to_string(e.count - e.lines.size()) + " more";
      out.push_back("column \"" + key.first + "\": " + key.second + " (" + std::to_string(e.count) +
                    (e.count == 1 ? " row, line " : " rows, lines ") + lines + ")");
    }
    return out;
  }
  size_t bad_rows() const { return rows_.size(); }

 private:
  static constexpr size_t kLinesShown = 5;
  struct Entry {
    size_t count = 0;
    std::vector<std::string> lines;
  };
  std::map<std::pair<std::string, std::string>, Entry> entries_;
  const CsvTable& table_;
  std::vector<std::string> table_problems_;
  std::set<size_t> rows_;
};

// Checks `table` against a schema object:
//   {"min_rows": N, "required": [columns], "columns": {name: {"type": "number"|"integer"|
//    "string", "min", "max", "allowed": [...], "nullable": bool, "required": bool}}}
SchemaReport CheckSchema(const CsvTable& table, const json& schema) {
  SchemaReport report(table);
  static const std::set<std::string> kKeys = {"min_rows", "required", "columns"};
  static const std::set<std::string> kColumnKeys = {"type",    "min",      "max",
                                                    "allowed", "nullable", "required"};
  for (const auto& [key, value] : schema.items()) {
    if (!kKeys.count(key)) {
      throw StepError("schema: unknown key \"" + key + "\" (known: min_rows, required, columns)");
    }
  }
  const size_t min_rows = schema.value("min_rows", 0);
  if (table.rows.size() < min_rows) {
    report.AddTable("the file has " + std::to_string(table.rows.size()) +
                    " rows; the schema asks for at least " + std::to_string(min_rows));
  }
  std::set<std::string> required;
  for (const json& name : schema.value("required", json::array()))
    required.insert(name.get<std::string>());
  const json columns = schema.value("columns", json::object());
  for (const auto& [name, rule] : columns.items()) {
    for (const auto& [key, value] : rule.items()) {
      if (!kColumnKeys.count(key)) {
        throw StepError("schema: column \"" + name + "\": unknown rule \"" + key +
                        "\" (known: type, min, max, allowed, nullable, required)");
      }
    }
    if (rule.value("required", false)) required.insert(name);
  }
  for (const std::string& name : required) {
    if (table.Column(name) < 0) report.AddTable("required column \"" + name + "\" is missing");
  }
  for (const auto& [name, rule] : columns.items()) {
    const int col = table.Column(name);
    if (col < 0) continue;
    const std::string type = rule.value("type", "");
    if (!type.empty() && type != "number" && type != "integer" && type != "string") {
      throw StepError("schema: column \"" + name + "\": type must be number, integer or string");
    }
    const bool nullable = rule.value("nullable", true);
    const json allowed = rule.value("allowed", json());
    for (size_t r = 0; r < table.rows.size(); ++r) {
      const std::string& cell = table.rows[r][static_cast<size_t>(col)];
      if (IsMissing(cell)) {
        if (!nullable) report.Add(name, "missing value (nullable = false)", r);
        continue;
      }
      double v = 0;
      const bool numeric = ParseNumber(cell, &v);
      if ((type == "number" || type == "integer") && !numeric) {
        report.Add(name, "not a number", r);
        continue;
      }
      if (type == "integer" && std::floor(v) != v) {
        report.Add(name, "not an integer", r);
        continue;
      }
      if (numeric && rule.contains("min") && v < rule["min"].get<double>()) {
        report.Add(name, "below min " + rule["min"].dump(), r);
      }
      if (numeric && rule.contains("max") && v > rule["max"].get<double>()) {
        report.Add(name, "above max " + rule["max"].dump(), r);
      }
      if (allowed.is_array()) {
        bool ok = false;
        for (const json& a : allowed) {
          ok = ok || (a.is_string() ? a.get<std::string>() == cell
                                    : a.is_number() && numeric && a.get<double>() == v);
        }
        if (!ok) report.Add(name, "value not in allowed " + allowed.dump(), r);
      }
    }
  }
  return report;
}

class Csv : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    std::vector<std::filesystem::path> paths;
    const json& given = ctx.params()["path"];
    for (const json& p : given.is_array() ? given : json::array({given})) {
      if (!p.is_string()) throw StepError("param \"path\" must be a file path or a list of them");
      paths.push_back(ctx.DagPath(p.get<std::string>()));
    }
    if (paths.empty()) throw StepError("param \"path\" lists no file");
    const std::filesystem::path path = paths[0];
    CsvTable table;
    try {
      table = sluice::ml::ReadCsvFiles(paths);
    } catch (const std::exception& e) {
      throw StepError(e.what());
    }
    std::string names;
    for (const auto& p : paths) names += (names.empty() ? "" : ", ") + p.string();
    ctx.Info("read " + std::to_string(table.rows.size()) + " rows x " +
             std::to_string(table.header.size()) + " columns from " + names);

    if (!ctx.params()["schema"].is_null()) {
      const SchemaReport report = CheckSchema(table, ctx.params()["schema"]);
      if (!report.empty()) {
        const std::vector<std::string> lines = report.Lines();
        for (const std::string& line : lines) ctx.Error("schema: " + line);
        std::string summary = path.string() +
                              " does not match the schema: " + std::to_string(report.bad_rows()) +
                              " bad rows";
        for (const std::string& line : lines) summary += "\n  " + line;
        throw StepError(summary);
      }
      ctx.Info("schema check passed");
    }

    const std::string target = ctx.Param<std::string>("target");
    const int target_col = table.Column(target);
    if (target_col < 0) {
      throw StepError("target column \"" + target + "\" is not in " + path.string() +
                      " (columns: " + Join(table.header) + ")");
    }
    const std::vector<std::string> features = Features(ctx, table, target);
    const std::vector<std::string> categorical = Categorical(ctx, table, features);

    // Rows without a label cannot train or test anything.
    std::vector<size_t> rows;
    for (size_t r = 0; r < table.rows.size(); ++r) {
      if (!IsMissing(table.rows[r][static_cast<size_t>(target_col)])) rows.push_back(r);
    }
    const size_t dropped = table.rows.size() - rows.size();
    if (dropped > 0)
      ctx.Warning(std::to_string(dropped) + " rows have no " + target + "; left out");

    const TaskKind task = Task(ctx, table, rows, target_col);
    std::vector<std::string> classes;
    if (task != TaskKind::kRegression) classes = Classes(table, rows, target_col);
    if (task == TaskKind::kBinary && classes.size() != 2) {
      throw StepError("task binary needs 2 classes in \"" + target + "\", found " +
                      std::to_string(classes.size()) + ": " + Join(classes));
    }

    const auto [train, valid, test] = Split(ctx, table, rows, target_col, task);
    if (train.empty()) throw StepError("the training split is empty; lower test/valid fractions");

    const sluice::ml::Preprocessor pre =
        sluice::ml::Preprocessor::Fit(table, train, features, categorical, target, task, classes,
                                      ctx.Param<std::string>("scaling"));
    const json profile = sluice::ml::Profile(table, train, features, categorical,
                                             task == TaskKind::kRegression ? "" : target);

    const std::filesystem::path out = ctx.output_dir() / "dataset";
    std::filesystem::create_directories(out);
    WriteSplit(out / "train.csv", table, train, features, target);
    WriteSplit(out / "valid.csv", table, valid, features, target);
    WriteSplit(out / "test.csv", table, test, features, target);
    sluice::ml::WriteJsonFile(out / "preprocess.json", pre.ToJson());
    sluice::ml::WriteJsonFile(out / "profile.json", profile);
    sluice::ml::WriteJsonFile(
        out / "meta.json",
        {{"source", names},
         {"target", target},
         {"task", sluice::ml::TaskKindName(task)},
         {"classes", classes},
         {"features", features},
         {"categorical", categorical},
         {"seed", ctx.Param<int64_t>("seed")},
         {"rows", {{"train", train.size()}, {"valid", valid.size()}, {"test", test.size()}}}});
    std::filesystem::copy_file(out / "preprocess.json", ctx.output_dir() / "preprocess.json");
    std::filesystem::copy_file(out / "profile.json", ctx.output_dir() / "profile.json");
    ctx.OutputDir("dataset", out);
    ctx.OutputFile("preprocess", ctx.output_dir() / "preprocess.json");
    ctx.OutputFile("profile", ctx.output_dir() / "profile.json");

    ctx.Metric("rows", static_cast<double>(rows.size()));
    ctx.Metric("rows_train", static_cast<double>(train.size()));
    ctx.Metric("rows_valid", static_cast<double>(valid.size()));
    ctx.Metric("rows_test", static_cast<double>(test.size()));
    ctx.Metric("rows_dropped", static_cast<double>(dropped));
    ctx.Metric("features", static_cast<double>(pre.num_features()));
    size_t missing = 0;
    for (const auto& [name, col] : profile["columns"].items()) {
      // Per-column figures of the training split, for comparing data between runs.
      const size_t col_missing = col.value("missing", 0);
      missing += col_missing;
      if (col_missing > 0) ctx.Metric("missing." + name, static_cast<double>(col_missing));
      if (col.value("type", "") == "numeric") {
        ctx.Metric("mean." + name, col.value("mean", 0.0));
        ctx.Metric("std." + name, col.value("std", 0.0));
      }
    }
    ctx.Metric("missing_cells", static_cast<double>(missing));
    if (profile.contains("classes")) {
      for (const auto& [name, count] : profile["classes"].items()) {
        ctx.Metric("class_share." + name, count.get<double>() / static_cast<double>(train.size()));
      }
    }
    ctx.Info("split " + std::to_string(train.size()) + " train / " + std::to_string(valid.size()) +
             " valid / " + std::to_string(test.size()) + " test rows (" +
             sluice::ml::TaskKindName(task) + ", " + std::to_string(pre.num_features()) +
             " features, seed " + std::to_string(ctx.Param<int64_t>("seed")) + ")");
  }

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  static std::vector<std::string> Features(const Context& ctx, const CsvTable& table,
                                           const std::string& target) {
    std::vector<std::string> features = StringList(ctx, "features");
    const std::vector<std::string> drop = StringList(ctx, "drop");
    if (features.empty()) {
      for (const std::string& c : table.header) {
        if (c != target && std::find(drop.begin(), drop.end(), c) == drop.end()) {
          features.push_back(c);
        }
      }
    }
    for (const std::string& f : features) {
      if (table.Column(f) < 0) {
        throw StepError("feature column \"" + f +
                        "\" is not in the file (columns: " + Join(table.header) + ")");
      }
      if (f == target) throw StepError("the target \"" + target + "\" cannot also be a feature");
    }
    if (features.empty()) throw StepError("no feature columns: the file has only the target");
    return features;
  }

  // Declared categorical columns, or (by default) every feature with a non-numeric cell.
  static std::vector<std::string> Categorical(const Context& ctx, const CsvTable& table,
                                              const std::vector<std::string>& features) {
    if (!ctx.params()["categorical"].is_null()) return StringList(ctx, "categorical");
    std::vector<std::string> out;
    for (const std::string& f : features) {
      const size_t col = static_cast<size_t>(table.Column(f));
      for (const auto& row : table.rows) {
        double v = 0;
        if (!IsMissing(row[col]) && !ParseNumber(row[col], &v)) {
          out.push_back(f);
          break;
        }
      }
    }
    return out;
  }

  // "auto": a target with a non-numeric value, or with at most 20 distinct integers, is a
  // classification target (binary when it has 2 values); anything else is regression.
  static TaskKind Task(const Context& ctx, const CsvTable& table, const std::vector<size_t>& rows,
                       int col) {
    const std::string task = ctx.Param<std::string>("task");
    if (task == "binary") return TaskKind::kBinary;
    if (task == "multiclass") return TaskKind::kMulticlass;
    if (task == "regression") return TaskKind::kRegression;
    if (task != "auto") {
      throw StepError("param \"task\" must be auto, binary, multiclass or regression, not \"" +
                      task + "\"");
    }
    std::set<std::string> distinct;
    bool numeric = true;
    bool integral = true;
    for (size_t r : rows) {
      const std::string& cell = table.rows[r][static_cast<size_t>(col)];
      double v = 0;
      if (!ParseNumber(cell, &v)) {
        numeric = false;
      } else if (std::floor(v) != v) {
        integral = false;
      }
      distinct.insert(cell);
    }
    if (numeric && (!integral || distinct.size() > 20)) return TaskKind::kRegression;
    return distinct.size() == 2 ? TaskKind::kBinary : TaskKind::kMulticlass;
  }

  // Class labels, sorted (numerically when every label is a number).
  static std::vector<std::string> Classes(const CsvTable& table, const std::vector<size_t>& rows,
                                          int col) {
    std::set<std::string> distinct;
    for (size_t r : rows) distinct.insert(table.rows[r][static_cast<size_t>(col)]);
    std::vector<std::string> classes(distinct.begin(), distinct.end());
    bool numeric = true;
    for (const std::string& c : classes) {
      double v = 0;
      numeric = numeric && ParseNumber(c, &v);
    }
    if (numeric) {
      std::sort(classes.begin(), classes.end(), [](const std::string& a, const std::string& b) {
        return std::stod(a) < std::stod(b);
      });
    }
    return classes;
  }

  struct Splits {
    std::vector<size_t> train, valid, test;
  };

  // Each class (or, for regression or stratify = false, the whole table) is shuffled with
  // the seed and cut: round(n * test_fraction) rows to test, round(n * valid_fraction) to
  // valid, the rest to train. Each split keeps the file's row order.
  static Splits Split(const Context& ctx, const CsvTable& table, const std::vector<size_t>& rows,
                      int target_col, TaskKind task) {
    const double test_fraction = ctx.Param<double>("test_fraction");
    const double valid_fraction = ctx.Param<double>("valid_fraction");
    if (test_fraction < 0 || valid_fraction < 0 || test_fraction + valid_fraction >= 1) {
      throw StepError("test_fraction and valid_fraction must be >= 0 and sum to less than 1");
    }
    std::map<std::string, std::vector<size_t>> groups;
    const bool stratify = task != TaskKind::kRegression && ctx.Param<bool>("stratify");
    for (size_t r : rows) {
      groups[stratify ? table.rows[r][static_cast<size_t>(target_col)] : ""].push_back(r);
    }
    sluice::ml::Random random(static_cast<uint64_t>(ctx.Param<int64_t>("seed")));
    Splits s;
    for (auto& [label, members] : groups) {
      random.Shuffle(members);
      const double n = static_cast<double>(members.size());
      const size_t n_test = static_cast<size_t>(std::lround(n * test_fraction));
      const size_t n_valid =
          std::min(static_cast<size_t>(std::lround(n * valid_fraction)), members.size() - n_test);
      for (size_t i = 0; i < members.size(); ++i) {
        (i < n_test ? s.test : i < n_test + n_valid ? s.valid : s.train).push_back(members[i]);
      }
    }
    for (auto* v : {&s.train, &s.valid, &s.test}) std::sort(v->begin(), v->end());
    return s;
  }

  static void WriteSplit(const std::filesystem::path& file, const CsvTable& table,
                         const std::vector<size_t>& rows, const std::vector<std::string>& features,
                         const std::string& target) {
    CsvTable out;
    out.header = features;
    out.header.push_back(target);
    std::vector<size_t> cols;
    for (const std::string& c : out.header) cols.push_back(static_cast<size_t>(table.Column(c)));
    for (size_t r : rows) {
      std::vector<std::string> row;
      row.reserve(cols.size());
      for (size_t c : cols) row.push_back(table.rows[r][c]);
      out.rows.push_back(std::move(row));
    }
    sluice::ml::WriteCsv(file, out);
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("dataprep", "1.0.0", "Data preparation for the ML pipeline");
  plugin.Add<Csv>("dataprep.csv", "Load, validate, split, scale and profile a CSV file")
      .Param("path", ParamType::kAny,
             "The CSV file (header row first), or a list of files with the same header; "
             "relative paths are relative to the DAG file's folder")
      .Param("target", ParamType::kString, "The label column")
      .Param("task", ParamType::kString, "auto, binary, multiclass or regression", "auto")
      .Param("features", ParamType::kArray, "Feature columns (default: all but target and drop)",
             nullptr)
      .Param("drop", ParamType::kArray, "Columns to leave out", json::array())
      .Param("categorical", ParamType::kArray,
             "Categorical columns (default: the features with a non-numeric value)", nullptr)
      .Param("schema", ParamType::kObject,
             "Checks before anything else: min_rows, required, columns.NAME.{type, min, max, "
             "allowed, nullable, required}",
             nullptr)
      .Param("test_fraction", ParamType::kNumber, "Share of each class held out for test", 0.2)
      .Param("valid_fraction", ParamType::kNumber,
             "Share of each class for validation (early stopping)", 0.1)
      .Param("stratify", ParamType::kBoolean, "Keep class shares equal across the splits", true)
      .Param("seed", ParamType::kInteger, "Seed of the split", 42)
      .Param("scaling", ParamType::kString, "standard, minmax or none", "standard")
      .Output("dataset", OutputKind::kDir,
              "train.csv, valid.csv, test.csv, preprocess.json, profile.json, meta.json")
      .Output("preprocess", OutputKind::kFile,
              "Imputation, scaling and encoding fitted on the training split")
      .Output("profile", OutputKind::kFile, "Per-column statistics of the training split");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
