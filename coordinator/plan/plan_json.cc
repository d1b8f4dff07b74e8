// JSON and text renderings of a plan (`manifold plan`).
#include <nlohmann/json.hpp>

#include "common/base/ascii.h"

#include "coordinator/plan/plan.h"

namespace manifold::plan {

namespace {

using dockerfile::Cmd;
using dockerfile::Instruction;
using nlohmann::ordered_json;

std::string Duration(int64_t ns) {
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  return std::to_string(ns) + "ns";
}

// Flags in canonical `--name=value` form.
std::vector<std::string> Flags(const Instruction& in) {
  std::vector<std::string> f;
  auto s = [&](const char* n, const std::string& v) {
    if (!v.empty()) f.push_back(std::string("--") + n + "=" + v);
  };
  switch (in.cmd) {
    case Cmd::kFrom: s("platform", in.platform); break;
    case Cmd::kRun:
      for (const auto& m : in.mounts) f.push_back("--mount=" + m);
      s("network", in.network);
      s("security", in.security);
      break;
    case Cmd::kCopy:
    case Cmd::kAdd:
      s("from", in.from);
      s("chown", in.chown);
      s("chmod", in.chmod);
      s("checksum", in.checksum);
      if (in.link) f.push_back("--link");
      if (in.parents) f.push_back("--parents");
      if (in.keep_git_dir) f.push_back("--keep-git-dir");
      for (const auto& e : in.excludes) f.push_back("--exclude=" + e);
      break;
    case Cmd::kHealthcheck:
      if (in.interval_ns) s("interval", Duration(in.interval_ns));
      if (in.timeout_ns) s("timeout", Duration(in.timeout_ns));
      if (in.start_period_ns) s("start-period", Duration(in.start_period_ns));
      if (in.start_interval_ns) s("start-interval", Duration(in.start_interval_ns));
      if (in.retries) s("retries", std::to_string(in.retries));
      break;
    default:
      break;
  }
  return f;
}

ordered_json Args(const Instruction& in) {
  ordered_json a = ordered_json::array();
  switch (in.cmd) {
    case Cmd::kEnv:
    case Cmd::kLabel:
      for (const auto& kv : in.kvs) a.push_back({{"key", kv.key}, {"value", kv.value}});
      break;
    case Cmd::kArg:
      for (const auto& d : in.arg_decls) {
        ordered_json o = {{"name", d.name}};
        o["value"] = d.value ? ordered_json(*d.value) : ordered_json(nullptr);
        a.push_back(o);
      }
      break;
    case Cmd::kCopy:
    case Cmd::kAdd:
      for (const auto& s : in.args) a.push_back(s);
      for (const auto& h : in.heredoc_sources) a.push_back("<<" + h.name);
      a.push_back(in.dest);
      break;
    case Cmd::kHealthcheck:
      for (const auto& t : in.health_test) a.push_back(t);
      break;
    case Cmd::kOnbuild:
      a.push_back(in.onbuild_expression);
      break;
    default:
      for (const auto& s : in.args) a.push_back(s);
  }
  return a;
}

ordered_json InstructionJson(const Instruction& in) {
  ordered_json j;
  j["cmd"] = AsciiLower(dockerfile::CmdName(in.cmd));
  j["line"] = in.line;
  j["flags"] = Flags(in);
  j["args"] = Args(in);
  if (in.cmd == Cmd::kRun || in.cmd == Cmd::kCmd || in.cmd == Cmd::kEntrypoint)
    j["shell_form"] = in.prepend_shell;
  if (!in.files.empty()) {
    ordered_json files = ordered_json::array();
    for (const auto& h : in.files) files.push_back({{"name", h.name}, {"content", h.content}});
    j["heredocs"] = files;
  }
  if (!in.heredoc_sources.empty()) {
    ordered_json files = ordered_json::array();
    for (const auto& h : in.heredoc_sources) files.push_back({{"name", h.name}, {"content", h.data}});
    j["heredocs"] = files;
  }
  return j;
}

std::string Dump(const ordered_json& j) {
  return j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

std::string PlanToJson(const Plan& plan) {
  ordered_json j;
  j["target"] = plan.target_stage;
  j["jobs"] = ordered_json::array();
  for (const auto& job : plan.jobs) {
    ordered_json o;
    o["id"] = job.id;
    o["stage"] = job.stage;
    o["platform"] = job.platform.ToString();
    o["target_platform"] = job.target_platform.ToString();
    o["base"] = job.base_job.empty() ? job.base : "stage:" + job.base_job;
    o["depends_on"] = job.depends_on;
    ordered_json ins = ordered_json::array();
    for (const auto& in : job.instructions) ins.push_back(InstructionJson(in));
    o["instructions"] = ins;
    j["jobs"].push_back(o);
  }
  j["warnings"] = plan.warnings;
  return Dump(j) + "\n";
}

std::string PlanToText(const Plan& plan) {
  std::string out;
  for (const auto& job : plan.jobs) {
    out += "job " + job.id + "  (stage " + job.stage + ", " + job.platform.ToString();
    if (!(job.platform == job.target_platform)) out += " for " + job.target_platform.ToString();
    out += ")\n";
    out += "  from " + (job.base_job.empty() ? job.base : "stage:" + job.base_job) + "\n";
    if (!job.depends_on.empty()) {
      out += "  after";
      for (const auto& d : job.depends_on) out += " " + d;
      out += "\n";
    }
    for (const auto& in : job.instructions) {
      out += "  " + std::to_string(in.line) + ": " + dockerfile::CmdName(in.cmd);
      for (const auto& f : Flags(in)) out += " " + f;
      auto a = Args(in);
      bool exec_form = (in.cmd == Cmd::kRun || in.cmd == Cmd::kCmd || in.cmd == Cmd::kEntrypoint ||
                        in.cmd == Cmd::kShell) && !in.prepend_shell;
      if (exec_form) {
        out += " " + a.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
        continue;
      }
      for (const auto& v : a) {
        if (v.is_string()) out += " " + v.get<std::string>();
        else if (v.contains("key")) out += " " + v["key"].get<std::string>() + "=" + v["value"].get<std::string>();
        else if (v["value"].is_null()) out += " " + v["name"].get<std::string>();
        else out += " " + v["name"].get<std::string>() + "=" + v["value"].get<std::string>();
      }
      out += "\n";
    }
  }
  for (const auto& w : plan.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace manifold::plan
