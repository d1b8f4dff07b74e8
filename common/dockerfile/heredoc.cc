#include "common/dockerfile/heredoc.h"

#include <algorithm>
#include <cctype>

#include "common/dockerfile/shell_lexer.h"

namespace manifold::dockerfile {

namespace {

std::optional<std::string> NoVars(std::string_view) { return std::nullopt; }

size_t CountQuotes(std::string_view s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\'') + std::count(s.begin(), s.end(), '"'));
}

}  // namespace

Expected<std::optional<Heredoc>> ParseHeredocWord(std::string_view word) {
  // ^(\d*)<<(-?)([^<]*)$
  size_t i = 0;
  while (i < word.size() && std::isdigit(static_cast<unsigned char>(word[i]))) ++i;
  std::string_view digits = word.substr(0, i);
  if (word.substr(i, 2) != "<<") return std::optional<Heredoc>();
  i += 2;
  bool chomp = false;
  if (i < word.size() && word[i] == '-') {
    chomp = true;
    ++i;
  }
  std::string_view rest = word.substr(i);
  if (rest.find('<') != std::string_view::npos || rest.empty()) return std::optional<Heredoc>();

  Heredoc doc;
  doc.chomp = chomp;
  // strconv.ParseUint ignoring errors: overflow gives 0.
  if (!digits.empty() && digits.size() < 10) doc.fd = std::stoi(std::string(digits));

  // Lex the word with and without raw quotes: if the counts of quote
  // characters differ, part of the delimiter was quoted and the body is
  // not expanded.
  ShellLexer lexer('\\');
  ExpandOptions opts;
  opts.skip_unset_env = true;
  MF_TRY(words, lexer.ProcessWords(rest, NoVars, opts));
  if (words.size() != 1) return std::optional<Heredoc>();
  opts.raw_quotes = true;
  MF_TRY(raw, lexer.ProcessWords(rest, NoVars, opts));
  if (raw.size() != words.size())
    return MakeError(ErrorKind::kInvalidInput, "dockerfile.heredoc.lexing",
                     "internal lexing of heredoc produced inconsistent results: " + std::string(rest));
  doc.name = words[0];
  doc.expand = CountQuotes(words[0]) == CountQuotes(raw[0]);
  return std::optional<Heredoc>(std::move(doc));
}

Expected<std::vector<Heredoc>> HeredocsFromLine(std::string_view line) {
  ShellLexer lexer('\\');
  ExpandOptions opts;
  opts.raw_quotes = true;
  opts.raw_escapes = true;
  std::vector<Heredoc> docs;
  auto words = lexer.ProcessWords(line, NoVars, opts);
  // BuildKit ignores lexing errors of the whole line here.
  if (!words.ok()) return docs;
  for (const auto& w : *words) {
    MF_TRY(doc, ParseHeredocWord(w));
    if (doc) docs.push_back(std::move(*doc));
  }
  return docs;
}

std::string ChompHeredocContent(std::string_view content) {
  std::string out;
  out.reserve(content.size());
  bool at_line_start = true;
  for (char c : content) {
    if (at_line_start && c == '\t') continue;
    at_line_start = c == '\n';
    out += c;
  }
  return out;
}

}  // namespace manifold::dockerfile
