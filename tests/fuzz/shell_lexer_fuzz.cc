// libFuzzer target for word expansion: the input's first line is a word, the
// rest are NAME=VALUE variables. Expansion must finish within its output
// limit and never crash (RELIABILITY A3, A4).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/dockerfile/shell_lexer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace manifold::dockerfile;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string_view word = in.substr(0, nl);
  std::map<std::string, std::string, std::less<>> vars;
  if (nl != std::string_view::npos) {
    std::string_view rest = in.substr(nl + 1);
    while (!rest.empty()) {
      size_t e = rest.find('\n');
      std::string_view line = rest.substr(0, e);
      size_t eq = line.find('=');
      if (eq != std::string_view::npos) vars[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
      if (e == std::string_view::npos) break;
      rest.remove_prefix(e + 1);
    }
  }
  VarLookup env = [&](std::string_view n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  ExpandOptions opts;
  opts.max_output_bytes = 1 << 16;
  for (char esc : {'\\', '`'}) {
    ShellLexer lexer(esc);
    auto w = lexer.ProcessWord(word, env, opts);
    if (w.ok() && w->word.size() > opts.max_output_bytes) __builtin_trap();
    (void)lexer.ProcessWords(word, env, opts);
    opts.raw_quotes = !opts.raw_quotes;
    opts.skip_unset_env = !opts.skip_unset_env;
  }
  return 0;
}
