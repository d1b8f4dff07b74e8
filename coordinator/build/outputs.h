// Where a build's image goes besides the local store: an OCI archive or
// directory, or each platform's root filesystem (type=local).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/image/image_store.h"
#include "coordinator/build/builder.h"

namespace manifold::coordinator {

/// "linux_arm64", "linux_arm_v7": a platform's folder under a type=local dest.
std::string PlatformDir(const oci::Platform& p);

/// Writes every output but type=image (the caller tags and pushes those).
/// type=local unpacks each platform into DEST/<PlatformDir> through a fresh
/// sibling swapped in, so a rebuild replaces the tree and a failure leaves the
/// old one. `name` labels OCI exports (may be empty).
Expected<void> WriteOutputs(image::ImageStore& store, const oci::Descriptor& root,
                            const std::string& name, const std::vector<OutputSpec>& outputs,
                            std::optional<std::int64_t> source_date_epoch);

}  // namespace manifold::coordinator
