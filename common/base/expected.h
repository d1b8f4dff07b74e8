// A small Expected<T>: value or Error. Our own type because clang-14 (used for
// the libFuzzer builds) cannot compile GCC 12's std::expected.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "common/base/error.h"

namespace manifold {

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(const T& value) : v_(std::in_place_index<0>, value) {}
  Expected(T&& value) : v_(std::in_place_index<0>, std::move(value)) {}
  template <class U,
            class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                     !std::is_same_v<std::decay_t<U>, T> &&
                                     !std::is_same_v<std::decay_t<U>, Error> &&
                                     !std::is_same_v<std::decay_t<U>, Expected>>>
  Expected(U&& value) : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}
  Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { Check(); return std::get<0>(v_); }
  const T& value() const& { Check(); return std::get<0>(v_); }
  T&& value() && { Check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  /// Adds context to the error, if any.
  Expected With(std::string ctx) && {
    if (!ok()) return std::move(std::get<1>(v_)).With(std::move(ctx));
    return std::move(*this);
  }

 private:
  void Check() const {
    if (!ok()) AssertFailed("ok()", __FILE__, __LINE__, std::get<1>(v_).ToString());
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  void value() const {
    if (!ok()) AssertFailed("ok()", __FILE__, __LINE__, error_->ToString());
  }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }
  Expected With(std::string ctx) && {
    if (!ok()) return std::move(*error_).With(std::move(ctx));
    return std::move(*this);
  }

 private:
  std::optional<Error> error_;
};

inline Expected<void> Ok() { return {}; }

}  // namespace manifold

#define MF_CONCAT_INNER(a, b) a##b
#define MF_CONCAT(a, b) MF_CONCAT_INNER(a, b)

/// MF_TRY(var, expr): evaluates expr (an Expected<T>); on error returns it, else
/// declares `auto var` holding the value.
#define MF_TRY(var, expr)                                    \
  auto MF_CONCAT(mf_try_, __LINE__) = (expr);                \
  if (!MF_CONCAT(mf_try_, __LINE__).ok())                    \
    return std::move(MF_CONCAT(mf_try_, __LINE__)).error();  \
  auto var = std::move(MF_CONCAT(mf_try_, __LINE__)).value()

/// MF_TRY_VOID(expr): evaluates an Expected<void> (or any Expected); returns its error.
#define MF_TRY_VOID(expr)                                    \
  do {                                                       \
    auto mf_try_v = (expr);                                  \
    if (!mf_try_v.ok()) return std::move(mf_try_v).error();  \
  } while (0)
