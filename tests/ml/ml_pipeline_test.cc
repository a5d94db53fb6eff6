// The ML pipeline end to end: the real binary, real workers, the real dataprep, train,
// evaluate and deploy plugins on the real data sets in examples/data, checked against the
// issue's quality bars and against an independent implementation (scikit-learn, and the
// XGBoost Python package reading our model file) on the very same splits.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "sluice/artifacts.h"
#include "sluice/registry.h"
#include "sluice/state_store.h"
#include "sluice/tracking.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

// The last run of `dag` in `state`: its tracked data (see RunTracking) and its tries.
struct Finished {
  json tracking;
  std::map<std::string, TryRecord> tries;  // task -> latest try
};

Finished LastRun(const std::string& state, const std::string& dag) {
  auto store = StateStore::OpenReadOnly(state);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  std::vector<RunRecord> runs = testing::Must((*store)->ListRuns(dag, 1));
  REQUIRE(runs.size() == 1);
  Finished f;
  StatusOr<json> tracking = RunTracking(**store, runs[0], "");
  REQUIRE(tracking.ok());
  f.tracking = *tracking;
  for (TryRecord& t : testing::Must((*store)->ListTries(dag, runs[0].run_id)))
    f.tries[t.task_id] = std::move(t);
  return f;
}

double Last(const Finished& f, const std::string& task, const std::string& metric) {
  const json& summary = f.tracking["tasks"][task]["summary"];
  REQUIRE_MESSAGE(summary.contains(metric), task << " has no metric " << metric);
  return summary[metric]["last"].get<double>();
}

// Where a try's output lives in the artifact store.
std::string OutputPath(const std::string& state, const Finished& f, const std::string& task,
                       const std::string& output) {
  const json& out = f.tries.at(task).outputs.at(output);
  return ArtifactStore(ArtifactStore::RootFor(state))
      .PathOf(out["artifact"].get<std::string>(), out.value("kind", "dir"))
      .string();
}

std::string Dag(const std::string& name) { return testing::SourcePath("dags/" + name); }

// Runs a reference script with /usr/bin/python3 (where Debian's scikit-learn is); its JSON.
json RunReference(const std::string& script_and_args) {
  const std::string command = "/usr/bin/python3 " + script_and_args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string text;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) text.append(buf, n);
  const int status = pclose(pipe);
  REQUIRE_MESSAGE(WIFEXITED(status), text);
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, text);
  return json::parse(text);
}

// Runs tests/ml/reference.py on the last run's dataset and models.
json Reference(const std::string& state, const Finished& f) {
  return RunReference(testing::SourcePath("tests/ml/reference.py") + " " +
                      OutputPath(state, f, "prepare", "dataset") + " " +
                      OutputPath(state, f, "train_logistic", "model") + " " +
                      OutputPath(state, f, "train_xgboost", "model"));
}

void CheckAgainstReference(const std::string& state, const Finished& f) {
  const json ref = Reference(state, f);
  INFO("reference: " << ref.dump());
  // Our Newton solution and scikit-learn's L-BFGS reach the same optimum.
  CHECK(ref["logistic"]["coef_max_diff"].get<double>() < 1e-3);
  for (const char* model : {"logistic", "xgboost"}) {
    const std::string task = std::string("evaluate_") + model;
    for (const char* metric : {"accuracy", "auc", "f1_macro"}) {
      CHECK_MESSAGE(
          Last(f, task, metric) == doctest::Approx(ref[model][metric].get<double>()).epsilon(1e-6),
          task << " " << metric);
    }
    CHECK(Last(f, task, "logloss") ==
          doctest::Approx(ref[model]["logloss"].get<double>()).epsilon(1e-3));
  }
}

TEST_CASE("MlPipeline.BreastCancer.QualityBarsReferenceAndPromotion" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::CommandResult r = RunSluice({"run", Dag("breast_cancer.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("METRIC") != std::string::npos);
  // What the table leaves out is named as what it is (it said "learning curves and per-class
  // figures" of every dotted name).
  CHECK(r.out.find(" logged per step, ") != std::string::npos);
  CHECK(r.out.find(" with dotted names such as ") != std::string::npos);
  CHECK(r.out.find("model breast_cancer: 1 version, production = v1") != std::string::npos);

  Finished f = LastRun(state, "breast_cancer");
  for (const char* task : {"evaluate_xgboost", "evaluate_logistic"}) {
    CHECK_MESSAGE(Last(f, task, "auc") >= 0.98, task);
    CHECK_MESSAGE(Last(f, task, "accuracy") >= 0.95, task);
  }
  CHECK(Last(f, "prepare", "rows_test") == 113);  // 20% of each class: 71 benign + 42 malignant
  CheckAgainstReference(state, f);
  // XGBoost logged its learning curve, one point per round.
  CHECK(f.tries.at("train_xgboost").metrics.dump().find("valid.logloss") != std::string::npos);

  // Again: data, training and evaluation come from the cache, and deploy sees the model
  // that already holds production; nothing new is registered.
  r = RunSluice({"run", Dag("breast_cancer.toml"), "--state-dir", state});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("cached from run") != std::string::npos);
  CHECK(r.out.find("model breast_cancer: 1 version, production = v1") != std::string::npos);

  // Another split and a bar no model can clear: v2 is registered, production stays at v1,
  // and deploy ends as skipped with the gate and the figures.
  r = RunSluice({"run", Dag("breast_cancer.toml"), "--state-dir", state, "-p", "seed=7", "-p",
                 "min_auc=1.01"});
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  f = LastRun(state, "breast_cancer");
  CHECK(f.tries.at("deploy").state == TaskState::kSkipped);
  CHECK(f.tries.at("deploy").reason.find("registered breast_cancer v2 but kept production at v1") !=
        std::string::npos);
  CHECK(f.tries.at("deploy").reason.find("auc = ") != std::string::npos);
  CHECK(r.out.find("model breast_cancer: 2 versions, production = v1") != std::string::npos);
  // The summary shows the whole note, gate and figures included (it was cut at ~80 columns).
  CHECK(r.out.find("kept production at v1: gate \"auc >= 1.01") != std::string::npos);
}

// The step cache keys on what a step computes, not on where the checkout is: the same DAG
// and data in a copied folder reuse every cached result. The key used to hold the absolute
// path that {{ dag.folder }} renders to, so a copy cached nothing; and the evaluations, which
// docs/ml-pipeline.md says are cached, had no cache = true.
TEST_CASE("MlPipeline.BreastCancer.ACopiedCheckoutHitsTheCache" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string copy = dir.file("checkout");
  std::filesystem::create_directories(copy + "/dags");
  std::filesystem::create_directories(copy + "/examples/data");
  std::filesystem::copy_file(Dag("breast_cancer.toml"), copy + "/dags/breast_cancer.toml");
  std::filesystem::copy_file(testing::SourcePath("examples/data/breast_cancer_wisconsin.csv"),
                             copy + "/examples/data/breast_cancer_wisconsin.csv");
  testing::CommandResult r = RunSluice({"run", Dag("breast_cancer.toml"), "--state-dir", state});
  REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  r = RunSluice({"run", copy + "/dags/breast_cancer.toml", "--state-dir", state});
  REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  const Finished f = LastRun(state, "breast_cancer");
  for (const char* task :
       {"prepare", "train_xgboost", "train_logistic", "evaluate_xgboost", "evaluate_logistic"}) {
    CHECK_MESSAGE(!f.tries.at(task).cached_from.is_null(), std::string(task) << " ran again:\n"
                                                                             << r.out);
  }
}

TEST_CASE("MlPipeline.Wine.MulticlassQualityBarAndReference" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::CommandResult r = RunSluice({"run", Dag("wine_multiclass.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  Finished f = LastRun(state, "wine_multiclass");
  for (const char* task : {"evaluate_xgboost", "evaluate_logistic"}) {
    CHECK_MESSAGE(Last(f, task, "accuracy") >= 0.93, task);
  }
  CheckAgainstReference(state, f);
}

// Issue 16's example: the Wine pipeline in Python end to end. Its metrics equal scikit-learn's
// own on the same split (tests/ml/wine_sklearn_reference.py, written apart from the steps);
// the better model is registered and in production; a second run with the same code and data
// is served from the cache and registers nothing new; a worse split does not reach production.
TEST_CASE("MlPipeline.WineSklearn.PythonEndToEndEqualsScikitLearn" * testing::Timeout(180)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::CommandResult r = RunSluice({"run", Dag("wine_sklearn.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  Finished f = LastRun(state, "wine_sklearn");
  const json ref = RunReference(testing::SourcePath("tests/ml/wine_sklearn_reference.py") + " " +
                                testing::SourcePath("examples/data/wine.csv"));
  INFO("reference: " << ref.dump());
  CHECK(Last(f, "prepare", "rows_train") == ref["rows_train"].get<double>());
  CHECK(Last(f, "prepare", "rows_test") == ref["rows_test"].get<double>());
  for (const char* model : {"logistic", "forest"}) {
    const std::string task = std::string("evaluate_") + model;
    for (const char* metric : {"accuracy", "f1_macro", "log_loss"}) {
      CHECK_MESSAGE(
          Last(f, task, metric) == doctest::Approx(ref[model][metric].get<double>()).epsilon(1e-12),
          task << " " << metric);
    }
    // The value output the deploy step gated on is the same figure.
    CHECK(f.tries.at(task).outputs.at("metrics")["value"]["log_loss"].get<double>() ==
          doctest::Approx(ref[model]["log_loss"].get<double>()).epsilon(1e-12));
  }
  // The forest's out-of-bag learning curve, one point per 20 trees.
  const json& curve = f.tracking["tasks"]["train_forest"]["summary"]["oob_accuracy"];
  CHECK(curve["count"] == 10);

  // The better (higher accuracy, then lower log loss) is v1, in production.
  const std::string better =
      ref["logistic"]["accuracy"].get<double>() > ref["forest"]["accuracy"].get<double>() ||
              (ref["logistic"]["accuracy"] == ref["forest"]["accuracy"] &&
               ref["logistic"]["log_loss"].get<double>() <= ref["forest"]["log_loss"].get<double>())
          ? "train_logistic"
          : "train_forest";
  {
    auto store = testing::Must(StateStore::OpenReadOnly(state));
    ModelRegistry registry(store.get());
    const ModelVersion v = testing::Must(registry.Resolve("wine_sklearn", "production"));
    CHECK(v.version == 1);
    CHECK(v.task_id == better);
    CHECK(v.tags.value("flavor", "") == "python");
    CHECK(v.metrics["log_loss"].get<double>() ==
          doctest::Approx(
              ref[better == "train_logistic" ? "logistic" : "forest"]["log_loss"].get<double>())
              .epsilon(1e-12));
  }
  CHECK(r.out.find("query it: curl") != std::string::npos);  // the card's example row

  // Again: prepare and both trainers come from the cache; nothing new is registered.
  r = RunSluice({"run", Dag("wine_sklearn.toml"), "--state-dir", state});
  REQUIRE(r.exit_code == 0);
  f = LastRun(state, "wine_sklearn");
  for (const char* task : {"prepare", "train_logistic", "train_forest"}) {
    CHECK_MESSAGE(!f.tries.at(task).cached_from.empty(), task);
  }
  // Another split behind an impossible gate: registered as v2, production stays v1.
  r = RunSluice({"run", Dag("wine_sklearn.toml"), "--state-dir", state, "-p", "seed=7", "-p",
                 "min_accuracy=1.01"});
  REQUIRE(r.exit_code == 0);
  auto store = testing::Must(StateStore::OpenReadOnly(state));
  ModelRegistry registry(store.get());
  CHECK(testing::Must(registry.GetModel("wine_sklearn")).latest_version == 2);
  CHECK(testing::Must(registry.Resolve("wine_sklearn", "production")).version == 1);
}

TEST_CASE("MlPipeline.Dataprep.SchemaReportNamesRowsAndColumns" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("data.csv"),
                     "size,color,label\n"
                     "1.5,red,yes\n"
                     "-2,blue,no\n"
                     "abc,red,yes\n"
                     "3,green,maybe\n"
                     ",red,no\n");
  testing::WriteFile(dir.file("d.toml"), R"(
[dag]
id = "schema"
[[task]]
id = "prepare"
plugin = "dataprep.csv"
params = { path = "{{ dag.folder }}/data.csv", target = "label", schema = { min_rows = 10, columns = { size = { type = "number", min = 0, nullable = false }, label = { allowed = ["yes", "no"] } } } }
)");
  testing::CommandResult r = RunSluice({"run", dir.file("d.toml"), "--state-dir", dir.file("s")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  Finished f = LastRun(dir.file("s"), "schema");
  const std::string& reason = f.tries.at("prepare").reason;
  INFO(reason);
  CHECK(reason.find("does not match the schema: 4 bad rows") != std::string::npos);
  CHECK(reason.find("the file has 5 rows; the schema asks for at least 10") != std::string::npos);
  CHECK(reason.find("column \"size\": below min 0 (1 row, line 3)") != std::string::npos);
  CHECK(reason.find("column \"size\": not a number (1 row, line 4)") != std::string::npos);
  CHECK(reason.find("column \"size\": missing value (nullable = false) (1 row, line 6)") !=
        std::string::npos);
  CHECK(reason.find("column \"label\": value not in allowed [\"yes\",\"no\"] (1 row, line 5)") !=
        std::string::npos);
}

TEST_CASE("MlPipeline.Deploy.GateTypoIsAnErrorNotASkip" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string dag = testing::ReadFile(Dag("breast_cancer.toml"));
  const std::string gate = "\"auc >= production.auc - 0.002\"";
  const size_t at = dag.find(gate);
  REQUIRE(at != std::string::npos);
  std::string typo = dag;
  typo.replace(at, gate.size(), "\"aucc >= 0.9\"");
  // Next to the original, so that {{ dag.folder }} finds examples/data.
  const std::string file = testing::SourcePath("dags/.typo_test.toml");
  testing::WriteFile(file, typo);
  testing::CommandResult r = RunSluice({"run", file, "--state-dir", dir.file("s")});
  std::filesystem::remove(file);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  Finished f = LastRun(dir.file("s"), "breast_cancer");
  CHECK(f.tries.at("deploy").state == TaskState::kFailed);
  CHECK(f.tries.at("deploy").reason.find("gate \"aucc >= 0.9\" names aucc") != std::string::npos);
}

TEST_CASE("MlPipeline.DriftWatch.RetrainsOnDriftOnly" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  // Nothing to watch yet: a clear failure, not a crash.
  testing::CommandResult r = RunSluice({"run", Dag("drift_watch.toml"), "--state-dir", state});
  CHECK(r.exit_code == 1);
  Finished f = LastRun(state, "drift_watch");
  CHECK(f.tries.at("check").reason.find("no version of model \"breast_cancer\" holds "
                                        "\"production\"") != std::string::npos);

  REQUIRE(RunSluice({"run", Dag("breast_cancer.toml"), "--state-dir", state, "-q"}).exit_code == 0);
  r = RunSluice({"run", Dag("drift_watch.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  f = LastRun(state, "drift_watch");
  const json drifted = f.tries.at("check").outputs.at("drifted_features")["value"];
  // examples/data/make_batches.py rescales exactly these seven measures.
  CHECK(drifted == json::parse(R"(["area_mean", "area_worst", "perimeter_mean",
      "perimeter_worst", "radius_mean", "radius_worst", "texture_mean"])"));
  CHECK(f.tries.at("check").outputs.at("drifted")["value"] == true);
  CHECK(Last(f, "check", "psi.smoothness_mean") < 0.1);
  CHECK(Last(f, "check", "psi.area_mean") > 0.25);
  for (const char* task : {"prepare", "train_xgboost", "evaluate_logistic"}) {
    CHECK_MESSAGE(f.tries.at(task).state == TaskState::kSuccess, task);
  }
  CHECK(Last(f, "prepare", "rows") == 569 + 120);  // the original data and the batch
  CHECK(f.tries.at("deploy").state != TaskState::kFailed);

  r = RunSluice({"run", Dag("drift_watch.toml"), "--state-dir", state, "-p",
                 "batch=breast_cancer_batch_stable.csv"});
  REQUIRE(r.exit_code == 0);
  f = LastRun(state, "drift_watch");
  CHECK(f.tries.at("check").outputs.at("drifted")["value"] == false);
  CHECK(f.tries.at("prepare").state == TaskState::kSkipped);
  CHECK(f.tries.at("deploy").state == TaskState::kSkipped);
}

// Synthetic data with what the real sets lack: a categorical column, missing values, a
// numeric target. y = 2 * size + 3 * [color = red] + noise.
std::string SyntheticCsv(int rows, double red_share, unsigned seed) {
  std::string csv = "size,color,y\n";
  unsigned state = seed;
  auto next = [&] {
    state = state * 1103515245u + 12345u;
    return static_cast<double>((state >> 8) & 0xffff) / 65536.0;
  };
  for (int i = 0; i < rows; ++i) {
    const double size = 10 * next();
    const double pick = next();
    const std::string color = pick < red_share             ? "red"
                              : pick < (1 + red_share) / 2 ? "blue"
                                                           : "green";
    const double y = 2 * size + (color == "red" ? 3 : 0) + 0.1 * (next() - 0.5);
    const bool hide_size = i % 17 == 3;
    const bool hide_color = i % 23 == 5;
    csv += (hide_size ? std::string() : std::to_string(size)) + "," +
           (hide_color ? std::string("NA") : color) + "," + std::to_string(y) + "\n";
  }
  return csv;
}

TEST_CASE("MlPipeline.Regression.CategoricalMissingValuesAndCategoricalDrift" *
          testing::Timeout(120)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("train.csv"), SyntheticCsv(400, 1.0 / 3, 1));
  testing::WriteFile(dir.file("batch.csv"), SyntheticCsv(200, 0.8, 2));  // mostly red now
  testing::WriteFile(dir.file("d.toml"), R"(
[dag]
id = "synthetic"
[[task]]
id = "prepare"
plugin = "dataprep.csv"
params = { path = "{{ dag.folder }}/train.csv", target = "y" }
[[task]]
id = "train_xgboost"
plugin = "train.xgboost"
inputs = { dataset = "prepare.dataset" }
params = { rounds = 200, max_depth = 3, eta = 0.2 }
[[task]]
id = "evaluate"
plugin = "evaluate.regressor"
inputs = { model = "train_xgboost.model", dataset = "prepare.dataset" }
[[task]]
id = "deploy"
plugin = "deploy.promote"
inputs = { model = "train_xgboost.model", metrics = "evaluate.metrics" }
params = { model = "synthetic", gates = ["r2 >= 0.9"] }
[[task]]
id = "drift"
plugin = "monitor.drift"
depends_on = ["deploy"]
params = { model = "synthetic", path = "{{ dag.folder }}/batch.csv" }
)");
  const std::string state = dir.file("s");
  testing::CommandResult r = RunSluice({"run", dir.file("d.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  Finished f = LastRun(state, "synthetic");
  const json meta =
      json::parse(testing::ReadFile(OutputPath(state, f, "prepare", "dataset") + "/meta.json"));
  CHECK(meta["task"] == "regression");
  CHECK(meta["categorical"] == json::array({"color"}));
  CHECK(Last(f, "prepare", "missing_cells") > 0);
  CHECK(Last(f, "evaluate", "r2") > 0.95);
  CHECK(Last(f, "evaluate", "rmse") < 1.0);
  CHECK(r.out.find("model synthetic: 1 version, production = v1") != std::string::npos);
  // The colour mix moved (a third red -> 80% red); sizes did not.
  CHECK(f.tries.at("drift").outputs.at("drifted_features")["value"] == json::array({"color"}));
  CHECK(Last(f, "drift", "chi2_p.color") < 1e-6);
  CHECK(Last(f, "drift", "psi.size") < 0.1);
}

}  // namespace
}  // namespace sluice
