// `manifold build --progress`: one line per step event, per platform and
// stage (plain; auto and tty print the same), or one JSON object per event.
#pragma once
#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "coordinator/build/job_state.h"

namespace manifold::coordinator {

class Printer {
 public:
  Printer(std::ostream& out, std::string mode) : out_(out), mode_(std::move(mode)) {}
  /// `what`: start, output, cached, done, info.
  /// `worker`: who ran it (cluster builds), shown as "@worker" in the tag.
  void Step(const JobState& js, int step, const std::string& what, const std::string& text,
            std::uint64_t ms, const std::string& worker = "");
  void Line(const std::string& s);

 private:
  static std::string Tag(const JobState& js, int step, const std::string& worker);
  std::ostream& out_;
  std::string mode_;
  std::map<std::string, std::string> partial_;  ///< output not yet ended by a newline, per job
};

}  // namespace manifold::coordinator
