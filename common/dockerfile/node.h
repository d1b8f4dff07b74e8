// The syntax layer's output: what BuildKit's parser produces, before any
// instruction is interpreted (frontend/dockerfile/parser Node).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace manifold::dockerfile {

/// A heredoc read after an instruction line (`<<EOF`, `<<-EOF`, `3<<"EOF"`).
struct Heredoc {
  std::string name;     ///< the delimiter word, quotes removed
  std::string content;  ///< the lines read, each ending in "\n", tabs not yet stripped
  bool expand = true;   ///< false when the delimiter was quoted
  bool chomp = false;   ///< `<<-`: leading tabs are stripped from each line
  int fd = 0;           ///< the file descriptor before `<<`, 0 when absent
};

/// One key/value pair of ENV or LABEL.
struct KeyValue {
  std::string key;
  std::string value;
  bool legacy = false;  ///< `ENV k v` rather than `ENV k=v`
};

struct Node {
  std::string keyword;   ///< as written (`RUN`, `run`, `Run`)
  std::string cmd;       ///< lowercase keyword
  std::vector<std::string> flags;   ///< `--flag=value` words, quotes removed
  std::vector<std::string> args;    ///< split as BuildKit's parser splits them
  std::vector<KeyValue> kvs;        ///< ENV and LABEL
  bool json = false;                ///< exec (JSON array) form
  bool known = true;                ///< false for instructions BuildKit ignores at this layer
  std::vector<Heredoc> heredocs;
  std::unique_ptr<Node> sub;        ///< ONBUILD's instruction
  std::string original;             ///< the logical line, continuations joined
  std::string rest;                 ///< the text after the keyword and flags
  std::vector<std::string> comments;  ///< comment lines just above
  int line = 0;                     ///< first physical line (1-based)
  int end_line = 0;                 ///< last physical line, heredocs included
};

struct Warning {
  std::string message;
  int line = 0;
};

/// A parsed file: directives, instructions in order, warnings.
struct SyntaxTree {
  std::string file;                              ///< name used in messages ("Dockerfile")
  std::map<std::string, std::string> directives; ///< lowercase key -> value
  std::map<std::string, int> directive_lines;    ///< lowercase key -> line
  char escape = '\\';
  std::vector<Node> nodes;
  std::vector<Warning> warnings;
  std::vector<std::string> lines;                ///< physical lines, for error carets
};

}  // namespace manifold::dockerfile
