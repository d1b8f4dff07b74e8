// A Runtime that runs nothing: it builds and records the spec each request
// would get (so entitlement and id checks apply on this path too, RELIABILITY
// A6) and answers with scripted results.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/executor/runtime.h"

namespace manifold::worker {

class FakeRuntime : public Runtime {
 public:
  struct Recorded {
    RunRequest request;
    nlohmann::json spec;  ///< what RuncRuntime would write as config.json
  };

  explicit FakeRuntime(ExecutorPolicy policy = {}) : policy_(std::move(policy)) {}

  /// Validates like RuncRuntime (BuildRuntimeSpec, with bundle files under
  /// /fake/bundles/<id>), records the request, sends the scripted output to
  /// on_output, and returns the first matching scripted outcome (exit 0 and
  /// no output when none matches). A request that fails validation is not
  /// recorded.
  Expected<RunResult> Run(const RunRequest& request) override;

  /// Requests whose args, joined with spaces, contain `needle` exit with
  /// `exit_code` after printing `output`.
  void FailOnCommand(std::string needle, int exit_code, std::string output = "");
  /// Requests whose args contain `needle` fail with `error` (a timeout, a
  /// runtime failure).
  void ErrorOnCommand(std::string needle, Error error);
  /// Output printed by requests that match no script.
  void SetDefaultOutput(std::string output) { default_output_ = std::move(output); }

  const std::vector<Recorded>& runs() const { return runs_; }

 private:
  struct Script {
    std::string needle;
    Expected<RunResult> outcome;
  };
  ExecutorPolicy policy_;
  std::vector<Script> scripts_;
  std::string default_output_;
  std::vector<Recorded> runs_;
};

}  // namespace manifold::worker
