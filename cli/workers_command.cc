// `manifold workers [rm|drain ID]`, `manifold builds [cancel N]` and
// `manifold client-key`: the farm from
// the operator's side (issue 6).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "coordinator/build/remote_build.h"

namespace manifold::cli {
namespace {

struct FarmFlags {
  std::string coordinator, token, coordinator_key;
  std::vector<std::string> args;
};

/// The flags every operator command takes: which farm, and how to prove it.
std::shared_ptr<FarmFlags> AddFarmFlags(CLI::App* cmd, const std::string& args_help) {
  auto f = std::make_shared<FarmFlags>();
  cmd->add_option("ARGS", f->args, args_help);
  cmd->add_option("--coordinator", f->coordinator, "HOST:PORT of manifold-coordinator (or MANIFOLD_COORDINATOR)");
  cmd->add_option("--token", f->token, "The farm's join token (or MANIFOLD_TOKEN)");
  cmd->add_option("--coordinator-key", f->coordinator_key, "The coordinator's public key (with allow-client)");
  return f;
}

/// The farm the flags name; nullopt (exit 2, said why) without one.
std::optional<coordinator::RemoteTarget> TargetOf(const FarmFlags& f, int* exit_code) {
  auto target = RemoteTargetFrom(f.coordinator, f.token, f.coordinator_key);
  if (!target.address.empty()) return target;
  std::cerr << "error: no --coordinator (or MANIFOLD_COORDINATOR)\n";
  *exit_code = 2;
  return std::nullopt;
}

std::string Bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1fG", static_cast<double>(b) / (1ull << 30));
  else std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(b) / (1ull << 20));
  return buf;
}

}  // namespace

void AddWorkersCommands(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("workers", "List the farm's workers, or drain or remove one");
  auto f = AddFarmFlags(cmd, "nothing (list), rm ID, or drain ID");
  cmd->callback([f, exit_code] {
    wire::WorkersRequestData req;
    if (!f->args.empty()) {
      if (f->args.size() != 2 || (f->args[0] != "rm" && f->args[0] != "drain")) {
        std::cerr << "error: usage: manifold workers [rm ID | drain ID]\n";
        *exit_code = 2;
        return;
      }
      req.action = f->args[0];
      req.worker_id = f->args[1];
    }
    auto target = TargetOf(*f, exit_code);
    if (!target) return;
    auto reply = coordinator::RemoteWorkers(*target, req);
    if (!reply.ok()) {
      PrintError(reply.error());
      *exit_code = 1;
      return;
    }
    if (req.action == "rm") std::cerr << "removed worker " << req.worker_id << "\n";
    if (req.action == "drain") std::cerr << "draining worker " << req.worker_id << "\n";
    std::printf("%-20s %-22s %-11s %-5s %-6s %s\n", "ID", "ADDRESS", "STATE", "JOBS", "CPUS", "PLATFORMS");
    for (const auto& w : reply->workers) {
      std::string plats;
      for (const auto& [p, emu] : w.platforms) plats += (plats.empty() ? "" : ",") + p.ToString() + (emu ? "(emulated)" : "");
      std::printf("%-20s %-22s %-11s %u/%-3u %-6u %s  mem %s disk %s%s\n", w.worker_id.c_str(),
                  w.address.c_str(), w.state.c_str(), w.running_jobs, w.slots, w.cpus, plats.c_str(),
                  Bytes(w.memory_bytes).c_str(), Bytes(w.disk_free_bytes).c_str(),
                  w.note.empty() ? "" : ("  (" + w.note + ")").c_str());
    }
  });
  auto* builds = app.add_subcommand("builds", "List the builds running and queued on the farm, or cancel one");
  auto b = AddFarmFlags(builds, "nothing (list), or cancel N");
  builds->callback([b, exit_code] {
    wire::BuildsRequestData req;
    if (!b->args.empty()) {
      char* end = nullptr;
      const long n = b->args.size() == 2 ? std::strtol(b->args[1].c_str(), &end, 10) : 0;
      if (b->args.size() != 2 || b->args[0] != "cancel" || *end != '\0' || n <= 0) {
        std::cerr << "error: usage: manifold builds [cancel N]\n";
        *exit_code = 2;
        return;
      }
      req.action = "cancel";
      req.number = static_cast<std::uint32_t>(n);
    }
    auto target = TargetOf(*b, exit_code);
    if (!target) return;
    auto reply = coordinator::RemoteBuilds(*target, req);
    if (!reply.ok()) {
      PrintError(reply.error());
      *exit_code = 1;
      return;
    }
    if (req.action == "cancel") std::cerr << "cancelling build " << req.number << "\n";
    std::printf("%-6s %-11s %-6s %-8s %-30s %s\n", "BUILD", "STATE", "JOBS", "FOR", "PLATFORMS", "TAGS");
    for (const auto& x : reply->builds)
      std::printf("%-6u %-11s %-6u %-8s %-30s %s\n", x.number, x.state.c_str(), x.running_jobs,
                  (std::to_string(x.seconds) + "s").c_str(), x.platforms.c_str(), x.tags.c_str());
  });
  auto* key = app.add_subcommand("client-key",
                                 "Print this client's CURVE public key (for manifold-coordinator allow-client)");
  key->callback([exit_code] {
    auto k = coordinator::ClientPublicKey("");
    if (!k.ok()) {
      PrintError(k.error());
      *exit_code = 1;
      return;
    }
    std::cout << *k << "\n";
  });
}

}  // namespace manifold::cli
