#include "common/dockerfile/mount.h"

#include "common/base/ascii.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace manifold::dockerfile {

namespace {

Error Err(const std::string& msg) { return MakeError(ErrorKind::kInvalidInput, "dockerfile.mount", msg); }

// strconv.ParseBool
std::optional<bool> ParseBool(const std::string& v) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") return false;
  return std::nullopt;
}

std::optional<uint32_t> ParseUint(const std::string& v, int base) {
  if (v.empty()) return std::nullopt;
  for (char c : v)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, base);
  if (*end != 0 || errno == ERANGE || n > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(n);
}

}  // namespace

Expected<std::vector<std::string>> SplitCsv(const std::string& record) {
  std::vector<std::string> fields;
  size_t i = 0;
  for (;;) {
    std::string field;
    if (i < record.size() && record[i] == '"') {
      ++i;
      for (;;) {
        if (i >= record.size()) return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field");
        if (record[i] == '"') {
          if (i + 1 < record.size() && record[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += record[i++];
      }
      if (i < record.size() && record[i] != ',')
        return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field");
    } else {
      while (i < record.size() && record[i] != ',') {
        if (record[i] == '"') return Err("failed to parse csv mounts: bare \" in non-quoted-field");
        field += record[i++];
      }
    }
    fields.push_back(std::move(field));
    if (i >= record.size()) break;
    ++i;  // comma
  }
  return fields;
}

std::optional<int64_t> ParseRamBytes(const std::string& s) {
  // ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = std::strtod(s.substr(0, i).c_str(), nullptr);
  if (i < s.size() && s[i] == ' ') ++i;
  double mult = 1;
  if (i < s.size()) {
    switch (std::tolower(static_cast<unsigned char>(s[i]))) {
      case 'k': mult = 1024.0; ++i; break;
      case 'm': mult = 1024.0 * 1024; ++i; break;
      case 'g': mult = 1024.0 * 1024 * 1024; ++i; break;
      case 't': mult = 1024.0 * 1024 * 1024 * 1024; ++i; break;
      case 'p': mult = 1024.0 * 1024 * 1024 * 1024 * 1024; ++i; break;
      default: break;
    }
  }
  if (i < s.size() && (s[i] == 'i' || s[i] == 'I')) ++i;
  if (i < s.size() && (s[i] == 'b' || s[i] == 'B')) ++i;
  if (i != s.size()) return std::nullopt;
  double bytes = v * mult;
  if (bytes > 9.0e18) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

Expected<MountSpec> ParseMount(const std::string& spec, const WordExpander* expander) {
  MF_TRY(fields, SplitCsv(spec));
  MountSpec m;
  bool ro_auto = true;
  bool mode_set = false, uid_set = false, gid_set = false;
  for (const auto& field : fields) {
    size_t eq = field.find('=');
    std::string key = AsciiLower(field.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (eq == std::string::npos) {
      if (key == "readonly" || key == "ro") {
        m.readonly = true;
        ro_auto = false;
        continue;
      }
      if (key == "readwrite" || key == "rw") {
        m.readonly = false;
        ro_auto = false;
        continue;
      }
      if (key == "required") {
        if (m.type == "secret" || m.type == "ssh") {
          m.required = true;
          continue;
        }
        return Err("unexpected key 'required' for mount type '" + m.type + "'");
      }
      return Err("invalid field '" + field + "' must be a key=value pair");
    }
    if (expander) {
      MF_TRY(v, (*expander)(value));
      value = v;
    } else if (value.find('$') != std::string::npos) {
      // Checked again once expanded.
      size_t dollar = value.find('$');
      if (key == "from" && dollar != value.size() - 1)
        return Err("'from' doesn't support variable expansion, define alias stage instead");
      if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw") ro_auto = false;
      if (key == "mode") mode_set = true;
      if (key == "uid") uid_set = true;
      if (key == "gid") gid_set = true;
      continue;
    }
    if (key == "type") {
      std::string t = AsciiLower(value);
      if (t != "bind" && t != "cache" && t != "tmpfs" && t != "secret" && t != "ssh")
        return Err("unsupported mount type \"" + value + "\"");
      m.type = t;
    } else if (key == "from") {
      m.from = value;
    } else if (key == "source" || key == "src") {
      m.source = value;
    } else if (key == "target" || key == "dst" || key == "destination") {
      m.target = value;
    } else if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw") {
      auto b = ParseBool(value);
      if (!b) return Err("invalid value for " + key + ": " + value);
      m.readonly = (key == "readonly" || key == "ro") ? *b : !*b;
      ro_auto = false;
    } else if (key == "required") {
      if (m.type != "secret" && m.type != "ssh")
        return Err("unexpected key 'required' for mount type '" + m.type + "'");
      auto b = ParseBool(value);
      if (!b) return Err("invalid value for required: " + value);
      m.required = *b;
    } else if (key == "size") {
      if (m.type != "tmpfs") return Err("unexpected key 'size' for mount type '" + m.type + "'");
      auto n = ParseRamBytes(value);
      if (!n) return Err("invalid value for size: " + value);
      m.size_bytes = *n;
    } else if (key == "id") {
      m.id = value;
    } else if (key == "sharing") {
      if (m.type != "cache") return Err("invalid cache sharing set for " + m.type + " mount");
      m.sharing = AsciiLower(value);
      if (m.sharing != "shared" && m.sharing != "private" && m.sharing != "locked")
        return Err("unrecognized sharing parameter: " + m.sharing);
    } else if (key == "mode" || key == "uid" || key == "gid") {
      (key == "mode" ? mode_set : key == "uid" ? uid_set : gid_set) = true;
      auto n = ParseUint(value, key == "mode" ? 8 : 10);
      if (!n || (key == "mode" && value.find_first_not_of("01234567") != std::string::npos))
        return Err("invalid value " + value + " for " + key);
      (key == "mode" ? m.mode : key == "uid" ? m.uid : m.gid) = *n;
    } else if (key == "env") {
      m.env = value;
    } else {
      return Err("unexpected key '" + key + "' in '" + field + "'");
    }
  }
  bool file_info = m.type == "secret" || m.type == "ssh" || m.type == "cache";
  if (mode_set && !file_info) return Err("mode not allowed for \"" + m.type + "\" type mounts");
  if (uid_set && !file_info) return Err("uid not allowed for \"" + m.type + "\" type mounts");
  if (gid_set && !file_info) return Err("gid not allowed for \"" + m.type + "\" type mounts");
  if (ro_auto) m.readonly = !(m.type == "cache" || m.type == "tmpfs");
  if (!m.sharing.empty() && m.type != "cache")
    return Err("invalid cache sharing set for " + m.type + " mount");
  if (m.type == "secret") {
    if (!m.from.empty()) return Err("secret mount should not have a from");
    if (expander && m.source.empty() && m.target.empty() && m.id.empty())
      return Err("invalid secret mount. one of source, target required");
    if (!m.source.empty() && !m.id.empty()) return Err("both source and id can't be set");
  }
  if (expander) {
    if (m.type == "cache" && m.sharing.empty()) m.sharing = "shared";
    if ((m.type == "bind" || m.type == "cache" || m.type == "tmpfs") && m.target.empty())
      return Err("mount target is required for " + m.type + " mounts");
  }
  return m;
}

Expected<MountSpec> ParseExpandedMount(const std::string& spec) {
  static const WordExpander kSame = [](const std::string& w) -> Expected<std::string> { return w; };
  return ParseMount(spec, &kSame);
}

}  // namespace manifold::dockerfile
