// The local image store checked with tools we did not write: what we export,
// skopeo inspects and copies and umoci unpacks to the tree we imported; what
// skopeo and umoci make, we load. Runs the real `manifold` binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/tree_compare.h"

namespace manifold::testing {
namespace {

namespace fs = std::filesystem;

class ImageToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/state";
    setenv("MANIFOLD_ROOT", root_.c_str(), 1);
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  }

  // Runs manifold; fails the test on a non-zero exit unless `allow_fail`.
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

  // A tree with what layers must keep: modes, setuid, owners, symlinks
  // (absolute and relative), hardlinks, an empty dir, xattrs, a fifo.
  std::string RichTree() {
    std::string d = tmp_.path() + "/rich";
    fs::create_directories(d + "/etc/app");
    fs::create_directories(d + "/usr/bin");
    fs::create_directories(d + "/empty");
    std::ofstream(d + "/etc/app/config") << "key=value\n";
    std::ofstream(d + "/usr/bin/tool") << "#!/bin/sh\necho tool\n";
    chmod((d + "/usr/bin/tool").c_str(), 04755);
    std::ofstream(d + "/etc/secret") << "s3cret\n";
    chmod((d + "/etc/secret").c_str(), 0600);
    chown((d + "/etc/secret").c_str(), 1000, 1000);
    symlink("/etc/app/config", (d + "/etc/abs-link").c_str());
    symlink("../app/config", (d + "/etc/app/rel-link").c_str());
    link((d + "/usr/bin/tool").c_str(), (d + "/usr/bin/tool-hardlink").c_str());
    setxattr((d + "/etc/app/config").c_str(), "user.origin", "test", 4, 0);
    mkfifo((d + "/etc/app/fifo").c_str(), 0644);
    chmod((d + "/empty").c_str(), 0700);
    return d;
  }

  std::string Busybox(const std::string& arch) {
    std::string d = tmp_.path() + "/busybox-" + arch;
    Sh("bash tests/testdata/busybox-rootfs.sh " + arch + " " + d);
    return d;
  }

  TempDir tmp_;
  std::string root_;
};

TEST_F(ImageToolsTest, ExportIsAcceptedBySkopeoAndUnpacksToTheImportedTreeWithUmoci) {
  std::string tree = RichTree();
  Manifold("import --platform linux/amd64 -t test/rich:1 " + tree);
  std::string archive = tmp_.path() + "/rich.tar";
  Manifold("export test/rich:1 -o " + archive);

  auto inspect = nlohmann::json::parse(Sh("skopeo inspect oci-archive:" + archive));
  EXPECT_EQ(inspect["Architecture"], "amd64");
  EXPECT_EQ(inspect["Os"], "linux");
  EXPECT_EQ(inspect["Layers"].size(), 1u);
  EXPECT_EQ(inspect["Created"], "2023-11-14T22:13:20Z");
  Sh("skopeo copy -q oci-archive:" + archive + " oci:" + tmp_.path() + "/copy:rich");

  std::string layout = tmp_.path() + "/layout";
  fs::create_directories(layout);
  Sh("tar -xf " + archive + " -C " + layout);
  std::string bundle = tmp_.path() + "/bundle";
  Sh("umoci unpack --image " + layout + ":1 " + bundle);
  EXPECT_EQ(CompareTrees(tree, bundle + "/rootfs"), std::vector<std::string>{});
}

TEST_F(ImageToolsTest, TwoBusyboxPlatformsImportIntoOneName) {
  std::string amd = Busybox("amd64"), arm = Busybox("arm64");
  Manifold("import --platform linux/amd64 -t busybox " + amd);
  Manifold("import --platform linux/arm64 -t busybox " + arm);
  std::string images = Manifold("images");
  EXPECT_NE(images.find("docker.io/library/busybox:latest"), std::string::npos) << images;
  EXPECT_NE(images.find("linux/amd64,linux/arm64"), std::string::npos) << images;

  std::string archive = tmp_.path() + "/busybox.tar";
  Manifold("export busybox -o " + archive);
  auto raw = nlohmann::json::parse(Sh("skopeo inspect --raw oci-archive:" + archive));
  EXPECT_EQ(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(raw["manifests"].size(), 2u);
  EXPECT_EQ(raw["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(raw["manifests"][1]["platform"]["architecture"], "arm64");
  auto arm_inspect = nlohmann::json::parse(
      Sh("skopeo inspect --override-arch arm64 oci-archive:" + archive));
  EXPECT_EQ(arm_inspect["Architecture"], "arm64");
  Sh("skopeo copy -q --all oci-archive:" + archive + " oci:" + tmp_.path() + "/copy:bb");

  // Importing the same platform again replaces it, the other one stays.
  Manifold("import --platform linux/arm64 -t busybox " + amd);
  auto j = nlohmann::json::parse(Manifold("inspect busybox"));
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][1]["platform"], "linux/arm64");
  EXPECT_EQ(j["manifests"][1]["config"]["architecture"], "arm64");
}

TEST_F(ImageToolsTest, SameTreeSameDigestAndExportsAreReproducible) {
  std::string amd = Busybox("amd64");
  Manifold("import -t a " + amd);
  std::string first = tmp_.path() + "/a1.tar", second = tmp_.path() + "/a2.tar";
  Manifold("export a -o " + first);
  setenv("MANIFOLD_ROOT", (tmp_.path() + "/other-state").c_str(), 1);
  Manifold("import -t a " + amd);
  Manifold("export a -o " + second);
  EXPECT_EQ(Sh("sha256sum < " + first), Sh("sha256sum < " + second));
}

TEST_F(ImageToolsTest, LoadsWhatSkopeoAndUmociWrite) {
  // umoci builds an image from a rootfs of ours...
  std::string tree = RichTree();
  std::string layout = tmp_.path() + "/umoci-layout";
  Sh("umoci init --layout " + layout);
  Sh("umoci new --image " + layout + ":base");
  std::string bundle = tmp_.path() + "/umoci-bundle";
  Sh("umoci unpack --image " + layout + ":base " + bundle);
  Sh("cp -a " + tree + "/. " + bundle + "/rootfs/");
  Sh("umoci repack --image " + layout + ":base " + bundle);
  Sh("umoci config --image " + layout + ":base --config.cmd /usr/bin/tool");
  // ...skopeo turns it into an archive naming it...
  std::string archive = tmp_.path() + "/from-skopeo.tar";
  Sh("skopeo copy -q oci:" + layout + ":base oci-archive:" + archive + ":example.com/team/tool:2");
  std::string out = Manifold("load " + archive);
  EXPECT_NE(out.find("Loaded: example.com/team/tool:2"), std::string::npos) << out;
  auto j = nlohmann::json::parse(Manifold("inspect example.com/team/tool:2"));
  EXPECT_EQ(j["manifests"][0]["config"]["config"]["Cmd"], nlohmann::json({"/usr/bin/tool"}));
  // ...and a layout directory loads too, named with -t.
  out = Manifold("load -t local/from-umoci " + layout);
  EXPECT_NE(out.find("Loaded: docker.io/local/from-umoci:latest"), std::string::npos) << out;
  // Its layers, applied by us, give the tree umoci made.
  std::string ours = tmp_.path() + "/ours";
  Manifold("unpack example.com/team/tool:2 " + ours);
  EXPECT_EQ(CompareTrees(bundle + "/rootfs", ours), std::vector<std::string>{});
  // Our export of what we loaded unpacks (umoci) to the same tree umoci made.
  std::string again = tmp_.path() + "/again.tar";
  Manifold("export example.com/team/tool:2 -o " + again);
  std::string relayout = tmp_.path() + "/relayout";
  fs::create_directories(relayout);
  Sh("tar -xf " + again + " -C " + relayout);
  Sh("umoci unpack --image " + relayout + ":2 " + tmp_.path() + "/rebundle");
  EXPECT_EQ(CompareTrees(bundle + "/rootfs", tmp_.path() + "/rebundle/rootfs"), std::vector<std::string>{});
}

TEST_F(ImageToolsTest, RmiAndPruneRemoveOnlyUnreferencedBlobs) {
  std::string amd = Busybox("amd64");
  std::string tree = RichTree();
  Manifold("import -t keep " + amd);
  Manifold("import -t drop " + tree);
  auto count_blobs = [&] {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(root_ + "/content/blobs/sha256")) n += e.is_regular_file();
    return n;
  };
  size_t before = count_blobs();
  EXPECT_EQ(before, 6u);  // two images: manifest, config, layer each
  Manifold("rmi drop");
  EXPECT_EQ(Manifold("images -q"), "docker.io/library/keep:latest\n");
  std::string pruned = Manifold("prune");
  EXPECT_EQ(pruned.rfind("Removed 3 blobs", 0), 0u) << pruned;
  EXPECT_EQ(count_blobs(), 3u);
  Manifold("export keep -o " + tmp_.path() + "/keep.tar");
  Sh("skopeo inspect oci-archive:" + tmp_.path() + "/keep.tar");
}

TEST_F(ImageToolsTest, UnpackGivesTheImportedTreeAndChecksDiffIds) {
  std::string tree = RichTree();
  Manifold("import -t rich " + tree);
  std::string out = tmp_.path() + "/out";
  Manifold("unpack rich " + out);
  EXPECT_EQ(CompareTrees(tree, out), std::vector<std::string>{});
  // A config naming another diff_id: the layer is refused and nothing is left.
  auto j = nlohmann::json::parse(Manifold("inspect rich"));
  std::string layer = j["manifests"][0]["manifest"]["layers"][0]["digest"];
  auto config = j["manifests"][0]["config"];
  config["rootfs"]["diff_ids"][0] = "sha256:" + std::string(64, 'a');
  std::string layout = tmp_.path() + "/forged";
  Manifold("export --format oci-dir rich -o " + layout);
  std::string cfg = config.dump();
  std::string cfg_path = tmp_.path() + "/cfg.json";
  std::ofstream(cfg_path) << cfg;
  std::string cfg_digest = Sh("sha256sum " + cfg_path + " | cut -c1-64");
  cfg_digest.pop_back();
  Sh("cp " + cfg_path + " " + layout + "/blobs/sha256/" + cfg_digest);
  auto manifest = j["manifests"][0]["manifest"];
  manifest["config"]["digest"] = "sha256:" + cfg_digest;
  manifest["config"]["size"] = cfg.size();
  std::string man = manifest.dump();
  std::string man_path = tmp_.path() + "/man.json";
  std::ofstream(man_path) << man;
  std::string man_digest = Sh("sha256sum " + man_path + " | cut -c1-64");
  man_digest.pop_back();
  Sh("cp " + man_path + " " + layout + "/blobs/sha256/" + man_digest);
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                          {"digest", "sha256:" + man_digest},
                                          {"size", man.size()}}}}};
  std::ofstream(layout + "/index.json", std::ios::trunc) << index.dump();
  Manifold("load -t forged " + layout);
  std::string err = Manifold("unpack forged " + tmp_.path() + "/forged-out", 1);
  EXPECT_EQ(err, "error: layer " + layer + " uncompresses to " + j["manifests"][0]["config"]["rootfs"]["diff_ids"][0].get<std::string>() +
                     ", but the config says sha256:" + std::string(64, 'a') + "\n");
  EXPECT_FALSE(fs::exists(tmp_.path() + "/forged-out"));
}

TEST_F(ImageToolsTest, ZstdAndUncompressedLayersRoundTrip) {
  std::string tree = RichTree();
  for (const char* c : {"zstd", "none"}) {
    std::string name = std::string("comp-") + c;
    Manifold("import --compression " + std::string(c) + " -t " + name + " " + tree);
    auto j = nlohmann::json::parse(Manifold("inspect " + name));
    EXPECT_EQ(j["manifests"][0]["manifest"]["layers"][0]["mediaType"],
              std::string("application/vnd.oci.image.layer.v1.tar") + (c == std::string("zstd") ? "+zstd" : ""));
    std::string out = tmp_.path() + "/" + name;
    Manifold("unpack " + name + " " + out);
    EXPECT_EQ(CompareTrees(tree, out), std::vector<std::string>{});
  }
  EXPECT_EQ(Manifold("import --compression lz4 -t x " + tree, 1),
            "error: --compression: unknown compression \"lz4\" (gzip, zstd or none)\n");
}

TEST_F(ImageToolsTest, ClearErrors) {
  std::string out = Manifold("inspect nothere", 1);
  EXPECT_EQ(out, "error: image \"nothere\" is not in the local store (" + root_ + ")\n");
  std::string not_tar = tmp_.path() + "/not-a-tar";
  std::ofstream(not_tar) << "just text, not an archive\n";
  out = Manifold("import -t x " + not_tar, 1);
  EXPECT_EQ(out, "error: " + not_tar + " is neither a directory nor a tar archive\n");
  out = Manifold("import -t UPPER/case " + tmp_.path(), 1);
  EXPECT_NE(out.find("repository name must be lowercase"), std::string::npos) << out;
  out = Manifold("load " + not_tar, 1);
  EXPECT_NE(out.find("error: "), std::string::npos);
  EXPECT_EQ(Manifold("images -q"), "");  // nothing half-written
}

TEST_F(ImageToolsTest, ConcurrentImportsOnOneStateDir) {
  std::string amd = Busybox("amd64");
  std::string cmd;
  for (int i = 0; i < 4; ++i)
    cmd += std::string(MF_MANIFOLD_BIN) + " import -t par" + std::to_string(i) + " " + amd + " >/dev/null & ";
  Sh(cmd + "wait");
  EXPECT_EQ(Manifold("images -q"),
            "docker.io/library/par0:latest\ndocker.io/library/par1:latest\n"
            "docker.io/library/par2:latest\ndocker.io/library/par3:latest\n");
}

}  // namespace
}  // namespace manifold::testing
