#include "coordinator/plan/plan.h"

#include "common/base/ascii.h"

#include <algorithm>
#include <set>

#include "common/cache/cache_key.h"
#include "common/dockerfile/expand.h"
#include "common/dockerfile/mount.h"
#include "common/dockerfile/source_error.h"
#include "common/dockerfile/stage_graph.h"

namespace manifold::plan {

using dockerfile::Cmd;
using dockerfile::Dockerfile;
using dockerfile::Instruction;
using dockerfile::SourceError;
using dockerfile::Stage;

namespace {

using Values = std::map<std::string, std::optional<std::string>>;

std::map<std::string, std::string> Builtins(const oci::Platform& target, const oci::Platform& build) {
  return {
      {"TARGETPLATFORM", target.ToString()}, {"TARGETOS", target.os},
      {"TARGETARCH", target.architecture},   {"TARGETVARIANT", target.variant},
      {"BUILDPLATFORM", build.ToString()},   {"BUILDOS", build.os},
      {"BUILDARCH", build.architecture},     {"BUILDVARIANT", build.variant},
  };
}

std::string JobId(const Stage& st, const oci::Platform& p) {
  std::string name = st.DisplayName().substr(0, 40);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  std::string id = name + "-" + p.os + "-" + p.architecture;
  if (!p.variant.empty()) id += "-" + p.variant;
  for (char& c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return id.substr(0, 64);
}

struct StageResult {
  bool done = false;
  Job job;
  std::vector<int> deps;  // stage indexes
  std::string workdir = "/";
};

class PlatformPlanner {
 public:
  PlatformPlanner(const Dockerfile& df, char escape, const PlanOptions& opts,
                  const oci::Platform& target, std::set<std::string>* consumed)
      : df_(df), escape_(escape), opts_(opts), target_(target), consumed_(consumed),
        builtins_(Builtins(target, opts.build_platform)), results_(df.stages.size()) {}

  Expected<void> ProcessMetaArgs() {
    for (const auto& in : df_.meta_args) {
      auto lookup = [this](std::string_view n) { return MetaLookup(n); };
      MF_TRY(ex, dockerfile::ExpandInstruction(in, lookup, escape_, df_));
      for (const auto& d : ex.inst.arg_decls) {
        auto ba = opts_.build_args.find(d.name);
        if (ba != opts_.build_args.end()) {
          consumed_->insert(d.name);
          meta_[d.name] = ba->second;
        } else if (d.value) {
          meta_[d.name] = d.value;
        } else if (builtins_.count(d.name)) {
          meta_[d.name] = builtins_.at(d.name);
        } else {
          meta_[d.name] = std::nullopt;
        }
      }
    }
    return Ok();
  }

  // Expands every FROM with the global ARGs; records FROM <stage> edges.
  Expected<void> ResolveFroms() {
    from_parent_.assign(df_.stages.size(), -1);
    bases_.resize(df_.stages.size());
    platforms_.resize(df_.stages.size());
    auto lookup = [this](std::string_view n) { return MetaLookup(n); };
    dockerfile::ShellLexer lexer(escape_);
    for (const auto& st : df_.stages) {
      auto loc = [&](const Error& e) {
        return SourceError(df_.file, df_.lines, st.from.line, 0, e.code, e.ToString(), e.kind);
      };
      auto base = lexer.ProcessWord(st.from.base, lookup);
      if (!base.ok()) return loc(base.error());
      if (base->word.empty())
        return SourceError(df_.file, df_.lines, st.from.line, 0, "dockerfile.from.empty",
                           "base name (" + st.from.base + ") should not be blank");
      bases_[static_cast<size_t>(st.index)] = base->word;
      std::string lower = AsciiLower(base->word);
      auto named = df_.stage_by_name.find(lower);
      if (named != df_.stage_by_name.end()) from_parent_[static_cast<size_t>(st.index)] = named->second;
      oci::Platform exec = target_;
      if (!st.from.platform.empty()) {
        auto p = lexer.ProcessWord(st.from.platform, lookup);
        if (!p.ok()) return loc(p.error());
        auto parsed = oci::ParsePlatform(p->word);
        if (!parsed.ok()) return loc(parsed.error());
        exec = *parsed;
      }
      platforms_[static_cast<size_t>(st.index)] = exec;
    }
    // FROM edges form a functional graph: find cycles by colouring.
    std::vector<int> color(df_.stages.size(), 0);
    for (size_t s = 0; s < df_.stages.size(); ++s) {
      std::vector<size_t> path;
      size_t cur = s;
      while (color[cur] == 0) {
        color[cur] = 1;
        path.push_back(cur);
        if (from_parent_[cur] < 0) break;
        cur = static_cast<size_t>(from_parent_[cur]);
        if (color[cur] == 1) {
          const Stage& st = df_.stages[cur];
          return SourceError(df_.file, df_.lines, st.from.line, 0, "dockerfile.stage.cycle",
                             "circular dependency detected on stage: " + st.DisplayName());
        }
      }
      for (size_t p : path) color[p] = 2;
    }
    return Ok();
  }

  Expected<std::vector<int>> PlanFrom(int target_stage) {
    // Worklist: a stage is processed after its FROM parent (it inherits its ENV).
    std::vector<int> work{target_stage};
    while (!work.empty()) {
      int s = work.back();
      auto& r = results_[static_cast<size_t>(s)];
      if (r.done) {
        work.pop_back();
        continue;
      }
      int parent = from_parent_[static_cast<size_t>(s)];
      if (parent >= 0 && !results_[static_cast<size_t>(parent)].done) {
        work.push_back(parent);
        continue;
      }
      MF_TRY_VOID(ProcessStage(s));
      work.pop_back();
      for (int d : results_[static_cast<size_t>(s)].deps)
        if (!results_[static_cast<size_t>(d)].done) work.push_back(d);
    }
    std::vector<std::vector<int>> deps(df_.stages.size());
    for (size_t i = 0; i < df_.stages.size(); ++i) deps[i] = results_[i].deps;
    return dockerfile::StagesNeeded(df_, deps, target_stage);
  }

  Job& JobFor(int s) { return results_[static_cast<size_t>(s)].job; }

 private:
  std::optional<std::string> MetaLookup(std::string_view n) const {
    auto it = meta_.find(std::string(n));
    if (it != meta_.end()) return it->second;
    auto b = builtins_.find(std::string(n));
    if (b != builtins_.end()) return b->second;
    return std::nullopt;
  }

  Expected<void> AddStageDep(int s, const std::string& ref, int line) {
    auto r = dockerfile::ResolveStageRef(df_, ref);
    if (!r.ok())
      return SourceError(df_.file, df_.lines, line, 0, r.error().code, r.error().message);
    if (*r) {
      auto& deps = results_[static_cast<size_t>(s)].deps;
      if (std::find(deps.begin(), deps.end(), **r) == deps.end()) deps.push_back(**r);
    }
    return Ok();
  }

  Expected<void> ProcessStage(int s) {
    const Stage& st = df_.stages[static_cast<size_t>(s)];
    StageResult& r = results_[static_cast<size_t>(s)];
    Job& job = r.job;
    job.stage_index = s;
    job.stage = st.DisplayName();
    job.platform = platforms_[static_cast<size_t>(s)];
    job.target_platform = target_;
    job.id = JobId(st, target_);
    int parent = from_parent_[static_cast<size_t>(s)];
    if (parent >= 0) {
      const StageResult& pr = results_[static_cast<size_t>(parent)];
      job.base_job = pr.job.id;
      job.env = pr.job.env;
      r.workdir = pr.workdir;
      r.deps.push_back(parent);
    } else {
      job.base = bases_[static_cast<size_t>(s)];
    }
    Values args;
    auto lookup = [&](std::string_view n) -> std::optional<std::string> {
      for (auto it = job.env.rbegin(); it != job.env.rend(); ++it)
        if (it->first == n) return it->second;
      auto a = args.find(std::string(n));
      if (a != args.end()) return a->second;
      return std::nullopt;
    };
    for (const auto& in : st.instructions) {
      MF_TRY(ex, dockerfile::ExpandInstruction(in, lookup, escape_, df_));
      Instruction& x = ex.inst;
      MF_TRY_VOID(dockerfile::ValidateExpanded(x, df_));
      switch (x.cmd) {
        case Cmd::kEnv:
          for (const auto& kv : x.kvs) {
            auto it = std::find_if(job.env.begin(), job.env.end(),
                                   [&](const auto& e) { return e.first == kv.key; });
            if (it != job.env.end()) it->second = kv.value;
            else job.env.emplace_back(kv.key, kv.value);
          }
          break;
        case Cmd::kArg:
          for (auto& d : x.arg_decls) {
            auto ba = opts_.build_args.find(d.name);
            if (ba != opts_.build_args.end()) {
              consumed_->insert(d.name);
              args[d.name] = ba->second;
              d.value = ba->second;
            } else if (builtins_.count(d.name) && !d.value) {
              args[d.name] = builtins_.at(d.name);
              d.value = builtins_.at(d.name);
            } else if (!d.value && meta_.count(d.name)) {
              args[d.name] = meta_.at(d.name);
              d.value = meta_.at(d.name);
            } else {
              args[d.name] = d.value;
            }
          }
          break;
        case Cmd::kWorkdir: {
          std::string p = x.args[0];
          r.workdir = dockerfile::CleanPath(p.empty() || p[0] != '/' ? r.workdir + "/" + p : p);
          if (r.workdir == "/proc" || r.workdir.rfind("/proc/", 0) == 0)
            return SourceError(df_.file, df_.lines, x.line, 0, "dockerfile.workdir.proc",
                               "WORKDIR " + r.workdir +
                                   " is inside /proc: refused, a working directory there can "
                                   "reach host files (CVE-2024-21626)",
                               ErrorKind::kSecurity);
          break;
        }
        case Cmd::kCopy:
          if (!x.from.empty()) MF_TRY_VOID(AddStageDep(s, x.from, x.line));
          break;
        case Cmd::kRun:
          for (const auto& m : x.mounts) {
            auto spec = dockerfile::ParseExpandedMount(m);
            if (spec.ok() && !spec->from.empty()) MF_TRY_VOID(AddStageDep(s, spec->from, x.line));
          }
          break;
        default:
          break;
      }
      job.instructions.push_back(std::move(x));
    }
    for (const auto& [k, v] : args)
      if (v) job.args[k] = *v;
    r.done = true;
    return Ok();
  }

  const Dockerfile& df_;
  char escape_;
  const PlanOptions& opts_;
  oci::Platform target_;
  std::set<std::string>* consumed_;
  std::map<std::string, std::string> builtins_;
  Values meta_;
  std::vector<int> from_parent_;
  std::vector<std::string> bases_;
  std::vector<oci::Platform> platforms_;
  std::vector<StageResult> results_;
};

}  // namespace

Expected<Plan> MakePlan(const Dockerfile& df, char escape, const PlanOptions& opts) {
  Plan plan;
  std::vector<oci::Platform> platforms = opts.platforms;
  if (platforms.empty()) platforms.push_back(opts.build_platform);
  MF_TRY(target, dockerfile::ResolveTarget(df, opts.target));
  plan.target_stage = df.stages[static_cast<size_t>(target)].DisplayName();
  std::set<std::string> consumed;
  for (const auto& p : platforms) {
    PlatformPlanner planner(df, escape, opts, p, &consumed);
    MF_TRY_VOID(planner.ProcessMetaArgs());
    MF_TRY_VOID(planner.ResolveFroms());
    MF_TRY(order, planner.PlanFrom(target));
    std::map<int, std::string> ids;
    for (int s : order) ids[s] = planner.JobFor(s).id;
    for (int s : order) {
      plan.jobs.push_back(planner.JobFor(s));
    }
    // Dependencies by job id: base first, then COPY --from / mount sources in order.
    size_t first = plan.jobs.size() - order.size();
    for (size_t i = 0; i < order.size(); ++i) {
      Job& job = plan.jobs[first + i];
      if (!job.base_job.empty()) job.depends_on.push_back(job.base_job);
      for (const auto& in : job.instructions) {
        std::string ref;
        if (in.cmd == Cmd::kCopy) ref = in.from;
        auto add = [&](const std::string& r) {
          if (r.empty()) return;
          auto idx = dockerfile::ResolveStageRef(df, r);
          if (idx.ok() && *idx) {
            const std::string& id = ids[**idx];
            if (std::find(job.depends_on.begin(), job.depends_on.end(), id) == job.depends_on.end())
              job.depends_on.push_back(id);
          }
        };
        add(ref);
        if (in.cmd == Cmd::kRun) {
          for (const auto& m : in.mounts) {
            auto spec = dockerfile::ParseExpandedMount(m);
            if (spec.ok()) add(spec->from);
          }
        }
      }
    }
  }
  std::vector<std::string> unused;
  for (const auto& [k, v] : opts.build_args)
    if (!consumed.count(k) && !cache::IsProxyBuildArg(k)) unused.push_back(k);
  if (!unused.empty()) {
    std::string list;
    for (const auto& u : unused) list += (list.empty() ? "" : " ") + u;
    plan.warnings.push_back("one or more build-args [" + list + "] were not consumed");
  }
  return plan;
}

}  // namespace manifold::plan
