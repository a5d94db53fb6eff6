// Serves a Python model folder (docs/python-steps.md#serving): one Python process per loaded
// model version, started in the serving worker's process group, answering one JSON line per
// request (sdk/python/sluice/_serve.py).
#ifndef SLUICE_PLUGINS_PYTHON_PYTHON_PREDICTOR_H_
#define SLUICE_PLUGINS_PYTHON_PYTHON_PREDICTOR_H_

#include <sluice/step.h>
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace sluice::python {

class PythonPredictor : public sdk::Predictor {
 public:
  // Starts Python on the folder and waits until it has imported the predictor and warmed it
  // up; throws std::runtime_error with Python's reason (its traceback is in the log).
  explicit PythonPredictor(const std::filesystem::path& dir);
  ~PythonPredictor() override;
  PythonPredictor(const PythonPredictor&) = delete;
  PythonPredictor& operator=(const PythonPredictor&) = delete;

  // A Python process that died (a crash, os._exit) costs the request it held; the next one
  // starts it again.
  nlohmann::json Predict(const nlohmann::json& request) override;

 private:
  void Start();
  void Stop();
  // One line from Python, without its newline; false at end of stream.
  bool ReadLine(std::string* line);

  std::filesystem::path dir_;
  std::filesystem::path python_;
  std::filesystem::path sdk_;
  pid_t pid_ = -1;
  int fd_ = -1;         // our end of the socket pair: requests out, answers in
  std::string buffer_;  // read past the last line
};

}  // namespace sluice::python

#endif  // SLUICE_PLUGINS_PYTHON_PYTHON_PREDICTOR_H_
