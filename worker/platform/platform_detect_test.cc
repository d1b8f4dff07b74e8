#include "worker/platform/platform_detect.h"

#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace manifold::worker {
namespace {

namespace fs = std::filesystem;

TEST(PlatformFromMachineTest, MapsUnameMachines) {
  const struct {
    const char* machine;
    const char* platform;
  } cases[] = {
      {"x86_64", "linux/amd64"},   {"aarch64", "linux/arm64"},     {"armv7l", "linux/arm/v7"},
      {"armv6l", "linux/arm/v6"},  {"i686", "linux/386"},          {"riscv64", "linux/riscv64"},
      {"ppc64le", "linux/ppc64le"}, {"s390x", "linux/s390x"},      {"loongarch64", "linux/loong64"},
  };
  for (const auto& c : cases) {
    auto p = PlatformFromMachine(c.machine);
    ASSERT_TRUE(p.ok()) << c.machine;
    EXPECT_EQ(p->ToString(), c.platform);
  }
  auto unknown = PlatformFromMachine("pdp11");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(unknown.error().code, "platform.unknown_machine");
  EXPECT_EQ(unknown.error().message, "unknown machine architecture \"pdp11\"");
}

TEST(DetectNativePlatformTest, AgreesWithUname) {
  struct utsname u {};
  ASSERT_EQ(uname(&u), 0);
  auto native = DetectNativePlatform();
  ASSERT_TRUE(native.ok()) << native.error().ToString();
  EXPECT_EQ(native->os, "linux");
  EXPECT_EQ(*native, *PlatformFromMachine(u.machine));
}

class BinfmtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "binfmt_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "binfmt_misc");
    fs::create_directories(root_ / "usr/bin");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Interpreter(const std::string& name, bool create = true) {
    fs::path p = root_ / "usr/bin" / name;
    if (create) std::ofstream(p) << "#!fake\n";
    return p.string();
  }
  void Handler(const std::string& name, bool enabled, const std::string& interpreter) {
    std::ofstream(root_ / "binfmt_misc" / name)
        << (enabled ? "enabled" : "disabled") << "\ninterpreter " << interpreter
        << "\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n"
        << "mask ffffffffffffff00fffffffffffffffffeffffff\n";
  }
  std::string Dir() const { return (root_ / "binfmt_misc").string(); }

  fs::path root_;
};

TEST_F(BinfmtTest, ListsEnabledHandlersWithInterpreters) {
  std::ofstream(root_ / "binfmt_misc" / "register");  // write-only control files
  std::ofstream(root_ / "binfmt_misc" / "status") << "enabled\n";
  Handler("qemu-aarch64", true, Interpreter("qemu-aarch64-static"));
  Handler("qemu-arm", true, Interpreter("qemu-arm-static"));
  Handler("qemu-riscv64", false, Interpreter("qemu-riscv64-static"));        // disabled
  Handler("qemu-s390x", true, Interpreter("qemu-s390x-static", false));      // no interpreter
  Handler("qemu-ppc64le", true, Interpreter("qemu-ppc64le-static"));
  Handler("python3.11", true, Interpreter("python3.11"));                    // not QEMU

  auto found = DetectEmulatedPlatforms(Dir());
  ASSERT_TRUE(found.ok()) << found.error().ToString();
  ASSERT_EQ(found->size(), 3u);
  EXPECT_EQ((*found)[0].handler, "qemu-aarch64");
  EXPECT_EQ((*found)[0].platform.ToString(), "linux/arm64");
  EXPECT_EQ((*found)[0].interpreter, (root_ / "usr/bin/qemu-aarch64-static").string());
  EXPECT_EQ((*found)[1].handler, "qemu-arm");
  EXPECT_EQ((*found)[1].platform.ToString(), "linux/arm/v7");
  EXPECT_EQ((*found)[2].handler, "qemu-ppc64le");
  EXPECT_EQ((*found)[2].platform.ToString(), "linux/ppc64le");
}

TEST_F(BinfmtTest, MissingDirectoryMeansNoEmulation) {
  auto found = DetectEmulatedPlatforms((root_ / "not-mounted").string());
  ASSERT_TRUE(found.ok()) << found.error().ToString();
  EXPECT_TRUE(found->empty());
}

TEST_F(BinfmtTest, HandlerWithoutInterpreterLineIsIgnored) {
  std::ofstream(root_ / "binfmt_misc" / "qemu-aarch64") << "enabled\nflags: F\n";
  auto found = DetectEmulatedPlatforms(Dir());
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
}

}  // namespace
}  // namespace manifold::worker
