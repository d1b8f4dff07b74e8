#include "common/base/flat_toml.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace manifold {
namespace {

std::string Trim(const std::string& s) {
  auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

}  // namespace

Expected<std::map<std::string, std::string>> ParseFlatToml(const std::string& text,
                                                           const std::string& file) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string raw;
  int line = 0;
  auto fail = [&](const std::string& what) {
    return MakeError(ErrorKind::kInvalidInput, "config.syntax",
                     file + ":" + std::to_string(line) + ": " + what);
  };
  while (std::getline(in, raw)) {
    ++line;
    std::string l = Trim(raw);
    if (l.empty() || l[0] == '#') continue;
    if (l[0] == '[') return fail("tables are not supported; write the keys at the top level");
    auto eq = l.find('=');
    if (eq == std::string::npos) return fail("expected key = value");
    std::string key = Trim(l.substr(0, eq));
    std::string value = Trim(l.substr(eq + 1));
    if (key.empty()) return fail("missing key");
    for (char c : key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
        return fail("bad key \"" + key + "\"");
    if (out.count(key)) return fail("duplicate key \"" + key + "\"");
    if (value.empty()) return fail("missing value for \"" + key + "\"");
    if (value[0] == '"') {
      std::string s;
      std::size_t i = 1;
      bool closed = false;
      for (; i < value.size(); ++i) {
        char c = value[i];
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (c == '\\' && i + 1 < value.size()) {
          char n = value[++i];
          switch (n) {
            case 'n': s += '\n'; break;
            case 't': s += '\t'; break;
            case '"': s += '"'; break;
            case '\\': s += '\\'; break;
            default: return fail(std::string("unknown escape \\") + n);
          }
          continue;
        }
        s += c;
      }
      if (!closed) return fail("unterminated string");
      std::string rest = Trim(value.substr(i));
      if (!rest.empty() && rest[0] != '#') return fail("unexpected text after the string");
      out[key] = s;
      continue;
    }
    auto hash = value.find('#');
    if (hash != std::string::npos) value = Trim(value.substr(0, hash));
    bool number = !value.empty();
    for (std::size_t i = 0; i < value.size(); ++i)
      number = number && (std::isdigit(static_cast<unsigned char>(value[i])) || (i == 0 && value[i] == '-'));
    if (!number && value != "true" && value != "false")
      return fail("value of \"" + key + "\" must be a \"string\", a number, true or false");
    out[key] = value;
  }
  return out;
}

Expected<std::map<std::string, std::string>> ReadFlatToml(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(ErrorKind::kInvalidInput, "config.read", "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseFlatToml(ss.str(), path);
}

}  // namespace manifold
