// `manifold plan`: the (stage, platform) job graph a build would run.
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/read_file.h"
#include "common/dockerfile/instruction.h"
#include "common/dockerfile/parser.h"
#include "coordinator/plan/plan.h"

namespace manifold::cli {

namespace {

struct PlanFlags {
  std::string context = ".";
  std::string file;
  std::string platforms;
  bool platforms_set = false;
  std::string target;
  std::vector<std::string> build_args;
  bool json = false;
};

Expected<std::map<std::string, std::string>> ParseBuildArgs(const std::vector<std::string>& in) {
  std::map<std::string, std::string> out;
  for (const auto& a : in) {
    size_t eq = a.find('=');
    std::string key = a.substr(0, eq);
    if (key.empty())
      return MakeError(ErrorKind::kInvalidInput, "cli.build_arg", "invalid --build-arg \"" + a + "\": empty name");
    if (eq != std::string::npos) {
      out[key] = a.substr(eq + 1);
    } else if (const char* v = std::getenv(key.c_str())) {
      out[key] = v;  // `--build-arg K` takes K from the environment, as docker does
    }
  }
  return out;
}

Expected<std::string> RunPlan(const PlanFlags& f) {
  std::string path = f.file.empty() ? f.context + "/Dockerfile" : f.file;
  dockerfile::ParseLimits limits;
  MF_TRY(content, ReadSmallFile(path, limits.max_file_bytes));
  std::string name = f.file.empty() ? "Dockerfile" : f.file;
  MF_TRY(tree, dockerfile::Parse(content, name, limits));
  MF_TRY(df, dockerfile::ParseInstructions(tree));
  plan::PlanOptions opts;
  opts.build_platform = oci::NativePlatform();
  if (f.platforms_set) {
    MF_TRY(ps, oci::ParsePlatformList(f.platforms).With("--platform"));
    opts.platforms = ps;
  }
  opts.target = f.target;
  MF_TRY(args, ParseBuildArgs(f.build_args));
  opts.build_args = args;
  MF_TRY(p, plan::MakePlan(df, tree.escape, opts));
  return f.json ? plan::PlanToJson(p) : plan::PlanToText(p);
}

}  // namespace

void AddPlanCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("plan", "Show the (stage, platform) jobs a build would run");
  auto f = std::make_shared<PlanFlags>();
  cmd->add_option("CONTEXT", f->context, "Build context (default: .)");
  cmd->add_option("-f,--file", f->file, "Dockerfile (default: CONTEXT/Dockerfile)");
  cmd->add_option("--platform", f->platforms, "Target platforms, comma separated (default: this machine's)");
  cmd->add_option("--target", f->target, "Stage to build (default: the last)");
  cmd->add_option("--build-arg", f->build_args, "Build-time variable K=V (or K, from the environment)")
      ->allow_extra_args(false);
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, cmd, exit_code] {
    f->platforms_set = cmd->count("--platform") > 0;
    auto out = RunPlan(*f);
    if (!out.ok()) {
      PrintError(out.error());
      *exit_code = 1;
      return;
    }
    std::cout << *out;
  });
}

}  // namespace manifold::cli
