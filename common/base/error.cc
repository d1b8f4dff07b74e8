#include "common/base/error.h"

#include <sstream>

namespace manifold {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kIntegrity: return "integrity";
    case ErrorKind::kSecurity: return "security";
    case ErrorKind::kTransient: return "transient";
    case ErrorKind::kDisconnected: return "disconnected";
    case ErrorKind::kResourceExhausted: return "resource_exhausted";
    case ErrorKind::kUnimplemented: return "unimplemented";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

Error Error::With(std::string ctx) && {
  context.push_back(std::move(ctx));
  return std::move(*this);
}

Error Error::With(std::string ctx) const& {
  Error copy = *this;
  copy.context.push_back(std::move(ctx));
  return copy;
}

std::string Error::ToString() const {
  std::string out = message;
  // Context reads outermost first: "building x: applying layer y: <message>".
  for (const auto& c : context) out = c + ": " + out;
  if (!detail.empty()) out += "\n" + detail;
  return out;
}

Error MakeError(ErrorKind kind, std::string code, std::string message) {
  Error e;
  e.kind = kind;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

void AssertFailed(const char* expr, const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << file << ":" << line << ": assertion failed: " << expr;
  if (!msg.empty()) os << ": " << msg;
  throw InternalError(os.str());
}

}  // namespace manifold
