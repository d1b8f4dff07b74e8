#include "worker/executor/testing/fake_runtime.h"

namespace manifold::worker {

Expected<RunResult> FakeRuntime::Run(const RunRequest& request) {
  MF_TRY_VOID(ValidateContainerId(request.id));
  const std::string bundle = "/fake/bundles/" + request.id;
  MF_TRY(spec, BuildRuntimeSpec(
                   request.id, request.spec, policy_,
                   EtcFiles{bundle + "/resolv.conf", bundle + "/hosts", bundle + "/hostname"}));
  runs_.push_back(Recorded{request, std::move(spec)});

  std::string command;
  for (const std::string& a : request.spec.args) {
    if (!command.empty()) command += ' ';
    command += a;
  }
  for (const Script& s : scripts_) {
    if (command.find(s.needle) == std::string::npos) continue;
    if (s.outcome.ok() && request.on_output && !s.outcome->output_tail.empty()) {
      request.on_output(s.outcome->output_tail);
    }
    return s.outcome;
  }
  if (request.on_output && !default_output_.empty()) request.on_output(default_output_);
  return RunResult{0, default_output_, "", std::chrono::milliseconds(0)};
}

void FakeRuntime::FailOnCommand(std::string needle, int exit_code, std::string output) {
  scripts_.push_back(Script{std::move(needle), RunResult{exit_code, std::move(output), "",
                                                         std::chrono::milliseconds(0)}});
}

void FakeRuntime::ErrorOnCommand(std::string needle, Error error) {
  scripts_.push_back(Script{std::move(needle), std::move(error)});
}

}  // namespace manifold::worker
