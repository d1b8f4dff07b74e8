#include "worker/build/config_step.h"

#include "common/fs/path.h"

namespace manifold::worker {
namespace {

using dockerfile::Cmd;

std::vector<std::string> ShellWrapped(const oci::ImageConfig& config, const dockerfile::Instruction& in) {
  auto argv = ShellOf(config);
  argv.push_back(Join(in.args));
  return argv;
}

std::string JsonList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    out += (i ? " " : "");
    out += "\"" + v[i] + "\"";
  }
  return out + "]";
}

}  // namespace

std::string EnvValue(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return {};
}

void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

std::vector<std::string> ShellOf(const oci::ImageConfig& c) {
  if (!c.config.shell.empty()) return c.config.shell;
  return {"/bin/sh", "-c"};
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

void TrackArgs(const dockerfile::Instruction& in,
               const std::map<std::string, std::string>& build_args,
               std::map<std::string, std::string>& args) {
  if (in.cmd != Cmd::kArg) return;
  for (const auto& d : in.arg_decls) {
    auto it = build_args.find(d.name);
    if (it != build_args.end()) args[d.name] = it->second;
    else if (d.value) args[d.name] = *d.value;
    else args.erase(d.name);
  }
}

Expected<std::string> ApplyMetadata(const dockerfile::Instruction& in,
                                    const std::map<std::string, std::string>& build_args,
                                    oci::ImageConfig& config, std::map<std::string, std::string>& args,
                                    bool& cmd_set) {
  auto& c = config.config;
  switch (in.cmd) {
    case Cmd::kEnv: {
      std::string by = "ENV";
      for (const auto& kv : in.kvs) {
        SetEnv(c.env, kv.key, kv.value);
        by += " " + kv.key + "=" + kv.value;
      }
      return by;
    }
    case Cmd::kLabel: {
      std::string by = "LABEL";
      for (const auto& kv : in.kvs) {
        c.labels[kv.key] = kv.value;
        by += " " + kv.key + "=" + kv.value;
      }
      return by;
    }
    case Cmd::kArg: {
      TrackArgs(in, build_args, args);
      std::string by = "ARG";
      for (const auto& d : in.arg_decls) {
        by += " " + d.name;
        auto it = args.find(d.name);
        if (it != args.end()) by += "=" + it->second;
      }
      return by;
    }
    case Cmd::kExpose: {
      for (std::string p : in.args) {
        if (p.find('/') == std::string::npos) p += "/tcp";
        c.exposed_ports.insert(p);
      }
      return "EXPOSE map[" + Join(in.args) + "]";
    }
    case Cmd::kVolume: {
      for (const auto& v : in.args) c.volumes.insert(v);
      return "VOLUME " + Join(in.args);
    }
    case Cmd::kUser:
      c.user = in.args.empty() ? "" : in.args[0];
      return "USER " + c.user;
    case Cmd::kWorkdir: {
      std::string w = in.args.empty() ? "/" : in.args[0];
      if (w.empty() || w[0] != '/') {
        std::string base = c.working_dir.empty() ? "/" : c.working_dir;
        w = base + (base.back() == '/' ? "" : "/") + w;
      }
      c.working_dir = fs::CleanRootedPath(w);
      return "WORKDIR " + c.working_dir;
    }
    case Cmd::kCmd:
      c.cmd = in.prepend_shell ? ShellWrapped(config, in) : in.args;
      cmd_set = true;
      return "CMD " + JsonList(*c.cmd);
    case Cmd::kEntrypoint:
      c.entrypoint = in.prepend_shell ? ShellWrapped(config, in) : in.args;
      if (!cmd_set) c.cmd.reset();
      return "ENTRYPOINT " + JsonList(*c.entrypoint);
    case Cmd::kShell:
      c.shell = in.args;
      return "SHELL " + JsonList(in.args);
    case Cmd::kHealthcheck: {
      oci::HealthCheck h;
      h.test = in.health_test;
      h.interval_ns = in.interval_ns;
      h.timeout_ns = in.timeout_ns;
      h.start_period_ns = in.start_period_ns;
      h.start_interval_ns = in.start_interval_ns;
      h.retries = in.retries;
      c.healthcheck = h;
      return "HEALTHCHECK " + JsonList(in.health_test);
    }
    case Cmd::kStopsignal:
      c.stop_signal = in.args.empty() ? "" : in.args[0];
      return "STOPSIGNAL " + c.stop_signal;
    case Cmd::kOnbuild:
      c.on_build.push_back(in.onbuild_expression);
      return "ONBUILD " + in.onbuild_expression;
    case Cmd::kMaintainer:
      config.author = in.args.empty() ? "" : in.args[0];
      return "MAINTAINER " + config.author;
    default:
      break;
  }
  return MakeError(ErrorKind::kInternal, "step.unexpected",
                   std::string("not a metadata instruction: ") + dockerfile::CmdName(in.cmd));
}

}  // namespace manifold::worker
