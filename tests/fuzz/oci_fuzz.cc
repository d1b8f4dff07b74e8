// libFuzzer target for the OCI document door: manifests, indexes, configs,
// descriptors and references. Anything parsed must re-serialise and parse
// again to the same canonical JSON; nothing may crash (RELIABILITY E3–E5).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/oci/descriptor.h"
#include "common/oci/image_config.h"
#include "common/oci/index.h"
#include "common/oci/manifest.h"
#include "common/oci/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace manifold::oci;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto m = ParseManifest(in); m.ok()) {
    auto again = ParseManifest(m->ToJson());
    if (!again.ok() || again->ToJson() != m->ToJson()) __builtin_trap();
  }
  if (auto i = ParseIndex(in); i.ok()) {
    auto again = ParseIndex(i->ToJson());
    if (!again.ok() || again->ToJson() != i->ToJson()) __builtin_trap();
    (void)SelectManifest(*i, Platform{"linux", "arm64", ""});
  }
  if (auto c = ParseImageConfig(in); c.ok()) {
    auto again = ParseImageConfig(c->ToJson());
    if (!again.ok() || again->ToJson() != c->ToJson()) __builtin_trap();
  }
  (void)ParseDescriptor(in);
  if (size < 512) {
    if (auto r = ParseReference(in); r.ok()) {
      auto again = ParseReference(r->String());
      if (!again.ok() || again->String() != r->String()) __builtin_trap();
    }
  }
  return 0;
}
