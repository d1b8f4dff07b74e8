#include "common/fs/errno_error.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace manifold::fs {
namespace {

struct Class {
  ErrorKind kind;
  const char* code;
};

Class Classify(int err) {
  switch (err) {
    case ENOENT: return {ErrorKind::kInvalidInput, "fs.not_found"};
    case EEXIST: return {ErrorKind::kInvalidInput, "fs.exists"};
    case ENOTDIR: return {ErrorKind::kInvalidInput, "fs.not_dir"};
    case EISDIR: return {ErrorKind::kInvalidInput, "fs.is_dir"};
    case ENOTEMPTY: return {ErrorKind::kInvalidInput, "fs.not_empty"};
    case ELOOP: return {ErrorKind::kInvalidInput, "fs.loop"};
    case ENAMETOOLONG: return {ErrorKind::kInvalidInput, "fs.name_too_long"};
    case EXDEV: return {ErrorKind::kInvalidInput, "fs.cross_device"};
    case EBUSY: return {ErrorKind::kInvalidInput, "fs.busy"};
    case EINVAL: return {ErrorKind::kInvalidInput, "fs.invalid"};
    case ENOSPC:
    case EDQUOT: return {ErrorKind::kResourceExhausted, "fs.no_space"};
    case EMFILE:
    case ENFILE:
    case ENOMEM: return {ErrorKind::kResourceExhausted, "fs.no_resources"};
    case EIO: return {ErrorKind::kResourceExhausted, "fs.io"};
    case ENOTSUP:
    case ENOSYS: return {ErrorKind::kUnimplemented, "fs.unsupported"};
    case EPERM:
    case EACCES: return {ErrorKind::kInternal, "fs.permission"};
    default: return {ErrorKind::kInternal, "fs.syscall"};
  }
}

}  // namespace

Error ErrnoError(std::string_view op, std::string_view what, int err) {
  Class c = Classify(err);
  std::string message(op);
  message += " \"";
  message += what;
  message += "\": ";
  message += std::strerror(err);
  return MakeError(c.kind, c.code, std::move(message));
}

}  // namespace manifold::fs
