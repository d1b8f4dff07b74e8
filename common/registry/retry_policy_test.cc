#include "common/registry/retry_policy.h"

#include <gtest/gtest.h>

namespace manifold::registry {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicyTest, BackoffGrowsWithJitterAndCap) {
  RetryPolicy p;
  p.initial_backoff = milliseconds(100);
  p.max_backoff = milliseconds(1000);
  for (int i = 0; i < 50; ++i) {
    auto first = Backoff(p, 1);
    EXPECT_GE(first.count(), 50);
    EXPECT_LE(first.count(), 100);
    auto third = Backoff(p, 3);
    EXPECT_GE(third.count(), 200);
    EXPECT_LE(third.count(), 400);
    auto tenth = Backoff(p, 10);
    EXPECT_GE(tenth.count(), 500);
    EXPECT_LE(tenth.count(), 1000);
  }
}

TEST(RetryPolicyTest, RetryableStatuses) {
  EXPECT_TRUE(IsRetryableStatus(429, 0));
  EXPECT_TRUE(IsRetryableStatus(429, 429));
  EXPECT_TRUE(IsRetryableStatus(408, 408));
  EXPECT_TRUE(IsRetryableStatus(503, 0));
  EXPECT_TRUE(IsRetryableStatus(503, 500));
  EXPECT_FALSE(IsRetryableStatus(503, 503));  // no hot loop on a registry that is down
  EXPECT_FALSE(IsRetryableStatus(501, 0));
  for (int s : {400, 401, 403, 404, 405, 416}) EXPECT_FALSE(IsRetryableStatus(s, 0)) << s;
}

TEST(RetryPolicyTest, ParsesRetryAfter) {
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseRetryAfter("2", now), milliseconds(2000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now), milliseconds(10000));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1", now), std::nullopt);
}

}  // namespace
}  // namespace manifold::registry
