#include "common/cache/cache_key.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace manifold::cache {
namespace {

using dockerfile::Cmd;
using dockerfile::Instruction;

constexpr Cmd kAllCmds[] = {
    Cmd::kFrom, Cmd::kRun,   Cmd::kCmd,   Cmd::kEntrypoint, Cmd::kShell,   Cmd::kHealthcheck,
    Cmd::kCopy, Cmd::kAdd,   Cmd::kEnv,   Cmd::kLabel,      Cmd::kArg,     Cmd::kExpose,
    Cmd::kVolume, Cmd::kUser, Cmd::kWorkdir, Cmd::kOnbuild, Cmd::kStopsignal, Cmd::kMaintainer,
};

oci::Platform P(const char* os, const char* arch, const char* variant = "") {
  return oci::Platform{os, arch, variant};
}

// A realistic expanded instruction of each kind.
Instruction BaseInstruction(Cmd cmd) {
  Instruction in;
  in.cmd = cmd;
  in.line = 3;
  in.end_line = 3;
  switch (cmd) {
    case Cmd::kFrom:
      in.base = "docker.io/library/alpine:3.19";
      in.stage_name = "build";
      in.platform = "linux/amd64";
      break;
    case Cmd::kRun:
      in.args = {"make -j4 && make install"};
      in.prepend_shell = true;
      in.mounts = {
          "type=cache,id=go,target=/root/.cache,sharing=shared,mode=0755,uid=0,gid=0",
          "type=secret,id=tok,target=/run/secrets/tok,required=true,mode=0400,uid=0,gid=0",
          "type=bind,from=builder,source=/out,target=/in,rw",
          "type=tmpfs,target=/tmp,size=64m",
          "type=ssh,id=default,target=/run/ssh,required=false",
      };
      in.files = {{"EOF", "echo hi\n", true, false, 0}};
      break;
    case Cmd::kCmd:
      in.args = {"--serve"};
      break;
    case Cmd::kEntrypoint:
      in.args = {"/app"};
      break;
    case Cmd::kShell:
      in.args = {"/bin/bash", "-c"};
      break;
    case Cmd::kHealthcheck:
      in.health_test = {"CMD-SHELL", "curl -f http://localhost/ || exit 1"};
      in.prepend_shell = true;
      in.interval_ns = 30'000'000'000;
      in.timeout_ns = 3'000'000'000;
      in.start_period_ns = 5'000'000'000;
      in.start_interval_ns = 1'000'000'000;
      in.retries = 3;
      break;
    case Cmd::kCopy:
    case Cmd::kAdd:
      in.args = {"src/", "go.mod"};
      in.dest = "/app/";
      in.chown = "1000:1000";
      in.chmod = "0644";
      in.excludes = {"*.md"};
      in.heredoc_sources = {{"conf", "key=value\n", true}};
      if (cmd == Cmd::kCopy) in.from = "builder";
      if (cmd == Cmd::kAdd) in.checksum = "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2015d0f4ab3f1a2a";
      break;
    case Cmd::kEnv:
      in.kvs = {{"PATH", "/usr/local/bin:/usr/bin", false}, {"B", "two words", true}};
      break;
    case Cmd::kLabel:
      in.kvs = {{"org.opencontainers.image.title", "app", false}, {"B", "two words", true}};
      break;
    case Cmd::kArg:
      in.arg_decls = {{"VERSION", std::string("1.0")}, {"NOVALUE", std::nullopt}};
      break;
    case Cmd::kExpose:
      in.args = {"80/tcp", "443"};
      break;
    case Cmd::kVolume:
      in.args = {"/data", "/var/log"};
      break;
    case Cmd::kUser:
      in.args = {"app:app"};
      break;
    case Cmd::kWorkdir:
      in.args = {"/src"};
      break;
    case Cmd::kOnbuild: {
      in.onbuild_expression = "RUN make";
      auto sub = std::make_shared<Instruction>();
      sub->cmd = Cmd::kRun;
      sub->args = {"make"};
      sub->prepend_shell = true;
      in.sub = sub;
      break;
    }
    case Cmd::kStopsignal:
      in.args = {"SIGTERM"};
      break;
    case Cmd::kMaintainer:
      in.args = {"someone@example.com"};
      break;
  }
  return in;
}

StepInputs BaseInputs(Cmd cmd) {
  StepInputs s;
  s.parent = {Parent::Kind::kStep, "sha256:" + std::string(64, 'a')};
  s.target_platform = P("linux", "arm64");
  s.exec_platform = P("linux", "amd64");
  s.instruction = BaseInstruction(cmd);
  s.build_args = {{"VERSION", "1.0"}, {"GOFLAGS", "-mod=vendor"}};
  s.sources = {
      {"src/main.go", oci::Digest{"sha256", std::string(64, '1')}, 0100644, 0, 0, ""},
      {"src/link", oci::Digest{}, 0120777, 0, 0, "main.go"},
  };
  s.from_inputs = {{"builder", "sha256:" + std::string(64, 'b')}};
  return s;
}

std::string Mod(const std::string& s) { return s + "~"; }

// Replaces `old` with `repl` in mount `i`.
std::function<void(StepInputs&)> MountEdit(std::size_t i, std::string old, std::string repl) {
  return [=](StepInputs& s) {
    std::string& m = s.instruction.mounts.at(i);
    auto pos = m.find(old);
    ASSERT_NE(pos, std::string::npos) << m << " has no " << old;
    m.replace(pos, old.size(), repl);
  };
}

struct Mutator {
  std::string name;
  std::function<void(StepInputs&)> apply;
  Cmd only_for = Cmd::kMaintainer;  // with `restricted`: applies to this kind only
  bool restricted = false;
};

std::vector<Mutator> Mutators() {
  std::vector<Mutator> m = {
      // ---- the parent / base
      {"parent.value", [](StepInputs& s) { s.parent.value = "sha256:" + std::string(64, 'c'); }},
      {"parent.kind=stage", [](StepInputs& s) { s.parent.kind = Parent::Kind::kStage; }},
      {"parent.kind=image", [](StepInputs& s) { s.parent.kind = Parent::Kind::kImage; }},
      {"parent=scratch", [](StepInputs& s) { s.parent = {Parent::Kind::kScratch, ""}; }},
      // ---- platforms
      {"target_platform.os", [](StepInputs& s) { s.target_platform.os = "windows"; }},
      {"target_platform.architecture", [](StepInputs& s) { s.target_platform.architecture = "riscv64"; }},
      {"target_platform.variant", [](StepInputs& s) { s.target_platform.variant = "v8"; }},
      {"exec_platform.os", [](StepInputs& s) { s.exec_platform.os = "freebsd"; }},
      {"exec_platform.architecture", [](StepInputs& s) { s.exec_platform.architecture = "s390x"; }},
      {"exec_platform.variant", [](StepInputs& s) { s.exec_platform.variant = "v3"; }},
      {"swap platforms", [](StepInputs& s) { std::swap(s.target_platform, s.exec_platform); }},
      // ---- instruction fields (every field is encoded for every kind)
      {"cmd", [](StepInputs& s) {
         s.instruction.cmd = s.instruction.cmd == Cmd::kRun ? Cmd::kCmd : Cmd::kRun;
       }},
      {"args.push", [](StepInputs& s) { s.instruction.args.push_back("extra"); }},
      {"args.edit", [](StepInputs& s) {
         if (s.instruction.args.empty()) s.instruction.args.push_back("");
         s.instruction.args[0] = Mod(s.instruction.args[0]);
       }},
      {"args.clear_or_empty", [](StepInputs& s) {
         if (s.instruction.args.empty()) s.instruction.args.push_back("");
         else s.instruction.args.clear();
       }},
      {"prepend_shell", [](StepInputs& s) { s.instruction.prepend_shell ^= true; }},
      {"files.push", [](StepInputs& s) { s.instruction.files.push_back({"EOT", "x\n", true, false, 0}); }},
      {"files.name", [](StepInputs& s) {
         if (s.instruction.files.empty()) s.instruction.files.push_back({});
         s.instruction.files[0].name = Mod(s.instruction.files[0].name);
       }},
      {"files.content", [](StepInputs& s) {
         if (s.instruction.files.empty()) s.instruction.files.push_back({});
         s.instruction.files[0].content = Mod(s.instruction.files[0].content) + "zz";
       }},
      {"files.chomp", [](StepInputs& s) {
         if (s.instruction.files.empty()) s.instruction.files.push_back({});
         s.instruction.files[0].chomp ^= true;
         s.instruction.files[0].content += "c";  // distinct from files.expand on empty files
       }},
      {"files.chomp_only", [](StepInputs& s) {
         if (s.instruction.files.empty()) return s.instruction.files.push_back({"", "", true, true, 0});
         s.instruction.files[0].chomp ^= true;
       }},
      {"files.expand", [](StepInputs& s) {
         if (s.instruction.files.empty()) return s.instruction.files.push_back({"", "", false, false, 0});
         s.instruction.files[0].expand ^= true;
       }},
      {"files.fd", [](StepInputs& s) {
         if (s.instruction.files.empty()) return s.instruction.files.push_back({"", "", true, false, 3});
         s.instruction.files[0].fd += 3;
       }},
      {"kvs.push", [](StepInputs& s) { s.instruction.kvs.push_back({"C", "3", false}); }},
      {"kvs.key", [](StepInputs& s) {
         if (s.instruction.kvs.empty()) return s.instruction.kvs.push_back({"k", "", false});
         s.instruction.kvs[0].key = Mod(s.instruction.kvs[0].key);
       }},
      {"kvs.value", [](StepInputs& s) {
         if (s.instruction.kvs.empty()) return s.instruction.kvs.push_back({"", "v", false});
         s.instruction.kvs[0].value = Mod(s.instruction.kvs[0].value);
       }},
      {"kvs.legacy", [](StepInputs& s) {
         if (s.instruction.kvs.empty()) return s.instruction.kvs.push_back({"", "", true});
         s.instruction.kvs[0].legacy ^= true;
       }},
      {"kvs.order", [](StepInputs& s) {
         if (s.instruction.kvs.size() < 2) return s.instruction.kvs.push_back({"ord", "", false});
         std::swap(s.instruction.kvs[0], s.instruction.kvs[1]);  // later ENV wins: order matters
       }},
      {"arg_decls.push", [](StepInputs& s) { s.instruction.arg_decls.push_back({"NEW", "x"}); }},
      {"arg_decls.name", [](StepInputs& s) {
         if (s.instruction.arg_decls.empty()) return s.instruction.arg_decls.push_back({"n", std::nullopt});
         s.instruction.arg_decls[0].name = Mod(s.instruction.arg_decls[0].name);
       }},
      {"arg_decls.value", [](StepInputs& s) {
         if (s.instruction.arg_decls.empty()) return s.instruction.arg_decls.push_back({"", "v"});
         s.instruction.arg_decls[0].value = Mod(s.instruction.arg_decls[0].value.value_or(""));
       }},
      {"arg_decls.value_unset_vs_empty", [](StepInputs& s) {
         if (s.instruction.arg_decls.empty()) return s.instruction.arg_decls.push_back({"", ""});
         auto& v = s.instruction.arg_decls.back().value;
         if (v) v.reset(); else v = "";
       }},
      {"base", [](StepInputs& s) { s.instruction.base = Mod(s.instruction.base); }},
      {"platform", [](StepInputs& s) { s.instruction.platform = Mod(s.instruction.platform); }},
      {"mounts.push", [](StepInputs& s) { s.instruction.mounts.push_back("type=cache,target=/var/cache/apt"); }},
      {"network=none", [](StepInputs& s) { s.instruction.network = "none"; }},
      {"network=host", [](StepInputs& s) { s.instruction.network = "host"; }},
      {"network=default", [](StepInputs& s) { s.instruction.network = "default"; }},
      {"security=insecure", [](StepInputs& s) { s.instruction.security = "insecure"; }},
      {"security=sandbox", [](StepInputs& s) { s.instruction.security = "sandbox"; }},
      {"heredoc_sources.push", [](StepInputs& s) { s.instruction.heredoc_sources.push_back({"f2", "d\n", true}); }},
      {"heredoc_sources.name", [](StepInputs& s) {
         if (s.instruction.heredoc_sources.empty()) return s.instruction.heredoc_sources.push_back({"n", "", true});
         s.instruction.heredoc_sources[0].name = Mod(s.instruction.heredoc_sources[0].name);
       }},
      {"heredoc_sources.data", [](StepInputs& s) {
         if (s.instruction.heredoc_sources.empty()) return s.instruction.heredoc_sources.push_back({"", "d", true});
         s.instruction.heredoc_sources[0].data = Mod(s.instruction.heredoc_sources[0].data);
       }},
      {"heredoc_sources.expand", [](StepInputs& s) {
         if (s.instruction.heredoc_sources.empty()) return s.instruction.heredoc_sources.push_back({"", "", false});
         s.instruction.heredoc_sources[0].expand ^= true;
       }},
      {"dest", [](StepInputs& s) { s.instruction.dest = Mod(s.instruction.dest); }},
      {"from", [](StepInputs& s) { s.instruction.from = Mod(s.instruction.from); }},
      {"chown", [](StepInputs& s) { s.instruction.chown = Mod(s.instruction.chown); }},
      {"chmod", [](StepInputs& s) { s.instruction.chmod = Mod(s.instruction.chmod); }},
      {"checksum", [](StepInputs& s) { s.instruction.checksum = Mod(s.instruction.checksum); }},
      {"link", [](StepInputs& s) { s.instruction.link ^= true; }},
      {"parents", [](StepInputs& s) { s.instruction.parents ^= true; }},
      {"keep_git_dir", [](StepInputs& s) { s.instruction.keep_git_dir ^= true; }},
      {"excludes.push", [](StepInputs& s) { s.instruction.excludes.push_back("*.tmp"); }},
      {"excludes.edit", [](StepInputs& s) {
         if (s.instruction.excludes.empty()) return s.instruction.excludes.push_back("e");
         s.instruction.excludes[0] = Mod(s.instruction.excludes[0]);
       }},
      {"health_test=NONE", [](StepInputs& s) { s.instruction.health_test = {"NONE"}; }},
      {"health_test CMD vs CMD-SHELL", [](StepInputs& s) {
         if (s.instruction.health_test.empty()) return s.instruction.health_test.push_back("CMD");
         s.instruction.health_test[0] = s.instruction.health_test[0] == "CMD" ? "CMD-SHELL" : "CMD";
       }},
      {"health_test.arg", [](StepInputs& s) { s.instruction.health_test.push_back("--verbose"); }},
      {"interval_ns", [](StepInputs& s) { s.instruction.interval_ns += 1; }},
      {"timeout_ns", [](StepInputs& s) { s.instruction.timeout_ns += 1; }},
      {"start_period_ns", [](StepInputs& s) { s.instruction.start_period_ns += 1; }},
      {"start_interval_ns", [](StepInputs& s) { s.instruction.start_interval_ns += 1; }},
      {"retries", [](StepInputs& s) { s.instruction.retries += 1; }},
      {"onbuild_expression", [](StepInputs& s) {
         s.instruction.onbuild_expression = Mod(s.instruction.onbuild_expression);
       }},
      {"sub.present", [](StepInputs& s) {
         if (s.instruction.sub) s.instruction.sub.reset();
         else s.instruction.sub = std::make_shared<Instruction>();
       }},
      {"sub.args", [](StepInputs& s) {
         auto sub = std::make_shared<Instruction>(s.instruction.sub ? *s.instruction.sub : Instruction{});
         sub->args.push_back("sub-extra");
         s.instruction.sub = sub;
       }},
      {"sub.network", [](StepInputs& s) {
         auto sub = std::make_shared<Instruction>(s.instruction.sub ? *s.instruction.sub : Instruction{});
         sub->network = "host";
         s.instruction.sub = sub;
       }},
      // ---- build args
      {"build_args.value", [](StepInputs& s) { s.build_args["VERSION"] = "2.0"; }},
      {"build_args.add", [](StepInputs& s) { s.build_args["NEW"] = ""; }},
      {"build_args.remove", [](StepInputs& s) { s.build_args.erase("GOFLAGS"); }},
      {"build_args.secret_named", [](StepInputs& s) { s.build_args["GITHUB_TOKEN"] = "ghp_x"; }},
      // ---- COPY/ADD content
      {"sources.path", [](StepInputs& s) { s.sources[0].path = "src/other.go"; }},
      {"sources.digest", [](StepInputs& s) { s.sources[0].digest.hex = std::string(64, '2'); }},
      {"sources.mode", [](StepInputs& s) { s.sources[0].mode = 0100755; }},
      {"sources.uid", [](StepInputs& s) { s.sources[0].uid = 1000; }},
      {"sources.gid", [](StepInputs& s) { s.sources[0].gid = 1000; }},
      {"sources.link_target", [](StepInputs& s) { s.sources[1].link_target = "other.go"; }},
      {"sources.add", [](StepInputs& s) {
         s.sources.push_back({"src/new.go", oci::Digest{"sha256", std::string(64, '3')}, 0100644, 0, 0, ""});
       }},
      {"sources.remove", [](StepInputs& s) { s.sources.pop_back(); }},
      // ---- --from inputs
      {"from_inputs.key", [](StepInputs& s) { s.from_inputs[0].key = "sha256:" + std::string(64, 'd'); }},
      {"from_inputs.ref", [](StepInputs& s) { s.from_inputs[0].ref = "other"; }},
      {"from_inputs.add", [](StepInputs& s) { s.from_inputs.push_back({"img", "sha256:" + std::string(64, 'e')}); }},
      // ---- SOURCE_DATE_EPOCH
      {"source_date_epoch=0", [](StepInputs& s) { s.source_date_epoch = 0; }},
      {"source_date_epoch=1700000000", [](StepInputs& s) { s.source_date_epoch = 1700000000; }},
  };

  // Every --mount option of the RUN base mounts: 0 cache, 1 secret, 2 bind, 3 tmpfs, 4 ssh.
  struct M { const char* name; std::size_t i; const char* old; const char* repl; };
  const M mount_edits[] = {
      {"mount.cache.type", 0, "type=cache", "type=bind"},
      {"mount.cache.id", 0, "id=go", "id=go2"},
      {"mount.cache.target", 0, "target=/root/.cache", "target=/root/.cache2"},
      {"mount.cache.sharing=private", 0, "sharing=shared", "sharing=private"},
      {"mount.cache.sharing=locked", 0, "sharing=shared", "sharing=locked"},
      {"mount.cache.mode", 0, "mode=0755", "mode=0700"},
      {"mount.cache.uid", 0, "uid=0", "uid=1000"},
      {"mount.cache.gid", 0, "gid=0", "gid=1000"},
      {"mount.cache.from", 0, "type=cache", "type=cache,from=builder"},
      {"mount.cache.source", 0, "type=cache", "type=cache,source=/sub"},
      {"mount.cache.ro", 0, "type=cache", "type=cache,ro"},
      {"mount.secret.id", 1, "id=tok", "id=tok2"},
      {"mount.secret.target", 1, "target=/run/secrets/tok", "target=/tok"},
      {"mount.secret.env", 1, "type=secret", "type=secret,env=TOKEN"},
      {"mount.secret.required", 1, "required=true", "required=false"},
      {"mount.secret.mode", 1, "mode=0400", "mode=0440"},
      {"mount.secret.uid", 1, "uid=0", "uid=1"},
      {"mount.secret.gid", 1, "gid=0", "gid=1"},
      {"mount.bind.from", 2, "from=builder", "from=other"},
      {"mount.bind.source", 2, "source=/out", "source=/out2"},
      {"mount.bind.target", 2, "target=/in", "target=/in2"},
      {"mount.bind.rw", 2, ",rw", ""},
      {"mount.tmpfs.size", 3, "size=64m", "size=128m"},
      {"mount.tmpfs.target", 3, "target=/tmp", "target=/tmp2"},
      {"mount.ssh.id", 4, "id=default", "id=gitlab"},
      {"mount.ssh.target", 4, "target=/run/ssh", "target=/run/ssh2"},
      {"mount.ssh.required", 4, "required=false", "required=true"},
  };
  for (const M& e : mount_edits) m.push_back({e.name, MountEdit(e.i, e.old, e.repl), Cmd::kRun, true});
  m.push_back({"mounts.order", [](StepInputs& s) { std::swap(s.instruction.mounts[0], s.instruction.mounts[1]); },
               Cmd::kRun, true});
  return m;
}

// (1) Determinism.
TEST(CacheKeyTest, SameInputsSameKey) {
  for (Cmd cmd : kAllCmds) {
    StepInputs a = BaseInputs(cmd);
    StepInputs b = BaseInputs(cmd);  // built independently
    const std::string k = ComputeKey(a);
    EXPECT_EQ(k, ComputeKey(a));
    EXPECT_EQ(k, ComputeKey(b));
    EXPECT_EQ(EncodeForDebug(a), EncodeForDebug(b));
    ASSERT_EQ(k.size(), 7u + 64u);
    EXPECT_EQ(k.rfind("sha256:", 0), 0u);
  }
}

TEST(CacheKeyTest, EncodingIsVersionedAndHashed) {
  StepInputs s = BaseInputs(Cmd::kRun);
  const std::string enc = EncodeForDebug(s);
  EXPECT_EQ(enc.rfind(std::string("format=") + std::to_string(sizeof(kFormatVersion) - 1) + ":" +
                          kFormatVersion + "\n", 0), 0u)
      << enc;
  const std::string step = EncodeStep(s);
  EXPECT_EQ(step.rfind(std::string("format=") + std::to_string(sizeof(kFormatVersion) - 1) + ":" +
                           kFormatVersion + "\n", 0), 0u);
  EXPECT_EQ(StepDigest(s), oci::Digest::Sha256Of(step).ToString());
  EXPECT_EQ(ComputeKey(s), ChainKey(s.parent, StepDigest(s)));
  // The step digest leaves the parent out; the key does not.
  StepInputs other = s;
  other.parent = {Parent::Kind::kImage, "sha256:" + std::string(64, '3')};
  EXPECT_EQ(StepDigest(other), StepDigest(s));
  EXPECT_NE(ComputeKey(other), ComputeKey(s));
}

TEST(CacheKeyTest, RefinedKeysDependOnParentStepAndContent) {
  const std::string p = "sha256:" + std::string(64, '1');
  const std::string d = "sha256:" + std::string(64, '2');
  const std::string c = "sha256:" + std::string(64, '3');
  const std::string k = RefinedKey(p, d, c);
  EXPECT_EQ(k, RefinedKey(p, d, c));
  EXPECT_NE(k, RefinedKey("sha256:" + std::string(64, '4'), d, c));
  EXPECT_NE(k, RefinedKey(p, "sha256:" + std::string(64, '4'), c));
  EXPECT_NE(k, RefinedKey(p, d, "sha256:" + std::string(64, '4')));
  EXPECT_NE(k, ChainKey({Parent::Kind::kStep, p}, d));
}

TEST(CacheKeyTest, OrderOfUnorderedInputsDoesNotMatter) {
  StepInputs a = BaseInputs(Cmd::kCopy);
  StepInputs b = BaseInputs(Cmd::kCopy);
  std::swap(b.sources[0], b.sources[1]);
  b.from_inputs.insert(b.from_inputs.begin(), {"img", "sha256:" + std::string(64, 'e')});
  a.from_inputs.push_back({"img", "sha256:" + std::string(64, 'e')});
  std::map<std::string, std::string> rev;
  for (auto it = a.build_args.rbegin(); it != a.build_args.rend(); ++it) rev.emplace(it->first, it->second);
  b.build_args = rev;
  EXPECT_EQ(ComputeKey(a), ComputeKey(b));
}

// (2) RELIABILITY A9: every field of every instruction kind reaches the key,
// and no two mutations collide.
TEST(CacheKeyTest, EveryFieldOfEveryKindChangesTheKey) {
  const auto mutators = Mutators();
  std::map<std::string, std::string> seen;  // key -> "<kind>/<mutator>"
  int checked = 0;
  for (Cmd cmd : kAllCmds) {
    const StepInputs base = BaseInputs(cmd);
    const std::string base_key = ComputeKey(base);
    const std::string kind = dockerfile::CmdName(cmd);
    auto [bit, bnew] = seen.emplace(base_key, kind + "/<base>");
    EXPECT_TRUE(bnew) << kind << " base collides with " << bit->second;
    for (const Mutator& m : mutators) {
      if (m.restricted && m.only_for != cmd) continue;
      StepInputs s = BaseInputs(cmd);
      m.apply(s);
      const std::string k = ComputeKey(s);
      EXPECT_NE(k, base_key) << kind << ": mutating " << m.name << " did not change the key";
      auto [it, inserted] = seen.emplace(k, kind + "/" + m.name);
      EXPECT_TRUE(inserted) << kind << "/" << m.name << " collides with " << it->second;
      ++checked;
    }
  }
  std::size_t restricted = 0;
  for (const Mutator& m : mutators) restricted += m.restricted ? 1 : 0;
  EXPECT_EQ(checked, static_cast<int>(18 * (mutators.size() - restricted) + restricted));
}

// Position and pre-expansion text are not inputs: moving an instruction or
// renaming a stage keeps the cache.
TEST(CacheKeyTest, PositionTextAndStageNameAreNotInputs) {
  for (Cmd cmd : kAllCmds) {
    StepInputs a = BaseInputs(cmd);
    StepInputs b = BaseInputs(cmd);
    b.instruction.line = 99;
    b.instruction.end_line = 101;
    b.instruction.original = "RUN $UNEXPANDED";
    b.instruction.stage_name = "renamed";
    EXPECT_EQ(ComputeKey(a), ComputeKey(b)) << dockerfile::CmdName(cmd);
  }
}

// (3) Proxy args are not inputs.
TEST(CacheKeyTest, ProxyBuildArgsDoNotChangeTheKey) {
  const char* proxies[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                           "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy"};
  const StepInputs base = BaseInputs(Cmd::kRun);
  StepInputs all = base;
  for (const char* p : proxies) {
    EXPECT_TRUE(IsProxyBuildArg(p)) << p;
    StepInputs s = base;
    s.build_args[p] = "http://proxy.corp:3128";
    EXPECT_EQ(ComputeKey(s), ComputeKey(base)) << p;
    all.build_args[p] = "http://user:pw@other:8080";
  }
  EXPECT_EQ(ComputeKey(all), ComputeKey(base));
  EXPECT_EQ(EncodeForDebug(all).find("proxy"), std::string::npos);
  EXPECT_EQ(EncodeForDebug(all).find("PROXY"), std::string::npos);
  // Not proxies: near-misses still count.
  for (const char* p : {"Http_Proxy", "HTTP_PROXY_", "PROXY", "GOPROXY"}) {
    EXPECT_FALSE(IsProxyBuildArg(p)) << p;
    StepInputs s = base;
    s.build_args[p] = "x";
    EXPECT_NE(ComputeKey(s), ComputeKey(base)) << p;
  }
}

// (4) Secret contents never enter the encoding: a secret mount contributes its
// spec only, and there is no input through which content could flow.
TEST(CacheKeyTest, SecretContentNeverEntersTheKey) {
  const std::string secret_value = "s3cr3t-ghp_0123456789abcdef";
  // What a caller's secret store holds; nothing in StepInputs can carry it.
  std::map<std::string, std::string> secret_store = {{"tok", secret_value}};
  StepInputs a = BaseInputs(Cmd::kRun);
  const std::string enc = EncodeForDebug(a);
  EXPECT_NE(enc.find("type=secret,id=tok,target=/run/secrets/tok,required=true,mode=0400,uid=0,gid=0"),
            std::string::npos);
  EXPECT_EQ(enc.find(secret_value), std::string::npos);
  const std::string k1 = ComputeKey(a);
  secret_store["tok"] = "rotated-value";
  EXPECT_EQ(ComputeKey(a), k1);  // rotating a secret does not invalidate the step

  // A build arg named like a secret is an ordinary build arg and does count
  // (BuildKit behaves the same; secrets belong in --mount=type=secret).
  StepInputs b = a;
  b.build_args["API_TOKEN"] = "visible-value";
  EXPECT_NE(ComputeKey(b), k1);
  EXPECT_NE(EncodeForDebug(b).find("visible-value"), std::string::npos);
}

// (5) SOURCE_DATE_EPOCH is an input when set.
TEST(CacheKeyTest, SourceDateEpochSetVsUnset) {
  StepInputs unset = BaseInputs(Cmd::kCopy);
  StepInputs zero = unset;
  zero.source_date_epoch = 0;
  StepInputs later = unset;
  later.source_date_epoch = 1700000000;
  EXPECT_NE(ComputeKey(unset), ComputeKey(zero));
  EXPECT_NE(ComputeKey(zero), ComputeKey(later));
  EXPECT_NE(ComputeKey(unset), ComputeKey(later));
}

// (6) Keys chain: a step's key is the next step's parent.
TEST(CacheKeyTest, ParentKeyChains) {
  StepInputs s1 = BaseInputs(Cmd::kRun);
  s1.parent = {Parent::Kind::kImage, "sha256:" + std::string(64, '9')};
  StepInputs s2 = BaseInputs(Cmd::kEnv);
  s2.parent = {Parent::Kind::kStep, ComputeKey(s1)};
  StepInputs s3 = BaseInputs(Cmd::kCopy);
  s3.parent = {Parent::Kind::kStep, ComputeKey(s2)};
  const std::string k3 = ComputeKey(s3);

  // A different base image changes every key down the chain.
  s1.parent.value = "sha256:" + std::string(64, '8');
  s2.parent.value = ComputeKey(s1);
  s3.parent.value = ComputeKey(s2);
  EXPECT_NE(ComputeKey(s3), k3);

  // The same value under a different parent kind is a different parent.
  StepInputs a = BaseInputs(Cmd::kRun), b = a;
  a.parent = {Parent::Kind::kStep, "sha256:" + std::string(64, '7')};
  b.parent = {Parent::Kind::kStage, "sha256:" + std::string(64, '7')};
  EXPECT_NE(ComputeKey(a), ComputeKey(b));
}

// (7) Length prefixes: field boundaries cannot be moved.
TEST(CacheKeyTest, EncodingIsUnambiguous) {
  StepInputs a = BaseInputs(Cmd::kRun), b = a;
  a.instruction.args = {"ab", "c"};
  b.instruction.args = {"a", "bc"};
  EXPECT_NE(ComputeKey(a), ComputeKey(b));

  a.instruction.args = {"a b"};
  b.instruction.args = {"a", "b"};
  EXPECT_NE(ComputeKey(a), ComputeKey(b));

  a = b = BaseInputs(Cmd::kRun);
  a.build_args = {{"A", "B=C"}};
  b.build_args = {{"A=B", "C"}};
  EXPECT_NE(ComputeKey(a), ComputeKey(b));

  // A value that looks like the encoding of another field.
  a = b = BaseInputs(Cmd::kCopy);
  a.instruction.dest = "/x\ninstruction.from=3:foo";
  a.instruction.from = "";
  b.instruction.dest = "/x";
  b.instruction.from = "foo";
  EXPECT_NE(ComputeKey(a), ComputeKey(b));

  a = b = BaseInputs(Cmd::kCopy);
  a.instruction.chown = "1000";
  a.instruction.chmod = "";
  b.instruction.chown = "";
  b.instruction.chmod = "1000";
  EXPECT_NE(ComputeKey(a), ComputeKey(b));

  // Empty list vs list of one empty string.
  a = b = BaseInputs(Cmd::kRun);
  a.instruction.mounts = {};
  b.instruction.mounts = {""};
  EXPECT_NE(ComputeKey(a), ComputeKey(b));
}

}  // namespace
}  // namespace manifold::cache
