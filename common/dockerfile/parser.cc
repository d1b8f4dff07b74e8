#include "common/dockerfile/parser.h"

#include "common/base/ascii.h"

#include <nlohmann/json.hpp>

#include "common/dockerfile/directives.h"
#include "common/dockerfile/heredoc.h"
#include "common/dockerfile/source_error.h"

namespace manifold::dockerfile {

bool IsUnicodeSpace(char32_t c) {
  switch (c) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

namespace {

// Decodes one UTF-8 code point at s[pos]; invalid bytes decode as U+FFFD, width 1
// (Go's utf8.DecodeRuneInString).
char32_t DecodeRune(std::string_view s, size_t pos, size_t* width) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  *width = 1;
  if (c < 0x80) return c;
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c >= 0xF5 || pos + n > s.size()) return 0xFFFD;
  char32_t cp = c & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    unsigned char cc = static_cast<unsigned char>(s[pos + i]);
    if ((cc & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0xFFFD;
  *width = n;
  return cp;
}

std::string_view TrimLeftSpace(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t w;
    char32_t c = DecodeRune(s, i, &w);
    if (!IsUnicodeSpace(c)) break;
    i += w;
  }
  return s.substr(i);
}

std::string_view TrimSpace(std::string_view s) {
  s = TrimLeftSpace(s);
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    size_t w;
    char32_t c = DecodeRune(s, i, &w);
    i += w;
    if (!IsUnicodeSpace(c)) end = i;
  }
  return s.substr(0, end);
}

bool IsWsByte(char c) { return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' '; }

// regexp `[\t\v\f\r ]+` Split(s, n): n = -1 for all.
std::vector<std::string> SplitWs(std::string_view s, int n) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    if (n > 0 && static_cast<int>(out.size()) == n - 1) break;
    if (IsWsByte(s[i])) {
      size_t j = i;
      while (j < s.size() && IsWsByte(s[j])) ++j;
      out.emplace_back(s.substr(start, i - start));
      start = i = j;
    } else {
      ++i;
    }
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string_view TrimNewline(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

bool IsComment(std::string_view raw) {
  std::string_view s = TrimLeftSpace(TrimNewline(raw));
  return !s.empty() && s[0] == '#';
}

// `\\[ \t]*$` with the escape token: removes it and reports a continuation.
bool TrimContinuation(std::string* line, char escape) {
  size_t end = line->size();
  while (end > 0 && ((*line)[end - 1] == ' ' || (*line)[end - 1] == '\t')) --end;
  if (end == 0 || (*line)[end - 1] != escape) return false;
  line->resize(end - 1);
  return true;
}

// extractBuilderFlags: leading `--flag` words, quotes removed.
std::string ExtractFlags(std::string_view line, std::vector<std::string>* flags) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    char ch = pos < line.size() ? line[pos] : 0;
    if (phase == kSpaces) {
      if (pos == line.size()) break;
      if (IsUnicodeSpace(static_cast<unsigned char>(ch))) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') return std::string(line.substr(pos));
      phase = kWord;
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) flags->push_back(word);
      break;
    }
    if (phase == kWord) {
      if (IsUnicodeSpace(static_cast<unsigned char>(ch))) {
        phase = kSpaces;
        if (word == "--") return std::string(line.substr(pos));
        if (blank_ok || !word.empty()) flags->push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word += ch;
      continue;
    }
    // kQuote
    if (ch == quote) {
      phase = kWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        phase = kWord;
        continue;
      }
      ch = line[++pos];
    }
    word += ch;
  }
  return "";
}

}  // namespace

// parseWords: splits on whitespace, keeping quotes and escapes.
std::vector<std::string> ParseWords(std::string_view rest, char escape) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::vector<std::string> words;
  std::string word;
  char32_t quote = 0;
  bool blank_ok = false;
  size_t width = 0;
  for (size_t pos = 0; pos <= rest.size(); pos += width) {
    char32_t ch = 0;
    size_t start = pos;
    if (pos != rest.size()) ch = DecodeRune(rest, pos, &width);
    if (phase == kSpaces) {
      if (pos == rest.size()) break;
      if (IsUnicodeSpace(ch)) continue;
      phase = kWord;
    }
    if (pos == rest.size()) {
      if (blank_ok || !word.empty()) words.push_back(word);
      break;
    }
    auto append = [&](size_t from, size_t w) { word.append(rest.substr(from, w)); };
    if (phase == kWord) {
      if (IsUnicodeSpace(ch)) {
        phase = kSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
      }
      if (ch == static_cast<unsigned char>(escape)) {
        if (pos + width == rest.size()) continue;
        append(start, width);
        pos += width;
        start = pos;
        DecodeRune(rest, pos, &width);
      }
      append(start, width);
      continue;
    }
    if (ch == quote) phase = kWord;
    if (ch == static_cast<unsigned char>(escape) && quote != '\'') {
      if (pos + width == rest.size()) {
        phase = kWord;
        continue;
      }
      append(start, width);
      pos += width;
      start = pos;
      DecodeRune(rest, pos, &width);
    }
    append(start, width);
  }
  return words;
}

namespace {

struct LineError {
  std::string code;
  std::string message;
};

using ArgResult = std::optional<LineError>;

// parseJSON: 0 = parsed, 1 = not JSON, 2 = JSON with a non-string.
int ParseJson(std::string_view rest, std::vector<std::string>* out) {
  rest = TrimLeftSpace(rest);
  if (rest.empty() || rest[0] != '[') return 1;
  auto j = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
  if (j.is_discarded() || !j.is_array()) return 1;
  for (const auto& e : j) {
    if (!e.is_string()) return 2;
    out->push_back(e.get<std::string>());
  }
  return 0;
}

const char* kNotStringArray = "when using JSON array syntax, arrays must be comprised of strings only";

ArgResult ParseMaybeJson(std::string_view rest, Node* node) {
  if (rest.empty()) return {};
  std::vector<std::string> elems;
  int r = ParseJson(rest, &elems);
  if (r == 0) {
    node->args = std::move(elems);
    node->json = true;
    return {};
  }
  if (r == 2) return LineError{"dockerfile.json.not_strings", kNotStringArray};
  node->args = {std::string(rest)};
  return {};
}

ArgResult ParseWhitespaceList(std::string_view rest, Node* node) {
  if (rest.empty()) return {};
  node->args = SplitWs(rest, -1);
  return {};
}

ArgResult ParseMaybeJsonToList(std::string_view rest, Node* node) {
  std::vector<std::string> elems;
  int r = ParseJson(rest, &elems);
  if (r == 0) {
    node->args = std::move(elems);
    node->json = true;
    return {};
  }
  if (r == 2) return LineError{"dockerfile.json.not_strings", kNotStringArray};
  return ParseWhitespaceList(rest, node);
}

ArgResult ParseNameVal(std::string_view rest, const char* key, char escape, Node* node) {
  auto words = ParseWords(rest, escape);
  if (words.empty()) return {};
  if (words[0].find('=') == std::string::npos) {
    auto parts = SplitWs(rest, 2);
    if (parts.size() < 2)
      return LineError{"dockerfile.args", std::string(key) + " must have two arguments"};
    node->kvs.push_back({parts[0], parts[1], true});
    return {};
  }
  for (const auto& w : words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos)
      return LineError{"dockerfile.args", "Syntax error - can't find = in \"" + w +
                                              "\". Must be of the form: name=value"};
    node->kvs.push_back({w.substr(0, eq), w.substr(eq + 1), false});
  }
  return {};
}

ArgResult ParseHealthConfig(std::string_view rest, Node* node) {
  size_t sep = 0;
  while (sep < rest.size() && !IsUnicodeSpace(static_cast<unsigned char>(rest[sep]))) ++sep;
  size_t next = sep;
  while (next < rest.size() && IsUnicodeSpace(static_cast<unsigned char>(rest[next]))) ++next;
  if (sep == 0) return {};
  Node cmd;
  if (auto err = ParseMaybeJson(rest.substr(next), &cmd)) return err;
  node->args.push_back(std::string(rest.substr(0, sep)));
  for (auto& a : cmd.args) node->args.push_back(std::move(a));
  node->json = cmd.json;
  return {};
}

bool IsKnown(const std::string& cmd) {
  static const char* const kKnown[] = {"add", "arg", "cmd", "copy", "entrypoint", "env", "expose",
                                       "from", "healthcheck", "label", "maintainer", "onbuild",
                                       "run", "shell", "stopsignal", "user", "volume", "workdir"};
  for (const char* k : kKnown)
    if (cmd == k) return true;
  return false;
}

ArgResult NodeFromLine(std::string_view line, char escape, Node* node) {
  auto cmdline = SplitWs(TrimSpace(line), 2);
  node->keyword = cmdline[0];
  node->cmd = AsciiLower(cmdline[0]);
  node->original = std::string(line);
  std::string rest;
  if (cmdline.size() == 2) rest = ExtractFlags(cmdline[1], &node->flags);
  node->rest = rest;
  node->known = IsKnown(node->cmd);
  const std::string& c = node->cmd;
  if (!node->known) return {};
  if (c == "add" || c == "copy" || c == "volume") return ParseMaybeJsonToList(rest, node);
  if (c == "cmd" || c == "entrypoint" || c == "run" || c == "shell") return ParseMaybeJson(rest, node);
  if (c == "arg") {
    node->args = ParseWords(rest, escape);
    return {};
  }
  if (c == "env") return ParseNameVal(rest, "ENV", escape, node);
  if (c == "label") return ParseNameVal(rest, "LABEL", escape, node);
  if (c == "expose" || c == "from") return ParseWhitespaceList(rest, node);
  if (c == "healthcheck") return ParseHealthConfig(rest, node);
  if (c == "onbuild") {
    if (rest.empty()) return {};
    node->sub = std::make_unique<Node>();
    return NodeFromLine(rest, escape, node->sub.get());
  }
  // maintainer, stopsignal, user, workdir: the rest as one string.
  if (!rest.empty()) node->args = {rest};
  return {};
}

bool CanContainHeredoc(const Node& node) {
  const Node* n = &node;
  if (n->cmd == "onbuild" && n->sub) n = n->sub.get();
  if (n->cmd != "add" && n->cmd != "copy" && n->cmd != "run") return false;
  return !n->json;
}

// Physical lines with their newline kept, as BuildKit's scanLines yields them.
std::vector<std::string_view> ScanLines(std::string_view content) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string_view::npos) {
      out.push_back(content.substr(start));
      break;
    }
    out.push_back(content.substr(start, nl + 1 - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

Expected<SyntaxTree> Parse(std::string_view content, std::string_view file, const ParseLimits& limits) {
  SyntaxTree tree;
  tree.file = std::string(file);
  if (content.size() > limits.max_file_bytes)
    return MakeError(ErrorKind::kInvalidInput, "dockerfile.limit.size",
                     std::string(file) + ": file is " + std::to_string(content.size()) +
                         " bytes, more than the maximum of " + std::to_string(limits.max_file_bytes));
  auto raw = ScanLines(content);
  tree.lines.reserve(raw.size());
  for (auto l : raw) tree.lines.emplace_back(TrimNewline(l));
  for (size_t i = 0; i < raw.size(); ++i) {
    if (TrimNewline(raw[i]).size() > limits.max_line_bytes)
      return SourceError(file, tree.lines, static_cast<int>(i + 1), 0, "dockerfile.limit.line",
                         "dockerfile line greater than max allowed size of " +
                             std::to_string(limits.max_line_bytes));
  }
  auto err_at = [&](int line, const std::string& code, const std::string& msg) {
    return SourceError(file, tree.lines, line, 0, code, msg);
  };

  DirectiveParser directives;
  std::vector<std::string> comments;
  size_t idx = 0;
  int current = 0;
  while (idx < raw.size()) {
    std::string_view bytes = raw[idx++];
    if (current == 0 && bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    if (IsComment(bytes)) {
      std::string_view c = TrimSpace(TrimLeftSpace(TrimNewline(bytes)).substr(1));
      if (c.empty()) comments.clear();
      else comments.emplace_back(c);
    }
    std::string_view stripped = TrimLeftSpace(TrimNewline(bytes));
    ++current;
    auto dir = directives.ParseLine(stripped, current);
    if (!dir.ok()) return err_at(current, dir.error().code, dir.error().message);
    std::string line = IsComment(bytes) ? std::string() : std::string(stripped);
    int start_line = current;
    bool continued = TrimContinuation(&line, directives.escape());
    if (!continued && line.empty()) continue;

    bool empty_continuation = false;
    while (continued && idx < raw.size()) {
      std::string_view next = raw[idx++];
      ++current;
      if (IsComment(next)) continue;
      std::string_view body = TrimNewline(next);
      if (TrimLeftSpace(body).empty()) {
        empty_continuation = true;
        continue;
      }
      std::string part(body);
      continued = TrimContinuation(&part, directives.escape());
      line += part;
    }
    if (empty_continuation)
      tree.warnings.push_back({"Empty continuation line found in: " + line, current});

    Node node;
    if (auto e = NodeFromLine(line, directives.escape(), &node))
      return err_at(start_line, e->code, e->message);
    node.comments = std::move(comments);
    comments.clear();

    if (CanContainHeredoc(node) && line.find("<<") != std::string::npos) {
      auto docs = HeredocsFromLine(line);
      if (!docs.ok()) return err_at(start_line, docs.error().code, docs.error().ToString());
      for (auto& doc : *docs) {
        bool terminated = false;
        while (idx < raw.size()) {
          std::string_view body = raw[idx++];
          ++current;
          std::string_view candidate = TrimNewline(body);
          if (doc.chomp) {
            while (!candidate.empty() && candidate[0] == '\t') candidate.remove_prefix(1);
          }
          if (candidate == doc.name) {
            terminated = true;
            break;
          }
          doc.content.append(body);
        }
        if (!terminated)
          return err_at(start_line, "dockerfile.heredoc.unterminated", "unterminated heredoc");
        node.heredocs.push_back(std::move(doc));
      }
    }
    node.line = start_line;
    node.end_line = current;
    tree.nodes.push_back(std::move(node));
  }
  tree.directives = directives.parsed();
  tree.directive_lines = directives.lines();
  tree.escape = directives.escape();
  if (tree.nodes.empty())
    return err_at(current == 0 ? 1 : current, "dockerfile.empty", "file with no instructions");
  return tree;
}

}  // namespace manifold::dockerfile
