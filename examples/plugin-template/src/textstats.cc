// textstats: an example Sluice plugin with one step, `textstats.count`, which counts the
// lines, words and bytes of a text file (an input from an upstream task, or a path param)
// and publishes the counts as outputs and metrics.
#include <sluice/step.h>

#include <fstream>
#include <sstream>

namespace {

using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;

class Count : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    // An input wins over the `path` param, so the step works alone and inside a pipeline.
    const std::filesystem::path path =
        ctx.HasInput("text") ? ctx.InputPath("text") : ctx.DagPath(ctx.Param<std::string>("path"));
    std::ifstream in(path);
    if (!in) throw sluice::sdk::StepError("cannot read " + path.string());

    long lines = 0, words = 0, bytes = 0;
    std::string line;
    while (std::getline(in, line)) {
      ctx.CheckCancelled();
      ++lines;
      bytes += static_cast<long>(line.size()) + 1;
      std::istringstream split(line);
      for (std::string word; split >> word;) ++words;
    }
    const long min_words = ctx.Param<long>("min_words");
    if (words < min_words) {
      ctx.Skip("only " + std::to_string(words) +
               " words, fewer than min_words = " + std::to_string(min_words));
    }
    ctx.Info(path.filename().string() + ": " + std::to_string(lines) + " lines, " +
             std::to_string(words) + " words");
    ctx.Metric("lines", static_cast<double>(lines));
    ctx.Metric("words", static_cast<double>(words));
    ctx.OutputValue("counts", {{"lines", lines}, {"words", words}, {"bytes", bytes}});

    // A file output: a one-line report next to the try.
    const std::filesystem::path report = ctx.output_dir() / "report.txt";
    std::ofstream(report) << lines << " " << words << " " << bytes << "\n";
    ctx.OutputFile("report", report);
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("textstats", "1.0.0", "Counts things in text files");
  plugin.Add<Count>("textstats.count", "Counts lines, words and bytes of a text file")
      .Param("path", ParamType::kString, "File to read when no `text` input is given", "")
      .Param("min_words", ParamType::kInteger, "Skip (not fail) when the file has fewer words", 0)
      .Input("text", "A text file from an upstream task", /*required=*/false)
      .Output("counts", OutputKind::kValue, "{lines, words, bytes}")
      .Output("report", OutputKind::kFile, "The counts as one line of text");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
