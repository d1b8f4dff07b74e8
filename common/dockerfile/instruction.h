// The instruction layer: syntax nodes to typed instructions, rejecting what
// BuildKit's instructions package rejects (unknown instructions, wrong
// argument counts, bad flags and flag values).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/node.h"

namespace manifold::dockerfile {

enum class Cmd {
  kFrom, kRun, kCmd, kEntrypoint, kShell, kHealthcheck, kCopy, kAdd, kEnv, kLabel,
  kArg, kExpose, kVolume, kUser, kWorkdir, kOnbuild, kStopsignal, kMaintainer,
};

/// Uppercase keyword of a command ("RUN").
const char* CmdName(Cmd cmd);

struct ArgDecl {
  std::string name;
  std::optional<std::string> value;  ///< the default as written (quotes kept)
};

/// A COPY/ADD source given as a heredoc.
struct HeredocSource {
  std::string name;
  std::string data;  ///< content, tabs already stripped for `<<-`
  bool expand = true;
};

struct Instruction {
  Cmd cmd = Cmd::kRun;
  int line = 0;
  int end_line = 0;
  std::string original;  ///< the logical line as written

  /// RUN/CMD/ENTRYPOINT/SHELL: the command line; EXPOSE: ports; VOLUME: paths;
  /// USER/WORKDIR/STOPSIGNAL/MAINTAINER: one value; COPY/ADD: file sources.
  std::vector<std::string> args;
  bool prepend_shell = false;     ///< shell form (RUN/CMD/ENTRYPOINT/HEALTHCHECK)
  std::vector<Heredoc> files;     ///< RUN/CMD/ENTRYPOINT heredocs
  std::vector<KeyValue> kvs;      ///< ENV/LABEL
  std::vector<ArgDecl> arg_decls; ///< ARG

  // FROM
  std::string base;
  std::string stage_name;  ///< lowercase, empty when unnamed
  std::string platform;    ///< --platform as written

  // RUN
  std::vector<std::string> mounts;  ///< --mount values as written
  std::string network;              ///< --network: "", default, none, host
  std::string security;             ///< --security: "", sandbox, insecure

  // COPY/ADD
  std::vector<HeredocSource> heredoc_sources;
  std::string dest;
  std::string from;  ///< COPY --from
  std::string chown;
  std::string chmod;
  std::string checksum;  ///< ADD --checksum
  bool link = false;
  bool parents = false;
  bool keep_git_dir = false;
  std::vector<std::string> excludes;

  // HEALTHCHECK: test as in the image config (["NONE"], ["CMD", ...], ["CMD-SHELL", "..."]).
  std::vector<std::string> health_test;
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;

  // ONBUILD: the trigger as stored in the image config, and its parsed form.
  std::string onbuild_expression;
  std::shared_ptr<const Instruction> sub;
};

/// One `FROM` and the instructions after it.
struct Stage {
  int index = 0;
  std::string name;  ///< lowercase; empty when unnamed
  Instruction from;
  std::vector<Instruction> instructions;

  /// "gen" or "stage-2" when unnamed.
  std::string DisplayName() const;
};

struct Dockerfile {
  std::string file;
  std::vector<Instruction> meta_args;  ///< ARGs before the first FROM
  std::vector<Stage> stages;
  std::map<std::string, int> stage_by_name;  ///< lowercase name -> index
  std::vector<std::string> lines;      ///< for error carets
};

/// Types every node of `tree`. Errors are kInvalidInput at the node's line,
/// except an external `# syntax=` frontend (kUnimplemented).
Expected<Dockerfile> ParseInstructions(const SyntaxTree& tree);

/// Types one node (used for ONBUILD triggers from base images too).
Expected<Instruction> ParseInstruction(const Node& node, const SyntaxTree& tree);

/// Go's time.ParseDuration; nullopt when malformed.
std::optional<int64_t> ParseGoDuration(std::string_view s);

}  // namespace manifold::dockerfile
