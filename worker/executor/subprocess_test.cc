#include "worker/executor/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace manifold::worker {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin"};

TEST(OutputTailTest, KeepsTheLastBytes) {
  OutputTail tail(4);
  tail.Append("ab");
  tail.Append("cdef");
  EXPECT_EQ(tail.str(), "cdef");
  tail.Append("0123456789");
  tail.Append("x");
  EXPECT_EQ(std::move(tail).Take(), "789x");
}

TEST(SubprocessTest, CapturesStdoutAndStderrAndExitCode) {
  auto r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, kEnv, 10s);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "out\nerr\n");
}

TEST(SubprocessTest, StdinIsDevNullAndEnvIsExact) {
  auto r = RunCommand({"/bin/sh", "-c", "cat; env | grep -v '^PWD=\\|^SHLVL=\\|^_='"}, kEnv, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "PATH=/usr/bin:/bin\n");
}

TEST(SubprocessTest, NoDescriptorLeaksIntoTheChild) {
  // Descriptors opened without O_CLOEXEC, as a careless library would.
  int leaked[3];
  for (int& fd : leaked) fd = open("/dev/null", O_RDONLY);
  auto r = RunCommand({"/bin/ls", "/proc/self/fd"}, kEnv, 10s);
  for (int fd : leaked) close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "0\n1\n2\n3\n");  // 3 is ls's own directory handle
}

TEST(SubprocessTest, SignalIsReportedAs128PlusN) {
  auto r = RunCommand({"/bin/sh", "-c", "kill -9 $$"}, kEnv, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 137);
}

TEST(SubprocessTest, TimeoutKills) {
  const auto start = std::chrono::steady_clock::now();
  auto r = RunCommand({"/bin/sleep", "100"}, kEnv, 200ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "executor.command.timeout");
  EXPECT_EQ(r.error().message, "/bin/sleep did not finish within 200 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(SubprocessTest, ExecFailureIsAnError) {
  auto r = Subprocess::Start({"/nonexistent/binary"}, kEnv);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "executor.spawn");
  EXPECT_EQ(r.error().message, "exec /nonexistent/binary: No such file or directory");
}

TEST(SubprocessTest, StreamsChunksWhileRunning) {
  auto p = Subprocess::Start({"/bin/sh", "-c", "echo one; sleep 0.3; echo two"}, kEnv);
  ASSERT_TRUE(p.ok());
  std::vector<std::string> chunks;
  auto status = p->Wait(Subprocess::Clock::now() + 10s,
                        [&chunks](std::string_view c) { chunks.emplace_back(c); });
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->has_value());
  EXPECT_EQ(**status, 0);
  EXPECT_EQ(chunks, (std::vector<std::string>{"one\n", "two\n"}));
}

}  // namespace
}  // namespace manifold::worker
