#include "common/base/error.h"

#include <gtest/gtest.h>

#include "common/base/expected.h"

namespace manifold {
namespace {

Expected<int> Half(int x) {
  if (x % 2) return MakeError(ErrorKind::kInvalidInput, "test.odd", "odd number " + std::to_string(x));
  return x / 2;
}

Expected<int> Quarter(int x) {
  MF_TRY(h, Half(x));
  MF_TRY(q, Half(h).With("halving " + std::to_string(h)));
  return q;
}

TEST(ExpectedTest, PropagatesErrorsWithContext) {
  auto ok = Quarter(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(bad.error().code, "test.odd");
  EXPECT_EQ(bad.error().ToString(), "halving 3: odd number 3");
}

TEST(ExpectedTest, ValueOfErrorAsserts) {
  Expected<int> e = MakeError(ErrorKind::kIntegrity, "x", "boom");
  EXPECT_THROW((void)e.value(), InternalError);
  EXPECT_STREQ(ErrorKindName(e.error().kind), "integrity");
}

TEST(ExpectedTest, VoidCarriesErrors) {
  Expected<void> fine;
  EXPECT_TRUE(fine.ok());
  Expected<void> bad = MakeError(ErrorKind::kSecurity, "s", "no");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(std::move(bad).With("ctx").error().ToString(), "ctx: no");
}

TEST(AssertTest, ThrowsInternalError) {
  EXPECT_THROW(MF_ASSERT(1 == 2, "math"), InternalError);
}

}  // namespace
}  // namespace manifold
