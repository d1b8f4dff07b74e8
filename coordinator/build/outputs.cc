#include "coordinator/build/outputs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/image/oci_layout.h"
#include "common/image/unpack.h"

namespace manifold::coordinator {

std::string PlatformDir(const oci::Platform& p) {
  std::string s = p.os + "_" + p.architecture;
  if (!p.variant.empty()) s += "_" + p.variant;
  return s;
}

Expected<void> WriteOutputs(image::ImageStore& store, const oci::Descriptor& root,
                            const std::string& name, const std::vector<OutputSpec>& outputs,
                            std::optional<std::int64_t> source_date_epoch) {
    for (const auto& o : outputs) {
      if (o.type == OutputSpec::Type::kImage) continue;
      MF_TRY(img, store.ResolveDescriptor(name, root));
      switch (o.type) {
        case OutputSpec::Type::kOci:
        case OutputSpec::Type::kOciDir: {
          image::ExportOptions eo;
          eo.format = o.type == OutputSpec::Type::kOci ? image::LayoutFormat::kTar
                                                       : image::LayoutFormat::kDirectory;
          if (source_date_epoch) eo.mtime = *source_date_epoch;
          MF_TRY_VOID(image::ExportLayout(store, img, o.dest, eo));
          break;
        }
        case OutputSpec::Type::kImage:
          break;
        case OutputSpec::Type::kLocal: {
          ::mkdir(o.dest.c_str(), 0755);
          for (const auto& p : img.platforms) {
            oci::Platform plat{p.config.os, p.config.architecture, p.config.variant};
            // Into a fresh sibling, then swapped in: a rebuild replaces the
            // platform's tree and a failed unpack leaves the old one.
            std::string dir = o.dest + "/" + PlatformDir(plat);
            std::string fresh = dir + ".new-" + std::to_string(::getpid());
            std::string old = dir + ".old-" + std::to_string(::getpid());
            std::error_code ec;
            std::filesystem::remove_all(fresh, ec);
            auto unpacked = image::Unpack(store, p, fresh);
            if (!unpacked.ok()) {
              std::filesystem::remove_all(fresh, ec);
              return std::move(unpacked).error();
            }
            bool had = std::filesystem::exists(std::filesystem::symlink_status(dir));
            if (had && ::rename(dir.c_str(), old.c_str()) != 0)
              return MakeError(ErrorKind::kInternal, "build.output",
                               "rename " + dir + ": " + std::strerror(errno));
            if (::rename(fresh.c_str(), dir.c_str()) != 0)
              return MakeError(ErrorKind::kInternal, "build.output",
                               "rename " + fresh + ": " + std::strerror(errno));
            if (had) std::filesystem::remove_all(old, ec);
          }
          break;
        }
      }
    }
  return Ok();
}

}  // namespace manifold::coordinator
