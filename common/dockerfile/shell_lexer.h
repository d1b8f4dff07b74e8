// Dockerfile word expansion ($v, ${v:-w}, quotes, escapes) exactly as BuildKit's
// shell lexer (frontend/dockerfile/shell/lex.go) does it.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::dockerfile {

/// Variable lookup: returns nullopt when the variable is unset.
using VarLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct ExpandOptions {
  bool raw_quotes = false;           ///< keep quotes in the output (BuildKit RawQuotes, heredocs)
  bool raw_escapes = false;          ///< keep escape tokens in the output (BuildKit RawEscapes)
  bool skip_unset_env = false;       ///< leave $unset as written (BuildKit SkipUnsetEnv)
  bool skip_process_quotes = false;  ///< quotes are plain characters (BuildKit SkipProcessQuotes)
  size_t max_output_bytes = 1 << 20;  ///< RELIABILITY A4: expansion may not grow past this
};

struct ExpandResult {
  std::string word;                 ///< the expanded word
  std::set<std::string> matched;    ///< variables referenced that were set
  std::set<std::string> unmatched;  ///< variables referenced that were unset
};

/// Expands words as BuildKit's shell.Lex. Errors are kInvalidInput:
///   "dockerfile.expansion"           BuildKit's own message, e.g.
///                                    `failed to process "${a": syntax error: missing '}'`
///   "dockerfile.expansion.too_large" output (or work) past ExpandOptions::max_output_bytes
///   "dockerfile.expansion.too_deep"  ${...} nested deeper than kMaxNesting
/// Stateless and safe to share between threads.
class ShellLexer {
 public:
  static constexpr int kMaxNesting = 100;

  explicit ShellLexer(char escape_token = '\\');

  /// Expands `word` (BuildKit ProcessWordWithMatches).
  Expected<ExpandResult> ProcessWord(std::string_view word, const VarLookup& env,
                                     const ExpandOptions& opts = {}) const;

  /// Expands `word` and splits it into fields on unquoted whitespace (BuildKit ProcessWords).
  Expected<std::vector<std::string>> ProcessWords(std::string_view word, const VarLookup& env,
                                                  const ExpandOptions& opts = {}) const;

 private:
  char escape_token_;
};

}  // namespace manifold::dockerfile
