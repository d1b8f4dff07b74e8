#include "common/registry/retry_policy.h"

#include <time.h>

#include <algorithm>
#include <random>
#include <string>

namespace manifold::registry {

std::chrono::milliseconds Backoff(const RetryPolicy& policy, int failures) {
  if (failures < 1) failures = 1;
  auto delay = policy.initial_backoff;
  for (int i = 1; i < failures && delay < policy.max_backoff; ++i) delay *= 2;
  delay = std::min(delay, policy.max_backoff);
  if (delay.count() <= 1) return delay;
  // Jitter spreads the retries of many workers hitting one registry.
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_int_distribution<long long> pick(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(pick(rng));
}

bool IsRetryableStatus(int status, int previous_status) {
  if (status == 408 || status == 429) return true;
  if (status == 500 || status == 502 || status == 503 || status == 504)
    return status != previous_status;
  return false;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::milliseconds(std::chrono::hours(24 * 365));
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 section 5.6.7).
  std::string text(value);
  tm parts{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(::timegm(&parts));
  if (at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

}  // namespace manifold::registry
