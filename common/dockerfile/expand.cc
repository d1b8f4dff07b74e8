#include "common/dockerfile/expand.h"

#include "common/base/ascii.h"

#include <cctype>
#include <vector>

#include "common/dockerfile/mount.h"
#include "common/dockerfile/source_error.h"

namespace manifold::dockerfile {

namespace {

Error Located(const Dockerfile& df, const Instruction& in, const Error& e) {
  if (e.where) return e;
  return SourceError(df.file, df.lines, in.line, 0, e.code, e.ToString(), e.kind);
}

bool ValidPort(std::string_view s, bool allow_range) {
  if (s.empty()) return false;
  size_t dash = allow_range ? s.find('-') : std::string_view::npos;
  if (dash != std::string_view::npos)
    return ValidPort(s.substr(0, dash), false) && ValidPort(s.substr(dash + 1), false);
  if (s.size() > 5) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return std::stoi(std::string(s)) <= 65535;
}

bool ValidSignal(std::string s) {
  if (s.empty()) return false;
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    for (char c : s)
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return s.size() <= 2 && std::stoi(s) >= 1 && std::stoi(s) <= 64;
  }
  s = AsciiUpper(s);
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  static const char* const kNames[] = {
      "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
      "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
      "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
      "RTMIN", "RTMAX"};
  for (const char* n : kNames)
    if (s == n) return true;
  // RTMIN+n / RTMAX-n
  for (const char* base : {"RTMIN+", "RTMAX-"}) {
    std::string b = base;
    if (s.rfind(b, 0) == 0 && s.size() > b.size() && s.size() <= b.size() + 2) {
      for (size_t i = b.size(); i < s.size(); ++i)
        if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
      return true;
    }
  }
  return false;
}

bool ValidChmod(const std::string& s) {
  if (s.empty()) return false;
  bool octal = true;
  for (char c : s) octal = octal && c >= '0' && c <= '7';
  if (octal) return s.size() <= 4;
  // Symbolic: [ugoa]*[-+=][rwxXst]* (comma separated), as chmod(1).
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::string_view("ugoa").find(s[i]) != std::string_view::npos) ++i;
    if (i >= s.size() || std::string_view("+-=").find(s[i]) == std::string_view::npos) return false;
    while (i < s.size() && std::string_view("+-=").find(s[i]) != std::string_view::npos) {
      ++i;
      while (i < s.size() && std::string_view("rwxXst").find(s[i]) != std::string_view::npos) ++i;
    }
    if (i < s.size()) {
      if (s[i] != ',') return false;
      ++i;
      if (i == s.size()) return false;
    }
  }
  return true;
}

bool ValidChecksum(const std::string& s) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  std::string algo = s.substr(0, colon), hex = s.substr(colon + 1);
  size_t want = algo == "sha256" ? 64 : algo == "sha384" ? 96 : algo == "sha512" ? 128 : 0;
  if (want == 0 || hex.size() != want) return false;
  for (char c : hex)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string CleanPath(const std::string& p) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t slash = p.find('/', i);
    if (slash == std::string::npos) slash = p.size();
    std::string part = p.substr(i, slash - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = slash + 1;
  }
  std::string out;
  for (const auto& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

Expected<ExpandedInstruction> ExpandInstruction(const Instruction& in, const VarLookup& env,
                                                char escape, const Dockerfile& df) {
  ExpandedInstruction out{in, {}};
  Instruction& x = out.inst;
  ShellLexer lexer(escape);
  auto word = [&](const std::string& w) -> Expected<std::string> {
    auto r = lexer.ProcessWord(w, env);
    if (!r.ok()) return Located(df, in, r.error());
    out.used.insert(r->matched.begin(), r->matched.end());
    return r->word;
  };
  auto each = [&](std::vector<std::string>* v) -> Expected<void> {
    for (auto& s : *v) {
      MF_TRY(e, word(s));
      s = e;
    }
    return Ok();
  };
  switch (in.cmd) {
    case Cmd::kEnv:
    case Cmd::kLabel:
      for (auto& kv : x.kvs) {
        MF_TRY(k, word(kv.key));
        MF_TRY(v, word(kv.value));
        kv.key = k;
        kv.value = v;
      }
      break;
    case Cmd::kArg:
      for (auto& d : x.arg_decls) {
        MF_TRY(k, word(d.name));
        d.name = k;
        if (d.value) {
          MF_TRY(v, word(*d.value));
          d.value = v;
        }
      }
      break;
    case Cmd::kExpose:
    case Cmd::kVolume:
    case Cmd::kUser:
    case Cmd::kWorkdir:
    case Cmd::kStopsignal:
      MF_TRY_VOID(each(&x.args));
      if (in.cmd == Cmd::kVolume)
        for (const auto& v : x.args)
          if (v.empty())
            return SourceError(df.file, df.lines, in.line, 0, "dockerfile.args",
                               "VOLUME specified can not be an empty string");
      break;
    case Cmd::kCopy:
    case Cmd::kAdd: {
      MF_TRY_VOID(each(&x.args));
      MF_TRY(dest, word(x.dest));
      x.dest = dest;
      for (std::string* f : {&x.chown, &x.chmod, &x.from, &x.checksum}) {
        if (f->empty()) continue;
        MF_TRY(e, word(*f));
        *f = e;
      }
      MF_TRY_VOID(each(&x.excludes));
      for (auto& h : x.heredoc_sources) {
        if (!h.expand) continue;
        ExpandOptions opts;
        opts.raw_quotes = true;
        auto r = lexer.ProcessWord(h.data, env, opts);
        if (!r.ok()) return Located(df, in, r.error());
        out.used.insert(r->matched.begin(), r->matched.end());
        h.data = r->word;
      }
      break;
    }
    case Cmd::kRun: {
      for (auto& m : x.mounts) {
        // Expand each value in place, keeping the CSV shape.
        auto fields = SplitCsv(m);
        if (!fields.ok()) return Located(df, in, fields.error());
        std::string rebuilt;
        for (auto& f : *fields) {
          size_t eq = f.find('=');
          if (eq != std::string::npos) {
            MF_TRY(v, word(f.substr(eq + 1)));
            f = f.substr(0, eq + 1) + v;
          }
          bool quote = f.find_first_of(",\"") != std::string::npos;
          std::string q;
          if (quote) {
            q = "\"";
            for (char c : f) q += c == '"' ? std::string("\"\"") : std::string(1, c);
            q += "\"";
          }
          rebuilt += (rebuilt.empty() ? "" : ",") + (quote ? q : f);
        }
        m = rebuilt;
      }
      break;
    }
    default:
      break;
  }
  return out;
}

Expected<void> ValidateExpanded(const Instruction& in, const Dockerfile& df) {
  auto fail = [&](const std::string& code, const std::string& msg) -> Expected<void> {
    return SourceError(df.file, df.lines, in.line, 0, code, msg);
  };
  switch (in.cmd) {
    case Cmd::kExpose:
      for (const auto& p : in.args) {
        size_t slash = p.find('/');
        std::string port = p.substr(0, slash);
        if (!ValidPort(port, true)) return fail("dockerfile.expose", "invalid containerPort: " + port);
        if (slash != std::string::npos) {
          std::string proto = p.substr(slash + 1);
          proto = AsciiLower(proto);
          if (proto != "tcp" && proto != "udp" && proto != "sctp")
            return fail("dockerfile.expose", "invalid proto: " + p.substr(slash + 1));
        }
      }
      break;
    case Cmd::kStopsignal:
      if (!ValidSignal(in.args[0])) return fail("dockerfile.stopsignal", "invalid signal: " + in.args[0]);
      break;
    case Cmd::kCopy:
    case Cmd::kAdd:
      if (!in.chmod.empty() && !ValidChmod(in.chmod))
        return fail("dockerfile.copy.chmod", "invalid chmod parameter: " + in.chmod);
      if (!in.checksum.empty() && !ValidChecksum(in.checksum))
        return fail("dockerfile.add.checksum", "invalid checksum digest format: " + in.checksum);
      if (in.cmd == Cmd::kCopy && !in.from.empty() && in.from.find_first_of(" \t") != std::string::npos)
        return fail("dockerfile.copy.from", "invalid --from value: \"" + in.from + "\"");
      break;
    case Cmd::kRun:
      for (const auto& m : in.mounts) {
        auto spec = ParseExpandedMount(m);
        if (!spec.ok()) return fail(spec.error().code, spec.error().message);
      }
      break;
    default:
      break;
  }
  return Ok();
}

}  // namespace manifold::dockerfile
