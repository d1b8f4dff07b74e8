// When to try a registry request again (RELIABILITY.md 3.6, after containerd's
// retryRequest): at most max_attempts in all; 408 and 429 always retried
// (honouring Retry-After), 500/502/503/504 only if the previous attempt did
// not end with the same status (no hot loop on a registry that is down), and
// transport failures (kTransient) with exponential backoff and jitter. Never
// any other 4xx; 401 is the authenticator's, once.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace manifold::registry {

struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
  /// A Retry-After longer than this is not waited for: the request fails
  /// with kTransient at once, for the scheduler to come back later.
  std::chrono::milliseconds max_retry_after{60000};
};

/// Delay before attempt `failures + 1` after `failures` failed ones:
/// initial_backoff * 2^(failures-1), capped at max_backoff, with jitter in
/// [half, full].
std::chrono::milliseconds Backoff(const RetryPolicy& policy, int failures);

/// Whether a response status is worth another attempt, given the status of
/// the attempt before (0 if none).
bool IsRetryableStatus(int status, int previous_status);

/// A Retry-After value: delta-seconds ("2") or an HTTP-date relative to
/// `now`. nullopt when malformed.
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace manifold::registry
