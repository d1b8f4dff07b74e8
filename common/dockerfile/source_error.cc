#include "common/dockerfile/source_error.h"

namespace manifold::dockerfile {

namespace {
constexpr size_t kMaxShownLine = 200;
}

Error SourceError(std::string_view file, const std::vector<std::string>& lines, int line,
                  int column, std::string code, std::string message, ErrorKind kind) {
  Error e = MakeError(kind, std::move(code), std::string(file) + ":" + std::to_string(line) + ": " + message);
  SourceRange where;
  where.file = std::string(file);
  where.line = line;
  where.column = column;
  where.end_line = line;
  e.where = where;
  if (line >= 1 && static_cast<size_t>(line) <= lines.size()) {
    std::string shown = lines[static_cast<size_t>(line) - 1];
    // Control bytes would garble a terminal: show them as '?'.
    for (char& c : shown)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) c = '?';
    if (shown.size() > kMaxShownLine) shown = shown.substr(0, kMaxShownLine) + "...";
    size_t col = column > 0 ? static_cast<size_t>(column - 1) : 0;
    if (col > shown.size()) col = shown.size();
    std::string pad;
    for (size_t i = 0; i < col; ++i) pad += shown[i] == '\t' ? '\t' : ' ';
    e.detail = shown + "\n" + pad + "^ near here";
  }
  return e;
}

}  // namespace manifold::dockerfile
