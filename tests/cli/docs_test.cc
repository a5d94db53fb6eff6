// The examples in README.md and docs/*.md cannot rot (issue 17): every DAG in a ```toml block
// validates against the installed plugins (or, marked `<!-- doc-test: no-plugins -->`,
// without them), the ones marked `<!-- doc-test: run -->` run to success, and every `sluice`
// command line in a ```sh or ```console block names commands and options that exist.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "test_util.h"

namespace sluice {
namespace {

using testing::RunSluice;

struct Block {
  std::string file;
  int line = 0;        // of the opening fence
  std::string lang;    // toml, sh, console, ...
  std::string marker;  // the doc-test comment right above it, if any
  std::string text;
};

std::vector<std::string> DocFiles() {
  std::vector<std::string> files = {testing::SourcePath("README.md")};
  for (const auto& entry : std::filesystem::directory_iterator(testing::SourcePath("docs"))) {
    if (entry.path().extension() == ".md") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Block> Blocks(const std::string& file) {
  std::ifstream in(file);
  std::vector<Block> blocks;
  std::string line;
  std::string previous;
  int number = 0;
  std::optional<Block> open;
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("```", 0) == 0) {
      if (open) {
        blocks.push_back(std::move(*open));
        open.reset();
      } else {
        open = Block{file, number, line.substr(3), "", ""};
        if (previous.rfind("<!-- doc-test:", 0) == 0) open->marker = previous;
      }
    } else if (open) {
      open->text += line + "\n";
    }
    previous = line;
  }
  return blocks;
}

TEST_CASE("Docs.EveryDagValidatesAndTheMarkedOnesRun" * testing::Timeout(300)) {
  testing::TempDir dir;
  // Doc DAGs live in dags/ beside the shipped data: {{ dag.folder }}/../examples/data/...
  std::filesystem::create_directories(dir.file("dags"));
  std::filesystem::create_directory_symlink(testing::SourcePath("examples"), dir.file("examples"));
  int dags = 0;
  int runs = 0;
  for (const std::string& file : DocFiles()) {
    for (const Block& b : Blocks(file)) {
      if (b.lang != "toml" || b.text.find("[dag]") == std::string::npos) continue;
      const std::string where = file + ":" + std::to_string(b.line);
      CAPTURE(where);
      const std::string path = dir.file("dags/doc" + std::to_string(dags++) + ".toml");
      testing::WriteFile(path, b.text);
      std::vector<std::string> args = {"dag", "validate", path};
      if (b.marker.find("no-plugins") != std::string::npos) args.emplace_back("--no-plugins");
      const testing::CommandResult validated = RunSluice(args);
      CHECK_MESSAGE(validated.exit_code == 0, validated.out << validated.err);
      if (b.marker.find("doc-test: run") != std::string::npos) {
        ++runs;
        const testing::CommandResult run =
            RunSluice({"run", path, "--state-dir", dir.file("state" + std::to_string(runs))});
        CHECK_MESSAGE(run.exit_code == 0, run.out << run.err);
      }
    }
  }
  CHECK(dags >= 6);
  CHECK(runs >= 2);
}

// Every ```python block parses (Python's own ast, without running it).
TEST_CASE("Docs.EveryPythonBlockParses" * testing::Timeout(120)) {
  testing::TempDir dir;
  int blocks = 0;
  for (const std::string& file : DocFiles()) {
    for (const Block& b : Blocks(file)) {
      if (b.lang != "python") continue;
      const std::string where = file + ":" + std::to_string(b.line);
      CAPTURE(where);
      const std::string path = dir.file("block" + std::to_string(blocks++) + ".py");
      testing::WriteFile(path, b.text);
      const std::string command =
          "/usr/bin/python3 -c \"import ast, sys; "
          "ast.parse(open(sys.argv[1]).read(), sys.argv[1])\" " +
          path + " 2>&1";
      FILE* p = popen(command.c_str(), "r");
      REQUIRE(p != nullptr);
      std::string out;
      char buf[512];
      for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
      CHECK_MESSAGE(pclose(p) == 0, out);
    }
  }
  CHECK(blocks >= 3);
}

// The words of a shell line, up to the first that the shell would treat specially.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    if (w == "|" || w == "&&" || w == ";" || w == "#" || w[0] == '>' || w[0] == '<' || w == "\\" ||
        w == "&" || w == "||")
      break;
    words.push_back(w);
  }
  return words;
}

TEST_CASE("Docs.EveryCommandLineNamesCommandsAndOptionsThatExist" * testing::Timeout(300)) {
  std::map<std::string, std::string> help;  // "runs list" -> its --help
  auto help_of = [&](const std::string& path) -> const std::string& {
    auto it = help.find(path);
    if (it != help.end()) return it->second;
    std::vector<std::string> args;
    std::istringstream in(path);
    for (std::string w; in >> w;) args.push_back(w);
    args.emplace_back("--help");
    const testing::CommandResult r = RunSluice(args);
    const std::string usage = "Usage: sluice " + (path.empty() ? "" : path + " ");
    return help[path] = r.exit_code == 0 && r.out.find(usage) != std::string::npos ? r.out : "";
  };
  int lines = 0;
  int options = 0;
  for (const std::string& file : DocFiles()) {
    for (const Block& b : Blocks(file)) {
      if (b.lang != "sh" && b.lang != "console" && b.lang != "bash") continue;
      std::istringstream text(b.text);
      int offset = 0;
      for (std::string line; std::getline(text, line);) {
        ++offset;
        if (line.rfind("$ ", 0) == 0)
          line = line.substr(2);
        else if (b.lang == "console")
          continue;  // output, not a command
        std::vector<std::string> words = Words(line);
        if (words.empty()) continue;
        const std::string& program = words[0];
        if (program != "sluice" && program != "build/bin/sluice" &&
            program.find("/bin/sluice") == std::string::npos) {
          continue;
        }
        ++lines;
        const std::string where = file + ":" + std::to_string(b.line + offset) + ": " + line;
        CAPTURE(where);
        // The command: the longest run of words that --help knows as one.
        std::string path;
        size_t k = 1;
        for (; k < words.size() && words[k][0] != '-'; ++k) {
          const std::string longer = path.empty() ? words[k] : path + " " + words[k];
          if (help_of(longer).empty()) break;
          path = longer;
        }
        const std::string& own = help_of(path);
        CHECK_MESSAGE(!own.empty(), "no such command: sluice " << path);
        // A command that needs a subcommand got a word that is none.
        const bool needs_sub = own.find("Usage: sluice " + (path.empty() ? "" : path + " ") +
                                        "[OPTIONS] SUBCOMMAND") != std::string::npos;
        CHECK_MESSAGE(
            !(needs_sub && k < words.size() && words[k][0] != '-'),
            "no such command: sluice " << (path.empty() ? words[k] : path + " " + words[k]));
        for (size_t i = k; i < words.size(); ++i) {
          const std::string& w = words[i];
          if (w.rfind("--", 0) != 0 || w.size() < 3) continue;
          const std::string option = w.substr(0, w.find('='));
          ++options;
          const bool known = own.find(option) != std::string::npos ||
                             help_of("").find(option) != std::string::npos;
          CHECK_MESSAGE(known, "sluice " << path << " has no option " << option);
        }
      }
    }
  }
  CHECK(lines >= 50);
  CHECK(options >= 20);
  MESSAGE(lines << " command lines, " << options << " options checked");
}

}  // namespace
}  // namespace sluice
