#include "common/dockerfile/instruction.h"

#include "common/base/ascii.h"

#include <cctype>
#include <map>

#include "common/dockerfile/directives.h"
#include "common/dockerfile/heredoc.h"
#include "common/dockerfile/mount.h"
#include "common/dockerfile/parser.h"
#include "common/dockerfile/source_error.h"

namespace manifold::dockerfile {

const char* CmdName(Cmd cmd) {
  switch (cmd) {
    case Cmd::kFrom: return "FROM";
    case Cmd::kRun: return "RUN";
    case Cmd::kCmd: return "CMD";
    case Cmd::kEntrypoint: return "ENTRYPOINT";
    case Cmd::kShell: return "SHELL";
    case Cmd::kHealthcheck: return "HEALTHCHECK";
    case Cmd::kCopy: return "COPY";
    case Cmd::kAdd: return "ADD";
    case Cmd::kEnv: return "ENV";
    case Cmd::kLabel: return "LABEL";
    case Cmd::kArg: return "ARG";
    case Cmd::kExpose: return "EXPOSE";
    case Cmd::kVolume: return "VOLUME";
    case Cmd::kUser: return "USER";
    case Cmd::kWorkdir: return "WORKDIR";
    case Cmd::kOnbuild: return "ONBUILD";
    case Cmd::kStopsignal: return "STOPSIGNAL";
    case Cmd::kMaintainer: return "MAINTAINER";
  }
  return "?";
}

std::string Stage::DisplayName() const {
  return name.empty() ? "stage-" + std::to_string(index) : name;
}

namespace {

struct LineErr {
  std::string code;
  std::string message;
};

Error Err(std::string code, std::string message) {
  return MakeError(ErrorKind::kInvalidInput, std::move(code), std::move(message));
}

// BuildKit's BFlags: declared flags of one instruction, parsed from `--k=v` words.
class Flags {
 public:
  enum Type { kString, kStrings, kBool };
  Flags(const char* instruction, const std::vector<std::string>& words)
      : instruction_(instruction), words_(words) {}
  void Add(const std::string& name, Type type) { types_[name] = type; }

  Expected<void> Parse() {
    for (const auto& w : words_) {
      if (w.substr(0, 2) != "--") return Err("dockerfile.flag", "arg should start with -- : " + w);
      if (w == "--") return Ok();
      std::string name = w.substr(2), value;
      size_t eq = name.find('=');
      bool has_value = eq != std::string::npos;
      if (has_value) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      auto it = types_.find(name);
      if (it == types_.end())
        return Err("dockerfile.flag.unknown",
                   "unknown flag \"--" + name + "\" for " + instruction_);
      if (seen_.count(name) && it->second != kStrings)
        return Err("dockerfile.flag.duplicate", "duplicate flag specified: " + name);
      seen_.insert({name, true});
      switch (it->second) {
        case kBool: {
          if (has_value && value.empty())
            return Err("dockerfile.flag.value", "missing a value on flag: " + name);
          std::string lower = AsciiLower(value);
          if (lower == "true" || lower.empty()) bools_[name] = true;
          else if (lower == "false") bools_[name] = false;
          else
            return Err("dockerfile.flag.value",
                       "expecting boolean value for flag " + name + ", not: " + value);
          break;
        }
        case kString:
          if (!has_value) return Err("dockerfile.flag.value", "missing a value on flag: " + name);
          strings_[name] = value;
          break;
        case kStrings:
          if (!has_value) return Err("dockerfile.flag.value", "missing a value on flag: " + name);
          lists_[name].push_back(value);
          break;
      }
    }
    return Ok();
  }
  std::string String(const std::string& n) const {
    auto it = strings_.find(n);
    return it == strings_.end() ? "" : it->second;
  }
  bool Bool(const std::string& n) const {
    auto it = bools_.find(n);
    return it != bools_.end() && it->second;
  }
  std::vector<std::string> Strings(const std::string& n) const {
    auto it = lists_.find(n);
    return it == lists_.end() ? std::vector<std::string>{} : it->second;
  }

 private:
  std::string instruction_;
  const std::vector<std::string>& words_;
  std::map<std::string, Type> types_;
  std::map<std::string, bool> seen_;
  std::map<std::string, std::string> strings_;
  std::map<std::string, bool> bools_;
  std::map<std::string, std::vector<std::string>> lists_;
};

bool ValidStageName(const std::string& s) {
  // ^[a-z][a-z0-9-_\.]*$
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

Error AtLeastOne(const char* name) { return Err("dockerfile.args", std::string(name) + " requires at least one argument"); }
Error ExactlyOne(const char* name) { return Err("dockerfile.args", std::string(name) + " requires exactly one argument"); }

Expected<void> ParseInterval(const std::string& flag, const std::string& value, int64_t* out) {
  if (value.empty()) return Ok();
  auto d = ParseGoDuration(value);
  if (!d) return Err("dockerfile.healthcheck", "time: invalid duration \"" + value + "\"");
  if (*d == 0) return Ok();
  if (*d < 1000000)
    return Err("dockerfile.healthcheck", "Interval \"" + flag + "\" cannot be less than 1ms");
  *out = *d;
  return Ok();
}

Expected<void> ParseHealthcheck(const Node& node, Instruction* in) {
  if (node.args.empty()) return AtLeastOne("HEALTHCHECK");
  std::string typ = AsciiUpper(node.args[0]);
  std::vector<std::string> rest(node.args.begin() + 1, node.args.end());
  if (typ == "NONE") {
    if (!rest.empty()) return Err("dockerfile.healthcheck", "HEALTHCHECK NONE takes no arguments");
    Flags flags("HEALTHCHECK", node.flags);
    MF_TRY_VOID(flags.Parse());
    in->health_test = {"NONE"};
    return Ok();
  }
  Flags flags("HEALTHCHECK", node.flags);
  for (const char* f : {"interval", "timeout", "start-period", "start-interval", "retries"})
    flags.Add(f, Flags::kString);
  MF_TRY_VOID(flags.Parse());
  if (typ != "CMD")
    return Err("dockerfile.healthcheck", "Unknown type \"" + typ + "\" in HEALTHCHECK (try CMD)");
  if (rest.empty() || (rest.size() == 1 && !node.json && rest[0].empty()))
    return Err("dockerfile.healthcheck", "Missing command after HEALTHCHECK CMD");
  in->prepend_shell = !node.json;
  in->health_test = {node.json ? "CMD" : "CMD-SHELL"};
  for (auto& r : rest) in->health_test.push_back(r);
  MF_TRY_VOID(ParseInterval("interval", flags.String("interval"), &in->interval_ns));
  MF_TRY_VOID(ParseInterval("timeout", flags.String("timeout"), &in->timeout_ns));
  MF_TRY_VOID(ParseInterval("start-period", flags.String("start-period"), &in->start_period_ns));
  MF_TRY_VOID(ParseInterval("start-interval", flags.String("start-interval"), &in->start_interval_ns));
  std::string retries = flags.String("retries");
  if (!retries.empty()) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(retries.c_str(), &end, 10);
    if (end == retries.c_str() || *end != 0 || errno == ERANGE || v > INT32_MAX || v < INT32_MIN)
      return Err("dockerfile.healthcheck", "invalid value for --retries: \"" + retries + "\"");
    if (v < 0)
      return Err("dockerfile.healthcheck", "--retries cannot be negative (" + retries + ")");
    in->retries = static_cast<int>(v);
  }
  return Ok();
}

Expected<void> ParseCopy(const Node& node, bool add, Instruction* in) {
  const char* name = add ? "ADD" : "COPY";
  Flags flags(name, node.flags);
  flags.Add("chown", Flags::kString);
  flags.Add("chmod", Flags::kString);
  flags.Add("link", Flags::kBool);
  flags.Add("exclude", Flags::kStrings);
  if (add) {
    flags.Add("keep-git-dir", Flags::kBool);
    flags.Add("checksum", Flags::kString);
  } else {
    flags.Add("from", Flags::kString);
    flags.Add("parents", Flags::kBool);
  }
  MF_TRY_VOID(flags.Parse());
  if (node.args.empty())
    return Err("dockerfile.args", std::string(name) + " requires at least two arguments");
  if (node.args.size() < 2)
    return Err("dockerfile.args", std::string(name) +
                                      " requires at least two arguments, but only one was provided. "
                                      "Destination could not be determined.");
  in->dest = node.args.back();
  MF_TRY(dest_doc, ParseHeredocWord(in->dest));
  if (dest_doc && !node.json)
    return Err("dockerfile.heredoc", std::string(name) + " cannot accept a heredoc as a destination");
  for (size_t i = 0; i + 1 < node.args.size(); ++i) {
    const std::string& src = node.args[i];
    std::optional<Heredoc> doc;
    if (!node.json) {
      MF_TRY(d, ParseHeredocWord(src));
      doc = d;
    }
    if (doc) {
      HeredocSource hs;
      hs.name = doc->name;
      hs.expand = doc->expand;
      for (const auto& h : node.heredocs)
        if (h.name == doc->name) hs.data = h.content;
      if (doc->chomp) hs.data = ChompHeredocContent(hs.data);
      in->heredoc_sources.push_back(std::move(hs));
    } else {
      in->args.push_back(src);
    }
  }
  in->chown = flags.String("chown");
  in->chmod = flags.String("chmod");
  in->link = flags.Bool("link");
  in->excludes = flags.Strings("exclude");
  if (add) {
    in->keep_git_dir = flags.Bool("keep-git-dir");
    in->checksum = flags.String("checksum");
    if (!in->checksum.empty() && !in->heredoc_sources.empty())
      return Err("dockerfile.args", "checksum can't be specified for heredoc sources");
  } else {
    in->from = flags.String("from");
    in->parents = flags.Bool("parents");
  }
  return Ok();
}

Expected<void> ParseRun(const Node& node, Instruction* in) {
  Flags flags("RUN", node.flags);
  flags.Add("mount", Flags::kStrings);
  flags.Add("network", Flags::kString);
  flags.Add("security", Flags::kString);
  MF_TRY_VOID(flags.Parse());
  if (node.args.empty() && !node.json) return AtLeastOne("RUN");
  in->args = node.args;
  in->prepend_shell = !node.json;
  in->files = node.heredocs;
  in->mounts = flags.Strings("mount");
  for (const auto& m : in->mounts) {
    // Validate what can be checked before expansion (keys, bare words).
    MF_TRY(spec, ParseMount(m, nullptr));
    (void)spec;
  }
  in->network = flags.String("network");
  if (!in->network.empty() && in->network != "default" && in->network != "none" && in->network != "host")
    return Err("dockerfile.run.network", "unsupported network mode \"" + in->network +
                                             "\" (expected default, none or host)");
  in->security = flags.String("security");
  if (!in->security.empty() && in->security != "sandbox" && in->security != "insecure")
    return Err("dockerfile.run.security", "unsupported security mode \"" + in->security +
                                              "\" (expected sandbox or insecure)");
  return Ok();
}

Expected<void> ParseBody(const Node& node, const SyntaxTree& tree, Instruction* in) {
  const std::string& c = node.cmd;
  auto no_flags = [&](const char* name) {
    Flags f(name, node.flags);
    return f.Parse();
  };
  if (c == "from") {
    in->cmd = Cmd::kFrom;
    Flags flags("FROM", node.flags);
    flags.Add("platform", Flags::kString);
    MF_TRY_VOID(flags.Parse());
    const auto& a = node.args;
    if (a.size() == 3 && AsciiLower(a[1]) == "as") {
      in->stage_name = AsciiLower(a[2]);
      if (!ValidStageName(in->stage_name))
        return Err("dockerfile.from.name", "invalid name for build stage: \"" + a[2] +
                                               "\", name can't start with a number or contain symbols");
    } else if (a.size() != 1) {
      return Err("dockerfile.args", "FROM requires either one or three arguments");
    }
    in->base = a[0];
    in->platform = flags.String("platform");
    return Ok();
  }
  if (c == "run") {
    in->cmd = Cmd::kRun;
    return ParseRun(node, in);
  }
  if (c == "cmd" || c == "entrypoint") {
    in->cmd = c == "cmd" ? Cmd::kCmd : Cmd::kEntrypoint;
    MF_TRY_VOID(no_flags(CmdName(in->cmd)));
    in->args = node.args;
    in->prepend_shell = !node.json;
    in->files = node.heredocs;
    return Ok();
  }
  if (c == "shell") {
    in->cmd = Cmd::kShell;
    MF_TRY_VOID(no_flags("SHELL"));
    if (node.args.empty()) return AtLeastOne("SHELL");
    if (!node.json) return Err("dockerfile.shell", "SHELL requires the arguments to be in JSON form");
    in->args = node.args;
    return Ok();
  }
  if (c == "healthcheck") {
    in->cmd = Cmd::kHealthcheck;
    return ParseHealthcheck(node, in);
  }
  if (c == "copy" || c == "add") {
    in->cmd = c == "copy" ? Cmd::kCopy : Cmd::kAdd;
    return ParseCopy(node, c == "add", in);
  }
  if (c == "env" || c == "label") {
    in->cmd = c == "env" ? Cmd::kEnv : Cmd::kLabel;
    MF_TRY_VOID(no_flags(CmdName(in->cmd)));
    if (node.kvs.empty()) return AtLeastOne(CmdName(in->cmd));
    for (const auto& kv : node.kvs)
      if (kv.key.empty())
        return Err("dockerfile.args", std::string(CmdName(in->cmd)) + " names can not be blank");
    in->kvs = node.kvs;
    return Ok();
  }
  if (c == "arg") {
    in->cmd = Cmd::kArg;
    MF_TRY_VOID(no_flags("ARG"));
    if (node.args.empty()) return AtLeastOne("ARG");
    for (const auto& w : node.args) {
      ArgDecl d;
      size_t eq = w.find('=');
      if (eq == std::string::npos) {
        d.name = w;
      } else {
        d.name = w.substr(0, eq);
        d.value = w.substr(eq + 1);
        if (d.name.empty()) return Err("dockerfile.args", "ARG names can not be blank");
      }
      in->arg_decls.push_back(std::move(d));
    }
    return Ok();
  }
  if (c == "expose" || c == "volume") {
    in->cmd = c == "expose" ? Cmd::kExpose : Cmd::kVolume;
    MF_TRY_VOID(no_flags(CmdName(in->cmd)));
    if (node.args.empty()) return AtLeastOne(CmdName(in->cmd));
    in->args = node.args;
    if (in->cmd == Cmd::kVolume)
      for (const auto& v : in->args)
        if (v.empty()) return Err("dockerfile.args", "VOLUME specified can not be an empty string");
    return Ok();
  }
  if (c == "user" || c == "workdir" || c == "stopsignal" || c == "maintainer") {
    in->cmd = c == "user" ? Cmd::kUser : c == "workdir" ? Cmd::kWorkdir
            : c == "stopsignal" ? Cmd::kStopsignal : Cmd::kMaintainer;
    MF_TRY_VOID(no_flags(CmdName(in->cmd)));
    if (node.args.size() != 1) return ExactlyOne(CmdName(in->cmd));
    in->args = node.args;
    return Ok();
  }
  if (c == "onbuild") {
    in->cmd = Cmd::kOnbuild;
    MF_TRY_VOID(no_flags("ONBUILD"));
    if (!node.sub) return AtLeastOne("ONBUILD");
    const std::string& sc = node.sub->cmd;
    if (sc == "onbuild")
      return Err("dockerfile.onbuild", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (sc == "from" || sc == "maintainer")
      return Err("dockerfile.onbuild", std::string(sc == "from" ? "FROM" : "MAINTAINER") +
                                           " isn't allowed as an ONBUILD trigger");
    Node sub_copy;
    sub_copy.keyword = node.sub->keyword;
    sub_copy.cmd = node.sub->cmd;
    sub_copy.flags = node.sub->flags;
    sub_copy.args = node.sub->args;
    sub_copy.kvs = node.sub->kvs;
    sub_copy.json = node.sub->json;
    sub_copy.known = node.sub->known;
    sub_copy.heredocs = node.heredocs;  // ONBUILD's heredocs belong to its trigger
    sub_copy.original = node.sub->original;
    sub_copy.line = node.line;
    sub_copy.end_line = node.end_line;
    MF_TRY(sub, ParseInstruction(sub_copy, tree));
    in->sub = std::make_shared<Instruction>(std::move(sub));
    // The trigger as the image config stores it: the line without ONBUILD, heredocs appended.
    std::string expr = node.original;
    size_t i = 0;
    while (i < expr.size() && IsUnicodeSpace(static_cast<unsigned char>(expr[i]))) ++i;
    i += 7;  // "onbuild", any case
    while (i < expr.size() && IsUnicodeSpace(static_cast<unsigned char>(expr[i]))) ++i;
    expr = expr.substr(std::min(i, expr.size()));
    for (const auto& h : node.heredocs) expr += "\n" + h.content + h.name;
    in->onbuild_expression = expr;
    return Ok();
  }
  return Err("dockerfile.unknown_instruction", "unknown instruction \"" + node.keyword + "\"");
}

}  // namespace

Expected<Instruction> ParseInstruction(const Node& node, const SyntaxTree& tree) {
  Instruction in;
  in.line = node.line;
  in.end_line = node.end_line;
  in.original = node.original;
  auto r = ParseBody(node, tree, &in);
  if (!r.ok()) {
    const Error& e = r.error();
    if (e.where) return e;  // already located (ONBUILD's trigger)
    return SourceError(tree.file, tree.lines, node.line, 0, e.code, e.ToString(), e.kind);
  }
  return in;
}

Expected<Dockerfile> ParseInstructions(const SyntaxTree& tree) {
  Dockerfile df;
  df.file = tree.file;
  df.lines = tree.lines;
  auto syntax = tree.directives.find("syntax");
  if (syntax != tree.directives.end() && !IsBuiltinSyntax(syntax->second)) {
    int line = tree.directive_lines.count("syntax") ? tree.directive_lines.at("syntax") : 1;
    return SourceError(tree.file, tree.lines, line, 0, "dockerfile.syntax.unsupported",
                       "frontend \"" + syntax->second +
                           "\" is not supported: Manifold builds with its built-in "
                           "docker/dockerfile:1 frontend and does not run external frontends",
                       ErrorKind::kUnimplemented);
  }
  std::map<std::string, int>& names = df.stage_by_name;
  for (const auto& node : tree.nodes) {
    MF_TRY(in, ParseInstruction(node, tree));
    if (in.cmd == Cmd::kFrom) {
      Stage st;
      st.index = static_cast<int>(df.stages.size());
      st.name = in.stage_name;
      if (!st.name.empty()) {
        if (names.count(st.name))
          return SourceError(tree.file, tree.lines, node.line, 0, "dockerfile.stage.duplicate",
                             "duplicate stage name \"" + st.name + "\"");
        names[st.name] = st.index;
      }
      st.from = std::move(in);
      df.stages.push_back(std::move(st));
    } else if (df.stages.empty()) {
      if (in.cmd != Cmd::kArg)
        return SourceError(tree.file, tree.lines, node.line, 0, "dockerfile.no_stage",
                           std::string(CmdName(in.cmd)) +
                               " before the first FROM: only ARG may come before FROM");
      df.meta_args.push_back(std::move(in));
    } else {
      df.stages.back().instructions.push_back(std::move(in));
    }
  }
  if (df.stages.empty())
    return SourceError(tree.file, tree.lines, tree.nodes.empty() ? 1 : tree.nodes.back().line, 0,
                       "dockerfile.no_stage", "the Dockerfile has no FROM instruction");
  return df;
}

std::optional<int64_t> ParseGoDuration(std::string_view s) {
  // [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+, or "0".
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double v = 0;
    bool digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i] - '0');
      ++i;
      digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        v += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    size_t u = i;
    while (u < s.size() && s[u] != '.' && !std::isdigit(static_cast<unsigned char>(s[u]))) ++u;
    std::string_view unit = s.substr(i, u - i);
    long double mult;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = 1e3L;
    else if (unit == "ms") mult = 1e6L;
    else if (unit == "s") mult = 1e9L;
    else if (unit == "m") mult = 60e9L;
    else if (unit == "h") mult = 3600e9L;
    else return std::nullopt;
    total += v * mult;
    if (total > 9.2e18L) return std::nullopt;
    s.remove_prefix(u);
  }
  auto ns = static_cast<int64_t>(total);
  return neg ? -ns : ns;
}

}  // namespace manifold::dockerfile
