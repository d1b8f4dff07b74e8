// Where a ready job runs (DESIGN.md "A build, end to end", 3): a slot that
// runs its platform natively if one is free, else one that emulates it;
// among those, a healthy worker before a degraded one (it asked to stay
// idle: RELIABILITY H8), then the one whose worker holds most of the job's
// inputs, then the least loaded worker. Jobs without RUN steps run on any slot. Pure and
// linear in the slots, so the farm's scheduler stays cheap with thousands.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/oci/platform.h"

namespace manifold::coordinator {

struct SlotView {
  std::string id;
  std::string worker;
  const std::vector<std::pair<oci::Platform, bool>>* platforms = nullptr;  ///< (platform, emulated)
  bool idle = true;
  bool degraded = false;  ///< its worker would rather stay idle
};

struct PlacementRequest {
  oci::Platform platform;
  bool runs = true;  ///< has RUN steps (needs the platform)
  /// Inputs held per worker (how many of the job's input blobs each has).
  const std::map<std::string, int>* held = nullptr;
  /// Running jobs per worker.
  const std::map<std::string, int>* load = nullptr;
};

struct Placement {
  std::string slot;      ///< "" = no idle slot can take it now
  bool capable = false;  ///< some slot (idle or not) can run it at all
};

Placement Place(const PlacementRequest& job, const std::vector<SlotView>& slots);

}  // namespace manifold::coordinator
