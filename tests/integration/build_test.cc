// `manifold build` end to end: the real binary, runc, overlayfs and QEMU,
// checked through what a user sees: files of the built images (type=local
// output, or unpacked by umoci and run by runc), their configs (skopeo), the
// summary line's executed/cached counts and the exact errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/tree_compare.h"

namespace manifold::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Result {
  int rc = 0;
  std::string out;
  int executed = -1;
  int cached = -1;
  std::string digest;  ///< the last line: the index digest
};

class BuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bases_ = new TempDir();
    for (const char* arch : {"amd64", "arm64"}) {
      std::string out;
      int rc = RunCommand("bash tests/testdata/busybox-rootfs.sh " + std::string(arch) + " " +
                              bases_->path() + "/busybox-" + arch,
                          &out);
      ASSERT_EQ(rc, 0) << out;
    }
  }
  static void TearDownTestSuite() {
    delete bases_;
    bases_ = nullptr;
  }

  void SetUp() override {
    root_ = tmp_.path() + "/state";
    ctx_ = tmp_.path() + "/ctx";
    fs::create_directories(ctx_);
    setenv("MANIFOLD_ROOT", root_.c_str(), 1);
    unsetenv("SOURCE_DATE_EPOCH");
  }

  void ImportBusybox(const std::string& arch = "amd64") {
    Manifold("import --platform linux/" + arch + " -t busybox " + bases_->path() + "/busybox-" +
             arch);
  }

  std::string Manifold(const std::string& args, int want = 0) {
    std::string out;
    int rc = RunCommand(std::string(MF_MANIFOLD_BIN) + " " + args, &out);
    EXPECT_EQ(rc, want) << "manifold " << args << "\n" << out;
    return out;
  }

  std::string Sh(const std::string& cmd, int want = 0) {
    std::string out;
    int rc = RunCommand(cmd, &out);
    EXPECT_EQ(rc, want) << cmd << "\n" << out;
    return out;
  }

  /// `manifold build --progress plain ARGS CONTEXT`.
  Result Build(const std::string& args, const std::string& context = "") {
    Result r;
    r.rc = RunCommand(std::string(MF_MANIFOLD_BIN) + " build --progress plain " + args + " " +
                          (context.empty() ? ctx_ : context),
                      &r.out);
    std::smatch m;
    static const std::regex kSummary("steps: ([0-9]+) executed, ([0-9]+) cached");
    if (std::regex_search(r.out, m, kSummary)) {
      r.executed = std::stoi(m[1]);
      r.cached = std::stoi(m[2]);
    }
    static const std::regex kDigest("(sha256:[0-9a-f]{64})\\s*$");
    if (std::regex_search(r.out, m, kDigest)) r.digest = m[1];
    return r;
  }

  Result MustBuild(const std::string& args, const std::string& context = "") {
    Result r = Build(args, context);
    EXPECT_EQ(r.rc, 0) << r.out;
    return r;
  }

  void Dockerfile(const std::string& text) { WriteFile(ctx_ + "/Dockerfile", text); }

  /// Builds with type=local and returns the amd64 root.
  std::string BuildLocal(const std::string& args = "") {
    std::string out = tmp_.path() + "/out";
    fs::remove_all(out);
    MustBuild(args + " -o type=local,dest=" + out);
    return out + "/linux_amd64";
  }

  /// A blob of an OCI archive.
  json Blob(const std::string& archive, const std::string& digest) {
    return json::parse(Sh("tar -xOf " + archive + " blobs/sha256/" + digest.substr(7)));
  }

  /// The raw image config of platform `arch` in an OCI archive (skopeo's
  /// view drops Docker's fields: Shell, Healthcheck, OnBuild).
  json Config(const std::string& archive, const std::string& arch = "amd64") {
    json top = json::parse(Sh("tar -xOf " + archive + " index.json"));
    json index = Blob(archive, top["manifests"][0]["digest"]);
    for (const auto& m : index["manifests"])
      if (m["platform"]["architecture"] == arch)
        return Blob(archive, Blob(archive, m["digest"])["config"]["digest"]);
    ADD_FAILURE() << "no " << arch << " manifest in " << index.dump();
    return json::object();
  }

  static TempDir* bases_;
  TempDir tmp_;
  std::string root_;
  std::string ctx_;
};

TempDir* BuildTest::bases_ = nullptr;

// ---------------------------------------------------------------- acceptance

TEST_F(BuildTest, BusyboxMultistageForBothPlatformsRunsUnderRuncAndRebuildsFromCache) {
  ImportBusybox("amd64");
  ImportBusybox("arm64");
  std::string archive = tmp_.path() + "/bb.tar";
  std::string example = fs::absolute("examples/busybox-multistage").string();
  Result r = MustBuild("--platform linux/amd64,linux/arm64 -o type=oci,dest=" + archive, example);
  EXPECT_GT(r.executed, 20) << r.out;

  json index = json::parse(Sh("skopeo inspect --raw oci-archive:" + archive));
  EXPECT_EQ(index["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(index["manifests"].size(), 2u);
  EXPECT_EQ(index["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(index["manifests"][1]["platform"]["architecture"], "arm64");
  EXPECT_EQ(r.digest, "sha256:" + Sh("tar -xOf " + archive + " index.json | python3 -c "
                                     "'import json,sys; print(json.load(sys.stdin)"
                                     "[\"manifests\"][0][\"digest\"].split(\":\")[1], end=\"\")'"));

  for (auto [arch, machine] : {std::pair{"amd64", "x86_64"}, std::pair{"arm64", "aarch64"}}) {
    std::string layout = tmp_.path() + "/layout";
    std::string bundle = tmp_.path() + "/bundle-" + arch;
    Sh("skopeo copy --override-arch " + std::string(arch) + " oci-archive:" + archive + " oci:" +
       layout + ":" + arch);
    Sh("umoci unpack --image " + layout + ":" + arch + " " + bundle);
    json cfg = json::parse(ReadFile(bundle + "/config.json"));
    EXPECT_EQ(cfg["process"]["args"], json::array({"cat", "/out/summary.txt"}));
    cfg["process"]["terminal"] = false;
    cfg["process"]["args"] = json::array({"sh", "-c", "uname -m; cat /out/summary.txt; ls /out"});
    std::ofstream(bundle + "/config.json") << cfg.dump();
    std::string id = "mf-build-test-" + std::to_string(::getpid()) + "-" + arch;
    std::string out = Sh("cd " + bundle + " && timeout 120 runc run " + id);
    EXPECT_EQ(out.substr(0, out.find('\n')), machine) << out;
    EXPECT_NE(out.find("platform: linux/" + std::string(arch)), std::string::npos) << out;
    EXPECT_NE(out.find(std::string("uname -m: ") + machine), std::string::npos) << out;
    EXPECT_NE(out.find("chunks: 8"), std::string::npos) << out;
    for (const char* f : {"blob.sha256", "chunks.sha256", "lines.md5", "lines.txt.gz", "summary.txt"})
      EXPECT_NE(out.find(f), std::string::npos) << f << "\n" << out;
  }

  // --trace: the schedule, one track per job slot, a slice per executed step.
  std::string trace_file = tmp_.path() + "/trace.json";
  MustBuild("--platform linux/amd64,linux/arm64 --no-cache-filter report --trace " + trace_file, example);
  json trace = json::parse(ReadFile(trace_file));
  std::set<int> tracks;
  int slices = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    ++slices;
    tracks.insert(e["tid"].get<int>());
    EXPECT_GE(e["dur"].get<long long>(), 0);
  }
  EXPECT_EQ(slices, 10) << trace.dump();  // the report stage's 5 steps, for 2 platforms
  EXPECT_EQ(tracks.size(), 2u);              // on both job slots, at the same time

  // Unchanged: nothing runs, the same index.
  Result again = MustBuild("--platform linux/amd64,linux/arm64", example);
  EXPECT_EQ(again.executed, 0) << again.out;
  EXPECT_EQ(again.digest, r.digest);
  EXPECT_EQ(again.out.find(" DONE "), std::string::npos) << again.out;
}

TEST_F(BuildTest, OneChangedFileRerunsOnlyTheStepsThatDependOnIt) {
  ImportBusybox();
  WriteFile(ctx_ + "/a.txt", "a1\n");
  WriteFile(ctx_ + "/b.txt", "b1\n");
  WriteFile(ctx_ + "/ignored.txt", "i1\n");
  WriteFile(ctx_ + "/.dockerignore", "ignored.txt\n");
  Dockerfile(
      "FROM busybox\n"
      "RUN echo one > /one\n"
      "COPY a.txt /a.txt\n"
      "RUN cat /a.txt /one > /both\n"
      "COPY b.txt /b.txt\n"
      "COPY . /all/\n");
  Result cold = MustBuild("-t t1");
  EXPECT_EQ(cold.executed, 5) << cold.out;
  Result same = MustBuild("-t t1");
  EXPECT_EQ(same.executed, 0) << same.out;
  EXPECT_EQ(same.cached, 5);
  EXPECT_EQ(same.digest, cold.digest);

  WriteFile(ctx_ + "/ignored.txt", "i2\n");  // .dockerignore'd: invisible
  Result ign = MustBuild("-t t1");
  EXPECT_EQ(ign.executed, 0) << ign.out;

  WriteFile(ctx_ + "/b.txt", "b2\n");
  Result b = MustBuild("-t t1");
  EXPECT_EQ(b.executed, 2) << b.out;  // COPY b.txt and COPY .
  EXPECT_NE(b.out.find("CACHED RUN cat /a.txt /one > /both"), std::string::npos) << b.out;

  WriteFile(ctx_ + "/a.txt", "a2\n");
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/both"), "a2\none\n");
  EXPECT_EQ(ReadFile(root + "/b.txt"), "b2\n");
  EXPECT_TRUE(fs::exists(root + "/all/a.txt"));
  EXPECT_FALSE(fs::exists(root + "/all/ignored.txt"));

  Result nc = MustBuild("--no-cache");
  EXPECT_EQ(nc.executed, 5) << nc.out;
}

TEST_F(BuildTest, CopyFromIsKeyedByTheFilesItCopies) {
  // An upstream stage changes but the files a COPY --from takes do not: the
  // steps after that COPY hit the cache (BuildKit's content-based keys).
  ImportBusybox();
  WriteFile(ctx_ + "/input.txt", "input\n");
  WriteFile(ctx_ + "/other.txt", "other v1\n");
  Dockerfile(
      "FROM busybox AS a\n"
      "COPY input.txt /input.txt\n"
      "COPY other.txt /other.txt\n"
      "FROM busybox\n"
      "COPY --from=a /input.txt /input.txt\n"
      "RUN cat /input.txt > /out\n"
      "ENV DONE=1\n");
  Result cold = MustBuild("");
  EXPECT_EQ(cold.executed, 5) << cold.out;
  WriteFile(ctx_ + "/other.txt", "other v2\n");
  Result edit = MustBuild("");
  EXPECT_EQ(edit.executed, 2) << edit.out;  // COPY other.txt, COPY --from (same files)
  EXPECT_NE(edit.out.find("CACHED RUN cat /input.txt > /out"), std::string::npos) << edit.out;
  EXPECT_EQ(edit.digest, cold.digest);  // the final image did not change
  Result again = MustBuild("");
  EXPECT_EQ(again.executed, 0) << again.out;
  // When the copied file does change, the RUN after it runs.
  WriteFile(ctx_ + "/input.txt", "input v2\n");
  Result changed = MustBuild("");
  EXPECT_EQ(changed.executed, 5) << changed.out;  // both of a, then all three here
  EXPECT_NE(changed.digest, cold.digest);
}

TEST_F(BuildTest, MetadataInstructionsMakeACompleteConfig) {
  ImportBusybox();
  Dockerfile(
      "FROM busybox\n"
      "RUN chmod 1777 /tmp\n"
      "ARG VERSION=1.0\n"
      "ENV APP_HOME=/srv/app PATH=/srv/app/bin:/usr/bin:/bin\n"
      "LABEL org.example.version=$VERSION maintainer=\"me\"\n"
      "EXPOSE 8080 53/udp\n"
      "VOLUME /data\n"
      "WORKDIR $APP_HOME\n"
      "WORKDIR sub\n"
      "USER app:app\n"
      "SHELL [\"/bin/sh\", \"-ec\"]\n"
      "HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q localhost:8080\n"
      "STOPSIGNAL SIGTERM\n"
      "ONBUILD RUN echo triggered > /tmp/onbuild\n"
      "ENTRYPOINT [\"/bin/sh\"]\n"
      "CMD echo hello\n");
  std::string archive = tmp_.path() + "/m.tar";
  MustBuild("--build-arg VERSION=2.5 -o type=oci,dest=" + archive);
  json c = Config(archive);
  const json& cc = c["config"];
  EXPECT_EQ(c["architecture"], "amd64");
  EXPECT_EQ(c["os"], "linux");
  EXPECT_EQ(cc["Env"], json::array({"APP_HOME=/srv/app", "PATH=/srv/app/bin:/usr/bin:/bin"}));
  EXPECT_EQ(cc["Labels"]["org.example.version"], "2.5");
  EXPECT_EQ(cc["Labels"]["maintainer"], "me");
  EXPECT_TRUE(cc["ExposedPorts"].contains("8080/tcp"));
  EXPECT_TRUE(cc["ExposedPorts"].contains("53/udp"));
  EXPECT_TRUE(cc["Volumes"].contains("/data"));
  EXPECT_EQ(cc["WorkingDir"], "/srv/app/sub");
  EXPECT_EQ(cc["User"], "app:app");
  EXPECT_EQ(cc["Shell"], json::array({"/bin/sh", "-ec"}));
  EXPECT_EQ(cc["Healthcheck"]["Test"], json::array({"CMD-SHELL", "wget -q localhost:8080"}));
  EXPECT_EQ(cc["Healthcheck"]["Interval"], 30000000000LL);
  EXPECT_EQ(cc["Healthcheck"]["Timeout"], 5000000000LL);
  EXPECT_EQ(cc["Healthcheck"]["Retries"], 3);
  EXPECT_EQ(cc["StopSignal"], "SIGTERM");
  EXPECT_EQ(cc["OnBuild"], json::array({"RUN echo triggered > /tmp/onbuild"}));
  EXPECT_EQ(cc["Entrypoint"], json::array({"/bin/sh"}));
  EXPECT_EQ(cc["Cmd"], json::array({"/bin/sh", "-ec", "echo hello"}));
  // History: the base's entry plus one per instruction, all empty layers here.
  const json& h = c["history"];
  ASSERT_GE(h.size(), 14u);
  int empty = 0;
  for (const auto& e : h) empty += e.value("empty_layer", false) ? 1 : 0;
  EXPECT_EQ(empty, 14) << h.dump(1);
  EXPECT_EQ(c["rootfs"]["diff_ids"].size(), 2u);  // the base's layer and the chmod

  // ONBUILD triggers run when a later build starts FROM the image.
  MustBuild("-t example/base:1");
  std::string child = tmp_.path() + "/child";
  WriteFile(child + "/Dockerfile", "FROM example/base:1\nRUN cat /tmp/onbuild > /tmp/seen\n");
  std::string out = tmp_.path() + "/childout";
  MustBuild("-o type=local,dest=" + out, child);
  EXPECT_EQ(ReadFile(out + "/linux_amd64/tmp/seen"), "triggered\n");
  std::string carch = tmp_.path() + "/child.tar";
  MustBuild("-o type=oci,dest=" + carch, child);
  EXPECT_FALSE(Config(carch)["config"].contains("OnBuild"));
}

TEST_F(BuildTest, RunFormsHeredocsEnvironmentUserAndWorkdir) {
  ImportBusybox();
  Dockerfile(
      "FROM busybox\n"
      "ARG GREETING=hi\n"
      "ENV NAME=world\n"
      "RUN echo \"$GREETING $NAME\" > /shell-form\n"
      "RUN [\"/bin/sh\", \"-c\", \"echo exec-form > /exec-form\"]\n"
      "RUN <<EOF\n"
      "echo script-line-1 > /heredoc-script\n"
      "echo script-line-2 >> /heredoc-script\n"
      "EOF\n"
      "RUN <<EOF cat > /heredoc-stdin\n"
      "fed to cat\n"
      "EOF\n"
      "RUN <<-EOF\n"
      "\techo tabs-stripped > /heredoc-chomp\n"
      "\tEOF\n"
      "WORKDIR /created/by/workdir\n"
      "RUN pwd > /pwd\n"
      "USER app\n"
      "RUN id > /tmp/id-app\n"
      "USER root\n"
      "SHELL [\"/bin/sh\", \"-xc\"]\n"
      "RUN echo shell-changed > /shell\n"
      "RUN ls /proc/self/fd > /fds\n"
      "RUN { cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; } > /pids-max\n");
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/shell-form"), "hi world\n");
  EXPECT_EQ(ReadFile(root + "/exec-form"), "exec-form\n");
  EXPECT_EQ(ReadFile(root + "/heredoc-script"), "script-line-1\nscript-line-2\n");
  EXPECT_EQ(ReadFile(root + "/heredoc-stdin"), "fed to cat\n");
  EXPECT_EQ(ReadFile(root + "/heredoc-chomp"), "tabs-stripped\n");
  EXPECT_EQ(ReadFile(root + "/pwd"), "/created/by/workdir\n");
  EXPECT_EQ(ReadFile(root + "/tmp/id-app"), "uid=1000(app) gid=1000(app)\n");
  EXPECT_EQ(ReadFile(root + "/shell"), "shell-changed\n");
  // RELIABILITY D1: only stdio (and ls's own directory fd) inside RUN.
  EXPECT_EQ(ReadFile(root + "/fds"), "0\n1\n2\n3\n");
  // RELIABILITY D4: each step runs in its own cgroup with a pids limit.
  EXPECT_EQ(ReadFile(root + "/pids-max"), "4096\n");
  // Mount stubs are cleaned: no /proc or /dev entries left in the layers.
  EXPECT_FALSE(fs::exists(root + "/proc"));
  EXPECT_FALSE(fs::exists(root + "/dev/pipes"));
}

TEST_F(BuildTest, RunMountsCacheBindTmpfsSecretAndVolume) {
  ImportBusybox();
  WriteFile(ctx_ + "/data/input.txt", "from-context\n");
  WriteFile(ctx_ + "/data/hidden.txt", "hidden\n");
  WriteFile(ctx_ + "/.dockerignore", "data/hidden.txt\n");
  WriteFile(tmp_.path() + "/secret.txt", "s3cr3t-value");
  WriteFile(tmp_.path() + "/host-vol/ca.pem", "host-ca\n");
  Dockerfile(
      "FROM busybox AS tools\n"
      "RUN mkdir -p /opt/tool && echo tool-v1 > /opt/tool/version\n"
      "FROM busybox\n"
      "RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/count; wc -l < /cache/count > /cache-count'\n"
      "RUN --mount=type=bind,source=data,target=/ctx ls /ctx > /bind-ls && cat /ctx/input.txt > /bind-read\n"
      "RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t cat /t/version > /from-stage\n"
      "RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'echo x > /scratch/f; grep \" /scratch \" /proc/mounts | cut -d\" \" -f3 > /tmpfs-type'\n"
      "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && wc -c < /run/secrets/tok > /secret-len\n"
      "RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo -n \"$TOKEN\" | wc -c > /secret-env'\n"
      "RUN cat /etc/ssl/host-ca.pem > /volume-read\n");
  std::string vol = "-v " + tmp_.path() + "/host-vol/ca.pem:/etc/ssl/host-ca.pem:ro";
  std::string sec = "--secret id=tok,src=" + tmp_.path() + "/secret.txt";
  std::string archive = tmp_.path() + "/m.tar";
  std::string out = tmp_.path() + "/out";
  MustBuild(vol + " " + sec + " -o type=local,dest=" + out + " -o type=oci,dest=" + archive);
  std::string root = out + "/linux_amd64";
  EXPECT_EQ(ReadFile(root + "/cache-count"), "1\n");
  EXPECT_EQ(ReadFile(root + "/bind-ls"), "input.txt\n");  // hidden.txt is .dockerignore'd
  EXPECT_EQ(ReadFile(root + "/bind-read"), "from-context\n");
  EXPECT_EQ(ReadFile(root + "/from-stage"), "tool-v1\n");
  EXPECT_EQ(ReadFile(root + "/tmpfs-type"), "tmpfs\n");
  EXPECT_FALSE(fs::exists(root + "/scratch/f"));
  EXPECT_EQ(ReadFile(root + "/secret-len"), "12\n");
  EXPECT_EQ(ReadFile(root + "/secret-env"), "12\n");
  EXPECT_EQ(ReadFile(root + "/volume-read"), "host-ca\n");
  EXPECT_FALSE(fs::exists(root + "/run/secrets/tok"));
  EXPECT_FALSE(fs::exists(root + "/ctx/input.txt"));
  EXPECT_FALSE(fs::exists(root + "/cache/count"));
  // The secret is in no layer and no config.
  std::string blobs = Sh("tar -xOf " + archive + " 2>/dev/null | zcat -f 2>/dev/null | grep -c s3cr3t-value || true");
  EXPECT_EQ(blobs, "0\n");
  // The cache mount persists across builds (the step re-runs with --no-cache).
  MustBuild(vol + " " + sec + " --no-cache -o type=local,dest=" + out);
  EXPECT_EQ(ReadFile(root + "/cache-count"), "2\n");
  // Cache ids reach host paths only hashed (RELIABILITY A7).
  for (auto& e : fs::directory_iterator(root_ + "/worker/cache-mounts")) {
    std::string name = e.path().filename().string();
    EXPECT_TRUE(std::regex_match(name, std::regex("[0-9a-f]{64}(\\.lock)?"))) << name;
  }
}

TEST_F(BuildTest, PrivateCacheMountsGiveAConcurrentUserItsOwnDirectory) {
  ImportBusybox();
  Dockerfile(
      "FROM busybox AS a\n"
      "RUN --mount=type=cache,id=p,target=/c,sharing=private sh -c 'touch /c/a; sleep 2; ls /c > /seen'\n"
      "FROM busybox AS b\n"
      "RUN --mount=type=cache,id=p,target=/c,sharing=private sh -c 'touch /c/b; sleep 2; ls /c > /seen'\n"
      "FROM busybox\n"
      "COPY --from=a /seen /a-seen\n"
      "COPY --from=b /seen /b-seen\n");
  std::string root = BuildLocal();  // a and b run at once (two job slots)
  EXPECT_EQ(ReadFile(root + "/a-seen"), "a\n");
  EXPECT_EQ(ReadFile(root + "/b-seen"), "b\n");
  // One of them had the persistent cache, which keeps its file.
  std::string kept;
  for (auto& e : fs::directory_iterator(root_ + "/worker/cache-mounts"))
    if (e.is_directory())
      for (auto& f : fs::directory_iterator(e.path())) kept += f.path().filename().string();
  EXPECT_TRUE(kept == "a" || kept == "b") << kept;
}

TEST_F(BuildTest, CopyAndAddFromContextStagesAndImages) {
  ImportBusybox();
  WriteFile(ctx_ + "/src/a.txt", "a\n");
  WriteFile(ctx_ + "/src/b.txt", "b\n");
  WriteFile(ctx_ + "/src/c.log", "c\n");
  WriteFile(ctx_ + "/src/sub/d.txt", "d\n");
  fs::create_directories(tmp_.path() + "/arc/pkg");
  WriteFile(tmp_.path() + "/arc/pkg/inside.txt", "inside\n");
  Sh("tar -czf " + ctx_ + "/pkg.tar.gz -C " + tmp_.path() + "/arc pkg");
  Sh("tar -cJf " + ctx_ + "/pkg.tar.xz -C " + tmp_.path() + "/arc pkg");
  Dockerfile(
      "FROM busybox AS builder\n"
      "RUN mkdir /out && echo built > /out/artifact && chown 1000:1000 /out/artifact\n"
      "FROM busybox\n"
      "COPY src/*.txt /glob/\n"
      "COPY src /dir-contents\n"
      "COPY --chown=app:app --chmod=640 src/a.txt /owned/a.txt\n"
      "COPY --exclude=*.log src /excluded/\n"
      "COPY --parents src/sub/d.txt /parents/\n"
      "COPY --from=builder /out/artifact /from-stage/\n"
      "COPY --from=busybox /etc/passwd /from-image-passwd\n"
      "ADD pkg.tar.gz /extracted-gz/\n"
      "ADD pkg.tar.xz /extracted-xz/\n"
      "COPY pkg.tar.gz /not-extracted/\n"
      "COPY <<EOF /heredoc.txt\n"
      "from a heredoc\n"
      "EOF\n");
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/glob/a.txt"), "a\n");
  EXPECT_EQ(ReadFile(root + "/glob/b.txt"), "b\n");
  EXPECT_FALSE(fs::exists(root + "/glob/c.log"));
  EXPECT_EQ(ReadFile(root + "/dir-contents/sub/d.txt"), "d\n");
  EXPECT_FALSE(fs::exists(root + "/dir-contents/src"));
  struct stat st {};
  ASSERT_EQ(::stat((root + "/owned/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat((root + "/glob/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // context files belong to root
  EXPECT_TRUE(fs::exists(root + "/excluded/a.txt"));
  EXPECT_FALSE(fs::exists(root + "/excluded/c.log"));
  EXPECT_EQ(ReadFile(root + "/parents/src/sub/d.txt"), "d\n");
  EXPECT_EQ(ReadFile(root + "/from-stage/artifact"), "built\n");
  ASSERT_EQ(::stat((root + "/from-stage/artifact").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);  // --from keeps owners
  EXPECT_NE(ReadFile(root + "/from-image-passwd").find("app:x:1000"), std::string::npos);
  EXPECT_EQ(ReadFile(root + "/extracted-gz/pkg/inside.txt"), "inside\n");
  EXPECT_EQ(ReadFile(root + "/extracted-xz/pkg/inside.txt"), "inside\n");
  EXPECT_TRUE(fs::is_regular_file(root + "/not-extracted/pkg.tar.gz"));
  EXPECT_EQ(ReadFile(root + "/heredoc.txt"), "from a heredoc\n");
}

TEST_F(BuildTest, AddFetchesUrlsVerifiesChecksumsAndNoticesRemoteChanges) {
  ImportBusybox();
  std::string www = tmp_.path() + "/www";
  WriteFile(www + "/tool.txt", "remote v1\n");
  Sh("cd " + www + " && tar -czf bundle.tar.gz tool.txt");
  std::string log = tmp_.path() + "/http.log";
  std::string pid = Sh("cd " + www + " && (python3 -u -m http.server 0 --bind 127.0.0.1 > " + log +
                       " 2>&1 & echo $!)");
  pid.pop_back();
  std::smatch m;
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = ReadFile(log);
    if (std::regex_search(text, m, std::regex("port ([0-9]+)"))) break;
    usleep(100 * 1000);
  }
  ASSERT_TRUE(std::regex_search(text, m, std::regex("port ([0-9]+)"))) << text;
  std::string base = "http://127.0.0.1:" + m[1].str();
  std::string sum = "sha256:" + Sh("sha256sum " + www + "/tool.txt | cut -c1-64").substr(0, 64);
  Dockerfile("FROM busybox\n"
             "ADD " + base + "/tool.txt /dl/\n"
             "ADD --checksum=" + sum + " " + base + "/tool.txt /pinned.txt\n"
             "ADD " + base + "/bundle.tar.gz /archives/\n"
             "ADD --chmod=755 " + base + "/tool.txt /exec.txt\n");
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/dl/tool.txt"), "remote v1\n");
  EXPECT_EQ(ReadFile(root + "/pinned.txt"), "remote v1\n");
  EXPECT_TRUE(fs::is_regular_file(root + "/archives/bundle.tar.gz"));  // never extracted
  struct stat st {};
  ASSERT_EQ(::stat((root + "/dl/tool.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((root + "/exec.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  Result same = MustBuild("");
  EXPECT_EQ(same.executed, 0) << same.out;

  // The server's content changes: the unpinned ADD runs again, so the pinned
  // one after it runs too, and its checksum no longer matches.
  sleep(1);  // a new Last-Modified second
  WriteFile(www + "/tool.txt", "remote v2\n");
  Result changed = Build("");
  EXPECT_EQ(changed.rc, 1);
  EXPECT_NE(changed.out.find("error: Dockerfile:3: [linux/amd64 stage-0] digest mismatch for " +
                             base + "/tool.txt: want " + sum + ", got sha256:"),
            std::string::npos)
      << changed.out;
  Dockerfile("FROM busybox\nADD " + base + "/tool.txt /dl/\n");
  EXPECT_EQ(ReadFile(BuildLocal() + "/dl/tool.txt"), "remote v2\n");
  Dockerfile("FROM busybox\nADD " + base + "/missing.txt /x\n");
  Result missing = Build("");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("failed to fetch " + base + "/missing.txt: 404"), std::string::npos)
      << missing.out;
  Sh("kill " + pid);
}

TEST_F(BuildTest, CrossStagesScratchDeletionsAndProxyArgs) {
  ImportBusybox();
  ImportBusybox("arm64");
  Dockerfile(
      "FROM --platform=$BUILDPLATFORM busybox AS tool\n"
      "ARG TARGETARCH\n"
      "RUN uname -m > /built-on && echo $TARGETARCH > /built-for\n"
      "FROM busybox AS runtime\n"
      "RUN rm -rf /etc/group /usr/sbin && mkdir -p /usr/share/doc && rm -rf /usr/share\n"
      "RUN echo $HTTP_PROXY > /proxy-seen\n"
      "FROM scratch\n"
      "COPY --from=tool /built-on /built-for /\n"
      "COPY --from=runtime /proxy-seen /etc/passwd /\n");
  std::string archive = tmp_.path() + "/x.tar";
  std::string out = tmp_.path() + "/o";
  MustBuild("--platform linux/arm64 --build-arg HTTP_PROXY=http://proxy-one:3128 -o type=local,dest=" +
            out + " -o type=oci,dest=" + archive);
  std::string root = out + "/linux_arm64";
  EXPECT_EQ(ReadFile(root + "/built-on"), "x86_64\n");  // the build platform, natively
  EXPECT_EQ(ReadFile(root + "/built-for"), "arm64\n");
  EXPECT_EQ(ReadFile(root + "/proxy-seen"), "http://proxy-one:3128\n");  // used...
  EXPECT_TRUE(fs::exists(root + "/passwd"));
  EXPECT_FALSE(fs::exists(root + "/bin"));  // FROM scratch: only what was copied
  json c = Config(archive, "arm64");
  EXPECT_EQ(c["rootfs"]["diff_ids"].size(), 2u);
  EXPECT_EQ(c["architecture"], "arm64");
  // ...but kept out of the cache key and the history: another proxy hits.
  Result again = MustBuild("--platform linux/arm64 --build-arg HTTP_PROXY=http://proxy-two:3128 "
                           "--target runtime -o type=oci,dest=" + archive);
  EXPECT_EQ(again.executed, 0) << again.out;
  json rc = Config(archive, "arm64");
  EXPECT_EQ(rc.dump().find("proxy-one"), std::string::npos) << rc["history"].dump(1);
  // The deletions are whiteouts in the layer (RELIABILITY C1): the unpacked
  // runtime stage lacks them.
  std::string rt = tmp_.path() + "/rt";
  MustBuild("--platform linux/arm64 --target runtime --build-arg HTTP_PROXY=x -o type=local,dest=" + rt);
  EXPECT_FALSE(fs::exists(rt + "/linux_arm64/etc/group"));
  EXPECT_FALSE(fs::exists(rt + "/linux_arm64/usr/share"));
  EXPECT_FALSE(fs::exists(rt + "/linux_arm64/usr/sbin"));
  EXPECT_TRUE(fs::exists(rt + "/linux_arm64/etc/passwd"));
  json top = json::parse(Sh("tar -xOf " + archive + " index.json"));
  json index = Blob(archive, top["manifests"][0]["digest"]);
  json manifest = Blob(archive, index["manifests"][0]["digest"]);
  std::string layer = manifest["layers"][1]["digest"];
  std::string listing = Sh("tar -xOf " + archive + " blobs/sha256/" + layer.substr(7) + " | tar -tzf -");
  EXPECT_NE(listing.find("etc/.wh.group"), std::string::npos) << listing;
  EXPECT_NE(listing.find("usr/.wh.sbin"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("usr/share"), std::string::npos) << listing;  // made and removed: nothing
  // For two targets the build-platform stage differs only by TARGETARCH; a
  // stage identical for both runs once.
  Dockerfile(
      "FROM --platform=$BUILDPLATFORM busybox AS tool\n"
      "RUN echo same-for-all > /tool\n"
      "FROM busybox\n"
      "COPY --from=tool /tool /tool\n");
  Result twins = MustBuild("--platform linux/amd64,linux/arm64");
  EXPECT_EQ(twins.executed, 3) << twins.out;  // one RUN, two COPYs
  EXPECT_EQ(twins.cached, 1) << twins.out;
}

TEST_F(BuildTest, ChainsLongerThanTheMountOptionLimitStillBuild) {
  // ~68 bytes per lower dir: 90 layers are far past one page of overlay
  // options, so the snapshotter flattens a prefix of the chain.
  ImportBusybox();
  std::string df = "FROM busybox\n";
  for (int i = 1; i <= 90; ++i) df += "RUN echo " + std::to_string(i) + " > /f" + std::to_string(i) + "\n";
  df += "RUN cat /f1 /f45 /f90 > /sum\n";
  Dockerfile(df);
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/sum"), "1\n45\n90\n");
  EXPECT_EQ(ReadFile(root + "/f77"), "77\n");
  int chains = 0;
  for (auto& e : fs::directory_iterator(root_ + "/snapshots"))
    chains += e.path().filename().string().rfind("chain-", 0) == 0 ? 1 : 0;
  EXPECT_GE(chains, 1);
}

// ---------------------------------------------------------------- errors

TEST_F(BuildTest, FailingRunReportsExitCodeAndOutputAndTagsNothing) {
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN echo about to fail; exit 3\n");
  Result r = Build("-t never");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error: Dockerfile:2: [linux/amd64 stage-0] process \"/bin/sh -c echo about "
                       "to fail; exit 3\" did not complete successfully: exit code: 3"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("output (last bytes):\nabout to fail\n"), std::string::npos) << r.out;
  EXPECT_EQ(Manifold("images").find("never"), std::string::npos);
}

TEST_F(BuildTest, BaseImageMissingFromTheStoreIsAClearError) {
  Dockerfile("FROM alpine:3.19\nRUN true\n");
  Result r = Build("");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error: Dockerfile:1: image \"alpine:3.19\" is not in the local image store "
                       "and pulling it failed: contacting registry docker.io: "),
            std::string::npos)
      << r.out;
}

TEST_F(BuildTest, PlatformWithoutEmulatorFailsBeforeAnythingRuns) {
  ImportBusybox();
  Manifold("import --platform linux/s390x -t busybox " + bases_->path() + "/busybox-amd64");
  Dockerfile("FROM busybox\nRUN true\n");
  Result r = Build("--platform linux/s390x");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no emulator for linux/s390x"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("RUN true\n"), std::string::npos) << r.out;
}

TEST_F(BuildTest, InsecureNeedsTheEntitlement) {
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n");
  Result r = Build("");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("RUN --security=insecure needs `--allow security.insecure`"),
            std::string::npos)
      << r.out;
  std::string root = BuildLocal("--allow security.insecure");
  // Every capability the worker itself holds (its bounding set).
  std::string own = Sh("grep CapBnd /proc/self/status | cut -f2");
  EXPECT_EQ(ReadFile(root + "/caps"), "CapEff:\t" + own) << ReadFile(root + "/caps");
  Dockerfile("FROM busybox\nRUN grep CapEff /proc/self/status > /caps\n");
  root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/caps"), "CapEff:\t00000000a80425fb\n");  // Docker's default set
}

TEST_F(BuildTest, SecretsAndSshMountErrors) {
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n");
  Result r = Build("");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("secret npmrc is required but was not given"), std::string::npos) << r.out;
  Dockerfile("FROM busybox\nRUN --mount=type=ssh true\n");
  r = Build("");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("RUN --mount=type=ssh is not supported yet"), std::string::npos) << r.out;
}

TEST_F(BuildTest, CopyOutsideTheContextIsRefused) {
  ImportBusybox();
  WriteFile(tmp_.path() + "/outside.txt", "outside\n");
  Dockerfile("FROM busybox\nCOPY ../outside.txt /x\n");
  Result r = Build("");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("outside"), std::string::npos) << r.out;
  // A symlink pointing out of the context is resolved inside it (RELIABILITY A8).
  fs::create_symlink("/etc/hostname", ctx_ + "/link");
  WriteFile(ctx_ + "/etc/hostname", "inside-context\n");
  Dockerfile("FROM busybox\nCOPY link /copied\n");
  std::string root = BuildLocal();
  EXPECT_EQ(ReadFile(root + "/copied"), "inside-context\n");
}

// ---------------------------------------------------------------- reproducibility

TEST_F(BuildTest, SourceDateEpochGivesIdenticalDigestsAcrossColdBuilds) {
  ImportBusybox();
  ImportBusybox("arm64");
  WriteFile(ctx_ + "/f.txt", "content\n");
  Dockerfile(
      "FROM busybox\n"
      "COPY f.txt /f.txt\n"
      "RUN mkdir /d && echo deterministic > /d/x && touch /d/y\n"
      "ENV A=b\n");
  setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  Result a = MustBuild("--platform linux/amd64,linux/arm64 --no-cache");
  sleep(1);
  Result b = MustBuild("--platform linux/amd64,linux/arm64 --no-cache");
  EXPECT_EQ(a.executed, 6);
  EXPECT_EQ(b.executed, 6);
  EXPECT_EQ(a.digest, b.digest);
  std::string archive = tmp_.path() + "/r.tar";
  MustBuild("--platform linux/amd64,linux/arm64 -o type=oci,dest=" + archive);
  json c = Config(archive, "arm64");
  EXPECT_EQ(c["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(c["architecture"], "arm64");
  unsetenv("SOURCE_DATE_EPOCH");
}

TEST_F(BuildTest, TargetAndBuildArgsChooseWhatIsBuilt) {
  ImportBusybox();
  Dockerfile(
      "ARG BASE=busybox\n"
      "FROM $BASE AS one\n"
      "ARG WHAT=default\n"
      "RUN echo $WHAT > /what\n"
      "FROM one AS two\n"
      "RUN echo two > /two\n");
  std::string out = tmp_.path() + "/o";
  MustBuild("--target one --build-arg WHAT=given -o type=local,dest=" + out);
  EXPECT_EQ(ReadFile(out + "/linux_amd64/what"), "given\n");
  EXPECT_FALSE(fs::exists(out + "/linux_amd64/two"));
  setenv("WHAT", "from-env", 1);
  fs::remove_all(out);
  MustBuild("--build-arg WHAT -o type=local,dest=" + out);
  unsetenv("WHAT");
  EXPECT_EQ(ReadFile(out + "/linux_amd64/what"), "from-env\n");
  EXPECT_EQ(ReadFile(out + "/linux_amd64/two"), "two\n");
}

TEST_F(BuildTest, DockerfileOutsideTheContextAndOciDirOutput) {
  ImportBusybox();
  WriteFile(ctx_ + "/hello.txt", "hello\n");
  WriteFile(tmp_.path() + "/elsewhere/My.Dockerfile", "FROM busybox\nCOPY hello.txt /\n");
  std::string dir = tmp_.path() + "/layout";
  MustBuild("-f " + tmp_.path() + "/elsewhere/My.Dockerfile -o type=oci-dir,dest=" + dir);
  json index = json::parse(ReadFile(dir + "/index.json"));
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_TRUE(fs::exists(dir + "/oci-layout"));
  // -f - reads the Dockerfile from stdin.
  std::string local = tmp_.path() + "/stdin-out";
  Sh("printf 'FROM busybox\\nCOPY hello.txt /from-stdin.txt\\n' | " + std::string(MF_MANIFOLD_BIN) +
     " build -f - -o type=local,dest=" + local + " " + ctx_);
  EXPECT_EQ(ReadFile(local + "/linux_amd64/from-stdin.txt"), "hello\n");
  json raw = json::parse(Sh("skopeo inspect --raw oci:" + dir));
  EXPECT_EQ(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(raw["manifests"].size(), 1u);
  EXPECT_EQ(raw["manifests"][0]["platform"]["architecture"], "amd64");
}

// ---------------------------------------------------------------- faults

int CountMounts(const std::string& under) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find(under) != std::string::npos ? 1 : 0;
  return n;
}

TEST_F(BuildTest, KilledBuildLeavesNothingThatTheNextBuildUses) {
  // RELIABILITY C5: SIGKILL while a RUN is running; the next build removes
  // the dead build's container, mount and scratch, re-runs the step and
  // succeeds.
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN echo started; sleep 4; echo finished > /done\n");
  std::string log = tmp_.path() + "/killed.log";
  std::string cmd = std::string(MF_MANIFOLD_BIN) + " build --progress plain " + ctx_ + " > " + log +
                    " 2>&1 & echo $!";
  std::string pid = Sh(cmd);
  for (int i = 0; i < 100 && ReadFile(log).find("| started") == std::string::npos; ++i)
    usleep(100 * 1000);
  ASSERT_NE(ReadFile(log).find("| started"), std::string::npos) << ReadFile(log);
  Sh("kill -9 " + pid);
  usleep(300 * 1000);
  EXPECT_GE(CountMounts(root_ + "/snapshots/tmp-"), 1);  // the dead build's overlay
  Result r = MustBuild("");
  EXPECT_EQ(r.executed, 1) << r.out;
  EXPECT_EQ(CountMounts(root_ + "/snapshots/tmp-"), 0);
  int scratch = 0;
  for (auto& e : fs::directory_iterator(root_ + "/snapshots"))
    scratch += e.path().filename().string().rfind("tmp-", 0) == 0 ? 1 : 0;
  EXPECT_EQ(scratch, 0);
  EXPECT_EQ(Sh("runc --root " + root_ + "/worker/run list -q 2>/dev/null | wc -l"), "0\n");
  EXPECT_TRUE(fs::is_empty(root_ + "/worker/run"));
}

TEST_F(BuildTest, PruneBuildCacheReclaimsEverythingButNeverUnderARunningBuild) {
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/x && echo built > /built\nENV A=1\n");
  Result cold = MustBuild("-t kept");
  EXPECT_EQ(cold.executed, 2) << cold.out;
  std::string out = Manifold("prune --build-cache");
  EXPECT_NE(out.find("Removed the build cache: 2 step records, 2 snapshots, 1 cache mounts"), std::string::npos) << out;
  EXPECT_TRUE(fs::is_empty(root_ + "/cache/steps"));
  EXPECT_TRUE(fs::is_empty(root_ + "/worker/cache-mounts") ||
              fs::directory_iterator(root_ + "/worker/cache-mounts")->path().extension() == ".lock");
  for (auto& e : fs::directory_iterator(root_ + "/snapshots")) ADD_FAILURE() << e.path();
  // The named image survives (its blobs are referenced); the steps run again.
  EXPECT_NE(Manifold("images").find("library/kept"), std::string::npos);
  Result again = MustBuild("-t kept");
  EXPECT_EQ(again.executed, 2) << again.out;
  EXPECT_EQ(again.digest.size(), cold.digest.size());

  // While a build runs, the build cache is not touched.
  Dockerfile("FROM busybox\nRUN echo started; sleep 3\n");
  std::string log = tmp_.path() + "/running.log";
  std::string pid = Sh(std::string(MF_MANIFOLD_BIN) + " build --progress plain " + ctx_ + " > " + log +
                       " 2>&1 & echo $!");
  pid.pop_back();
  for (int i = 0; i < 100 && ReadFile(log).find("| started") == std::string::npos; ++i)
    usleep(100 * 1000);
  std::string busy = Manifold("prune --build-cache", 1);
  EXPECT_NE(busy.find("a build is running on " + root_), std::string::npos) << busy;
  Sh("while kill -0 " + pid + " 2>/dev/null; do sleep 0.1; done");
  EXPECT_NE(ReadFile(log).find("steps: 1 executed"), std::string::npos) << ReadFile(log);
}

TEST_F(BuildTest, StepTimeoutKillsTheStepAndTheWorkerCarriesOn) {
  // RELIABILITY D4: a step that sleeps forever is killed; nothing is left.
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN sleep 1000\n");
  Result r = Build("--step-timeout 1");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error: Dockerfile:2: [linux/amd64 stage-0]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RUN timed out after 1s (--step-timeout) and was killed"), std::string::npos)
      << r.out;
  EXPECT_EQ(CountMounts(root_), 0);
  Dockerfile("FROM busybox\nRUN echo fine > /fine\n");
  EXPECT_EQ(ReadFile(BuildLocal("--step-timeout 5") + "/fine"), "fine\n");
}

TEST_F(BuildTest, NoCacheFilterReRunsOnlyTheNamedStage) {
  ImportBusybox();
  Dockerfile(
      "FROM busybox AS a\nRUN echo a > /a\n"
      "FROM busybox AS b\nRUN echo b > /b\n"
      "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n");
  Result cold = MustBuild("");
  EXPECT_EQ(cold.executed, 4) << cold.out;
  Result filtered = MustBuild("--no-cache-filter b");
  // b's RUN re-runs; its output is byte-identical, so the final COPYs that
  // depend on it are keyed on b's key, which did not change: they hit.
  EXPECT_EQ(filtered.executed, 1) << filtered.out;
  EXPECT_NE(filtered.out.find("[linux/amd64 b 1/1] RUN echo b > /b"), std::string::npos)
      << filtered.out;
  EXPECT_EQ(filtered.digest, cold.digest);
}

TEST_F(BuildTest, JsonProgressIsOneObjectPerLine) {
  ImportBusybox();
  Dockerfile("FROM busybox\nRUN echo hello-json\n");
  std::string out;
  int rc = RunCommand("{ " + std::string(MF_MANIFOLD_BIN) + " build --progress json " + ctx_ +
                          " >" + tmp_.path() + "/digest; }",
                      &out);
  ASSERT_EQ(rc, 0) << out;
  std::istringstream lines(out);
  std::string line;
  std::vector<std::string> events;
  bool saw_output = false;
  while (std::getline(lines, line)) {
    if (line.rfind("built ", 0) == 0) continue;
    json j = json::parse(line);
    events.push_back(j["event"]);
    if (j["event"] == "output")
      saw_output = saw_output || j["text"].get<std::string>().find("hello-json") != std::string::npos;
    if (j["event"] != "info") {
      EXPECT_EQ(j["platform"], "linux/amd64");
      EXPECT_EQ(j["step"], 0);
    }
  }
  EXPECT_TRUE(saw_output) << out;
  EXPECT_NE(std::find(events.begin(), events.end(), "start"), events.end());
  EXPECT_NE(std::find(events.begin(), events.end(), "done"), events.end());
}

TEST_F(BuildTest, TwoBuildsOnOneStateDirAtOnce) {
  ImportBusybox();
  std::string other = tmp_.path() + "/ctx2";
  WriteFile(other + "/Dockerfile", "FROM busybox\nRUN sleep 2; echo two > /two\n");
  Dockerfile("FROM busybox\nRUN sleep 1; echo one > /one\n");
  std::string log = tmp_.path() + "/other.log";
  std::string pid = Sh(std::string(MF_MANIFOLD_BIN) + " build -t two " + other + " > " + log +
                       " 2>&1 & echo $!");
  Result r = MustBuild("-t one");
  EXPECT_EQ(r.executed, 1) << r.out;
  Sh("while kill -0 " + pid.substr(0, pid.size() - 1) + " 2>/dev/null; do sleep 0.1; done");
  EXPECT_NE(ReadFile(log).find("steps: 1 executed"), std::string::npos) << ReadFile(log);
  std::string images = Manifold("images");
  EXPECT_NE(images.find("library/one"), std::string::npos) << images;
  EXPECT_NE(images.find("library/two"), std::string::npos) << images;
}

}  // namespace
}  // namespace manifold::testing
