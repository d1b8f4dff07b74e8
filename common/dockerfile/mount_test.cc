#include "common/dockerfile/mount.h"

#include <gtest/gtest.h>

namespace manifold::dockerfile {
namespace {

Expected<std::string> Identity(const std::string& w) { return w; }

MountSpec Must(const std::string& spec) {
  WordExpander e = Identity;
  auto m = ParseMount(spec, &e);
  EXPECT_TRUE(m.ok()) << spec << ": " << (m.ok() ? "" : m.error().message);
  return m.ok() ? *m : MountSpec{};
}

std::string Fail(const std::string& spec, bool expand = true) {
  WordExpander e = Identity;
  auto m = ParseMount(spec, expand ? &e : nullptr);
  EXPECT_FALSE(m.ok()) << spec;
  return m.ok() ? "" : m.error().message;
}

TEST(MountTest, Defaults) {
  auto bind = Must("target=/x");
  EXPECT_EQ(bind.type, "bind");
  EXPECT_TRUE(bind.readonly);
  auto cache = Must("type=cache,target=/root/.cache");
  EXPECT_FALSE(cache.readonly);
  EXPECT_EQ(cache.sharing, "shared");
  auto tmp = Must("type=tmpfs,dst=/t,size=64m");
  EXPECT_EQ(tmp.size_bytes, 64 << 20);
  EXPECT_FALSE(tmp.readonly);
}

TEST(MountTest, AllOptions) {
  auto c = Must("type=cache,id=bb,target=/c,sharing=locked,from=builder,source=/s,mode=0700,uid=10,gid=20,rw");
  EXPECT_EQ(c.id, "bb");
  EXPECT_EQ(c.sharing, "locked");
  EXPECT_EQ(c.from, "builder");
  EXPECT_EQ(c.source, "/s");
  EXPECT_EQ(*c.mode, 0700u);
  EXPECT_EQ(*c.uid, 10u);
  EXPECT_EQ(*c.gid, 20u);
  auto s = Must("type=secret,id=tok,env=TOKEN,required,mode=0400");
  EXPECT_TRUE(s.required);
  EXPECT_EQ(*s.env, "TOKEN");
  auto b = Must("type=bind,from=ctx,source=a,target=/a,readwrite=true");
  EXPECT_FALSE(b.readonly);
  auto q = Must("type=bind,\"target=/a,b\"");
  EXPECT_EQ(q.target, "/a,b");
}

TEST(MountTest, BuildKitErrors) {
  EXPECT_EQ(Fail("type=nfs,target=/x"), "unsupported mount type \"nfs\"");
  EXPECT_EQ(Fail("type=bind,target=/x,sharing=locked"), "invalid cache sharing set for bind mount");
  EXPECT_EQ(Fail("type=cache,target=/x,sharing=maybe"), "unrecognized sharing parameter: maybe");
  EXPECT_EQ(Fail("type=bind,target=/x,mode=0700"), "mode not allowed for \"bind\" type mounts");
  EXPECT_EQ(Fail("type=cache,target=/x,mode=999"), "invalid value 999 for mode");
  EXPECT_EQ(Fail("type=cache,target=/x,uid=-1"), "invalid value -1 for uid");
  EXPECT_EQ(Fail("type=bind,target=/x,size=1m"), "unexpected key 'size' for mount type 'bind'");
  EXPECT_EQ(Fail("type=cache,target=/x,bogus=1"), "unexpected key 'bogus' in 'bogus=1'");
  EXPECT_EQ(Fail("type=cache,target"), "invalid field 'target' must be a key=value pair");
  EXPECT_EQ(Fail("type=bind,target=/x,required"), "unexpected key 'required' for mount type 'bind'");
  EXPECT_EQ(Fail("type=secret,from=x,id=a"), "secret mount should not have a from");
  EXPECT_EQ(Fail("type=secret"), "invalid secret mount. one of source, target required");
  EXPECT_EQ(Fail("type=secret,source=a,id=b"), "both source and id can't be set");
  EXPECT_EQ(Fail("type=cache"), "mount target is required for cache mounts");
  EXPECT_EQ(Fail("type=bind,ro=maybe,target=/x"), "invalid value for ro: maybe");
  EXPECT_EQ(Fail("type=bind,from=$STAGE,target=/x", false),
            "'from' doesn't support variable expansion, define alias stage instead");
  EXPECT_EQ(Fail("type=bind,tar\"get=/x"), "failed to parse csv mounts: bare \" in non-quoted-field");
}

TEST(MountTest, UnexpandedValuesAreDeferred) {
  auto m = ParseMount("type=cache,target=$DIR,mode=$MODE", nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, "cache");
}

TEST(MountTest, RamBytes) {
  EXPECT_EQ(*ParseRamBytes("1024"), 1024);
  EXPECT_EQ(*ParseRamBytes("1k"), 1024);
  EXPECT_EQ(*ParseRamBytes("2 GiB"), 2LL << 30);
  EXPECT_FALSE(ParseRamBytes("lots"));
}

}  // namespace
}  // namespace manifold::dockerfile
