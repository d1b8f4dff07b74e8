// Local image store commands: import, images, inspect, rmi, export, load, prune.
#include <cstdlib>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/image/image_store.h"
#include "common/image/import.h"
#include "common/image/oci_layout.h"
#include "common/image/unpack.h"
#include "common/oci/index.h"
#include "coordinator/build/builder.h"

namespace manifold::cli {

namespace {

using nlohmann::ordered_json;

// Runs `body` and turns an error into "error: ..." and exit code 1.
void Run(int* exit_code, const std::function<Expected<void>()>& body) {
  auto r = body();
  if (!r.ok()) {
    PrintError(r.error());
    *exit_code = 1;
  }
}

Expected<std::unique_ptr<image::ImageStore>> OpenStore() {
  return image::ImageStore::Open(image::DefaultStateDir());
}

Expected<std::optional<std::int64_t>> SourceDateEpoch() {
  const char* v = std::getenv("SOURCE_DATE_EPOCH");
  if (!v || !*v) return std::optional<std::int64_t>();
  char* end = nullptr;
  long long n = std::strtoll(v, &end, 10);
  if (*end != 0 || n < 0)
    return MakeError(ErrorKind::kInvalidInput, "cli.source_date_epoch",
                     std::string("invalid SOURCE_DATE_EPOCH \"") + v + "\": want seconds since 1970");
  return std::optional<std::int64_t>(n);
}

std::string HumanSize(std::uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return buf;
}

std::string Platforms(const image::ResolvedImage& img) {
  std::string out;
  for (const auto& p : img.platforms) {
    if (!out.empty()) out += ",";
    out += p.manifest_desc.platform ? p.manifest_desc.platform->ToString() : "?";
  }
  return out;
}

ordered_json Json(const std::string& canonical) { return ordered_json::parse(canonical); }

void AddImport(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("import", "Create an image from a root filesystem (directory or tar)");
  struct Flags {
    std::string platform, name, rootfs, compression = "gzip";
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("-t,--tag", f->name, "Image name")->required();
  cmd->add_option("--compression", f->compression, "Layer compression: gzip, zstd or none")
      ->capture_default_str();
  cmd->add_option("--platform", f->platform, "Platform of the root filesystem (default: this machine's)");
  cmd->add_option("ROOTFS", f->rootfs, "Directory or tar archive")->required();
  cmd->callback([f, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      image::ImportOptions opts;
      opts.platform = oci::NativePlatform();
      if (!f->platform.empty()) {
        MF_TRY(p, oci::ParsePlatform(f->platform).With("--platform"));
        opts.platform = p;
      }
      if (f->compression == "zstd") opts.compression = layer::Compression::kZstd;
      else if (f->compression == "none") opts.compression = layer::Compression::kNone;
      else if (f->compression != "gzip")
        return MakeError(ErrorKind::kInvalidInput, "cli.compression",
                         "--compression: unknown compression \"" + f->compression + "\" (gzip, zstd or none)");
      MF_TRY(epoch, SourceDateEpoch());
      opts.source_date_epoch = epoch;
      MF_TRY(store, OpenStore());
      MF_TRY(r, image::Import(*store, f->rootfs, f->name, opts));
      std::cout << r.name << " " << opts.platform.ToString() << " " << r.manifest.digest.ToString() << "\n";
      return Ok();
    });
  });
}

void AddImages(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("images", "List images in the local store");
  auto quiet = std::make_shared<bool>(false);
  cmd->add_flag("-q,--quiet", *quiet, "Only names");
  cmd->callback([quiet, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      MF_TRY(store, OpenStore());
      MF_TRY(names, store->names().List());
      if (!*quiet) printf("%-48s %-19s %-28s %s\n", "NAME", "DIGEST", "PLATFORMS", "SIZE");
      for (const auto& [name, rec] : names) {
        if (*quiet) {
          std::cout << name << "\n";
          continue;
        }
        MF_TRY(img, store->Resolve(name));
        std::uint64_t size = 0;
        for (const auto& d : image::ImageStore::Closure(img)) size += static_cast<std::uint64_t>(d.size);
        printf("%-48s %-19s %-28s %s\n", name.c_str(), rec.digest.substr(0, 19).c_str(),
               Platforms(img).c_str(), HumanSize(size).c_str());
      }
      return Ok();
    });
  });
}

void AddInspect(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("inspect", "Show an image's index, manifests and configs as JSON");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Image name")->required();
  cmd->callback([name, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      MF_TRY(store, OpenStore());
      MF_TRY(img, store->Resolve(*name));
      ordered_json j;
      j["name"] = img.name;
      j["digest"] = img.root.digest.ToString();
      j["mediaType"] = img.root.media_type;
      if (img.index) j["index"] = Json(img.index->ToJson());
      j["manifests"] = ordered_json::array();
      for (const auto& p : img.platforms) {
        ordered_json m;
        m["platform"] = p.manifest_desc.platform ? p.manifest_desc.platform->ToString() : "";
        m["digest"] = p.manifest_desc.digest.ToString();
        m["manifest"] = Json(p.manifest.ToJson());
        m["config"] = Json(p.config.ToJson());
        j["manifests"].push_back(m);
      }
      std::cout << j.dump(2) << "\n";
      return Ok();
    });
  });
}

void AddRmi(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("rmi", "Remove image names (blobs go at the next prune)");
  auto names = std::make_shared<std::vector<std::string>>();
  cmd->add_option("NAME", *names, "Image names")->required();
  cmd->callback([names, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      MF_TRY(store, OpenStore());
      for (const auto& n : *names) {
        MF_TRY(norm, image::ImageStore::NormalizeName(n));
        MF_TRY_VOID(store->names().Update([&](std::map<std::string, image::NameRecord>* t) -> Expected<void> {
          if (!t->erase(norm))
            return MakeError(ErrorKind::kInvalidInput, "image.not_found",
                             "image \"" + n + "\" is not in the local store");
          return Ok();
        }));
        std::cout << "Untagged: " << norm << "\n";
      }
      return Ok();
    });
  });
}

void AddExport(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("export", "Write an image as an OCI layout archive or directory");
  struct Flags {
    std::string name, output, format = "oci";
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("NAME", f->name, "Image name")->required();
  cmd->add_option("-o,--output", f->output, "Destination file (or directory with --format oci-dir)")->required();
  cmd->add_option("--format", f->format, "oci (tar archive) or oci-dir")->capture_default_str();
  cmd->callback([f, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      image::ExportOptions opts;
      if (f->format == "oci-dir") opts.format = image::LayoutFormat::kDirectory;
      else if (f->format != "oci")
        return MakeError(ErrorKind::kInvalidInput, "cli.format",
                         "--format: unknown format \"" + f->format + "\" (oci or oci-dir)");
      MF_TRY(epoch, SourceDateEpoch());
      opts.mtime = epoch.value_or(0);
      MF_TRY(store, OpenStore());
      MF_TRY(img, store->Resolve(f->name));
      return image::ExportLayout(*store, img, f->output, opts);
    });
  });
}

void AddLoad(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("load", "Load an OCI layout archive or directory into the store");
  struct Flags {
    std::string source, name;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("FILE", f->source, "OCI layout archive or directory")->required();
  cmd->add_option("-t,--tag", f->name, "Name for the image (default: from the layout's annotations)");
  cmd->callback([f, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      MF_TRY(store, OpenStore());
      std::optional<std::string> name;
      if (!f->name.empty()) name = f->name;
      MF_TRY(loaded, image::LoadLayout(*store, f->source, name));
      for (const auto& l : loaded) std::cout << "Loaded: " << l.name << " " << l.root.digest.ToString() << "\n";
      return Ok();
    });
  });
}

void AddUnpack(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("unpack", "Apply an image's layers into a new directory");
  struct Flags {
    std::string name, dest, platform;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("NAME", f->name, "Image name")->required();
  cmd->add_option("DIR", f->dest, "Destination (must not exist)")->required();
  cmd->add_option("--platform", f->platform, "Platform to unpack (default: this machine's)");
  cmd->callback([f, exit_code] {
    Run(exit_code, [&]() -> Expected<void> {
      oci::Platform want = oci::NativePlatform();
      if (!f->platform.empty()) {
        MF_TRY(p, oci::ParsePlatform(f->platform).With("--platform"));
        want = p;
      }
      MF_TRY(store, OpenStore());
      MF_TRY(img, store->Resolve(f->name));
      const image::PlatformImage* chosen = nullptr;
      for (const auto& p : img.platforms)
        if (p.manifest_desc.platform && oci::PlatformMatches(want, *p.manifest_desc.platform) && !chosen)
          chosen = &p;
      if (!chosen)
        return MakeError(ErrorKind::kInvalidInput, "image.no_platform",
                         "image \"" + f->name + "\" has no " + want.ToString() + " variant (it has " +
                             Platforms(img) + ")");
      MF_TRY(stats, image::Unpack(*store, *chosen, f->dest));
      std::cout << "Unpacked " << stats.layers << " layers (" << stats.entries << " entries) into "
                << f->dest << "\n";
      return Ok();
    });
  });
}

void AddPrune(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("prune", "Remove blobs that no image name or running build references");
  auto build_cache = std::make_shared<bool>(false);
  cmd->add_flag("--build-cache", *build_cache,
                "Also remove the build cache: step records, unpacked layers, cache mounts");
  cmd->callback([exit_code, build_cache] {
    Run(exit_code, [&]() -> Expected<void> {
      if (*build_cache) {
        MF_TRY(bc, coordinator::PruneBuildCache(image::DefaultStateDir()));
        std::cout << "Removed the build cache: " << bc.step_records << " step records, "
                  << bc.snapshots << " snapshots, " << bc.cache_mounts << " cache mounts ("
                  << HumanSize(bc.bytes) << ")\n";
      }
      MF_TRY(store, OpenStore());
      MF_TRY(stats, store->Prune());
      std::cout << "Removed " << stats.removed_blobs << " blobs (" << HumanSize(stats.removed_bytes)
                << "), kept " << stats.marked << "\n";
      return Ok();
    });
  });
}

}  // namespace

void AddImageCommands(CLI::App& app, int* exit_code) {
  AddImport(app, exit_code);
  AddImages(app, exit_code);
  AddInspect(app, exit_code);
  AddRmi(app, exit_code);
  AddExport(app, exit_code);
  AddLoad(app, exit_code);
  AddUnpack(app, exit_code);
  AddPrune(app, exit_code);
}

}  // namespace manifold::cli
