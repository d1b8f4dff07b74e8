#include "coordinator/build/placement.h"

#include <gtest/gtest.h>

namespace manifold::coordinator {
namespace {

const oci::Platform kAmd64{"linux", "amd64", ""};
const oci::Platform kArm64{"linux", "arm64", ""};
const std::vector<std::pair<oci::Platform, bool>> kAmdHost{{kAmd64, false}, {kArm64, true}};
const std::vector<std::pair<oci::Platform, bool>> kArmHost{{kArm64, false}};

TEST(PlacementTest, NativeBeatsEmulatedBeatsHeldInputsBeatsLoad) {
  std::vector<SlotView> slots{{"x86-s0", "x86", &kAmdHost, true}, {"arm-s0", "arm", &kArmHost, true}};
  std::map<std::string, int> held{{"x86", 5}}, load;
  // arm64 goes to the native arm worker even though the x86 one holds inputs.
  EXPECT_EQ(Place({kArm64, true, &held, &load}, slots).slot, "arm-s0");
  // With the arm slot busy, the emulating x86 slot takes it.
  slots[1].idle = false;
  EXPECT_EQ(Place({kArm64, true, &held, &load}, slots).slot, "x86-s0");
  // amd64 runs nowhere but on x86.
  slots[0].idle = false;
  auto p = Place({kAmd64, true, &held, &load}, slots);
  EXPECT_EQ(p.slot, "");
  EXPECT_TRUE(p.capable);
}

TEST(PlacementTest, MostInputsThenLeastLoaded) {
  std::vector<SlotView> slots{{"a-s0", "a", &kAmdHost, true}, {"b-s0", "b", &kAmdHost, true},
                              {"c-s0", "c", &kAmdHost, true}};
  std::map<std::string, int> held{{"b", 2}, {"c", 2}}, load{{"b", 3}, {"c", 1}};
  EXPECT_EQ(Place({kAmd64, true, &held, &load}, slots).slot, "c-s0");
  held["b"] = 3;
  EXPECT_EQ(Place({kAmd64, true, &held, &load}, slots).slot, "b-s0");
}

TEST(PlacementTest, HealthyBeforeDegradedWhateverItHolds) {
  std::vector<SlotView> slots{{"a-s0", "a", &kAmdHost, true, true}, {"b-s0", "b", &kAmdHost, true, false}};
  std::map<std::string, int> held{{"a", 9}}, load{{"b", 4}};
  EXPECT_EQ(Place({kAmd64, true, &held, &load}, slots).slot, "b-s0");
  // Still better than nothing, and native still beats emulated.
  slots[1].idle = false;
  EXPECT_EQ(Place({kAmd64, true, &held, &load}, slots).slot, "a-s0");
  std::vector<SlotView> arm{{"x-s0", "x", &kAmdHost, true, false}, {"p-s0", "p", &kArmHost, true, true}};
  EXPECT_EQ(Place({kArm64, true, nullptr, nullptr}, arm).slot, "p-s0");
}

TEST(PlacementTest, NoSlotForThePlatformIsNotCapable) {
  std::vector<SlotView> slots{{"arm-s0", "arm", &kArmHost, true}};
  auto p = Place({kAmd64, true, nullptr, nullptr}, slots);
  EXPECT_EQ(p.slot, "");
  EXPECT_FALSE(p.capable);
  // A job without RUN steps runs anywhere.
  EXPECT_EQ(Place({kAmd64, false, nullptr, nullptr}, slots).slot, "arm-s0");
}

}  // namespace
}  // namespace manifold::coordinator
