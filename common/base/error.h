// Errors as values: every failure says whose fault it is and whether trying
// again elsewhere can help (STYLE.md section 5).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace manifold {

/// What the caller should do about a failure. Retry decisions read only this.
enum class ErrorKind {
  kInvalidInput,       ///< the user's input is wrong: never retry
  kIntegrity,          ///< digest/size mismatch: retry from another source once
  kSecurity,           ///< breakout attempt, bad entitlement: never retry
  kTransient,          ///< network reset, 5xx, timeout: retry with backoff
  kDisconnected,       ///< peer lost: reschedule elsewhere
  kResourceExhausted,  ///< disk full, quota: retry elsewhere or later
  kUnimplemented,      ///< not supported: fail with guidance
  kInternal,           ///< our bug
};

/// Stable lowercase name of a kind ("invalid_input", ...).
const char* ErrorKindName(ErrorKind kind);

/// A position in a source file (1-based line and column; 0 = unknown).
struct SourceRange {
  std::string file;
  int line = 0;
  int column = 0;
  int end_line = 0;
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string code;                  ///< stable, greppable: "dockerfile.unknown_instruction"
  std::string message;               ///< human sentence, no trailing period
  std::vector<std::string> context;  ///< outermost last
  std::optional<SourceRange> where;  ///< Dockerfile position when known
  std::string detail;                ///< extra lines shown after the message (source line, caret)

  /// Adds a context line ("applying layer sha256:..") on the way up.
  Error With(std::string ctx) &&;
  Error With(std::string ctx) const&;

  /// "message: context..." as shown to users; detail lines follow on new lines.
  std::string ToString() const;
};

Error MakeError(ErrorKind kind, std::string code, std::string message);

/// Thrown by MF_ASSERT; caught only at the top of a step, handler or main.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void AssertFailed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace manifold

#define MF_ASSERT(cond, ...)                                                        \
  do {                                                                              \
    if (!(cond)) ::manifold::AssertFailed(#cond, __FILE__, __LINE__, std::string{__VA_ARGS__}); \
  } while (0)
