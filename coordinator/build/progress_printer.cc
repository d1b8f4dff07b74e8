#include "coordinator/build/progress_printer.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

namespace manifold::coordinator {

void Printer::Step(const JobState& js, int step, const std::string& what, const std::string& text,
                   std::uint64_t ms, const std::string& worker) {
  if (mode_ == "quiet") return;
  std::string tag = Tag(js, step, worker);
  if (mode_ == "json") {
    nlohmann::json j{{"job", js.job.id}, {"platform", js.job.target_platform.ToString()},
                     {"stage", js.job.stage}, {"step", step}, {"event", what}};
    if (!text.empty()) j["text"] = text;
    if (what == "done") j["duration_ms"] = ms;
    if (!worker.empty()) j["worker"] = worker;
    out_ << j.dump() << "\n";
    out_.flush();
    return;
  }
  if (what == "start") {
    out_ << tag << " " << text << "\n";
  } else if (what == "cached") {
    out_ << tag << " CACHED " << text << "\n";
  } else if (what == "done") {
    std::ostringstream d;
    d << std::fixed << std::setprecision(2) << static_cast<double>(ms) / 1000.0;
    out_ << tag << " DONE " << d.str() << "s\n";
  } else if (what == "output") {
    std::string& buf = partial_[js.job.id];
    buf += text;
    std::size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      out_ << tag << " | " << buf.substr(0, nl) << "\n";
      buf.erase(0, nl + 1);
    }
    if (buf.size() > 4096) {
      out_ << tag << " | " << buf << "\n";
      buf.clear();
    }
  } else {
    out_ << tag << " " << text << "\n";
  }
  out_.flush();
}

void Printer::Line(const std::string& s) {
  if (mode_ == "quiet") return;
  if (mode_ == "json") {
    out_ << nlohmann::json{{"event", "info"}, {"text", s}}.dump() << "\n";
  } else {
    out_ << s << "\n";
  }
  out_.flush();
}

std::string Printer::Tag(const JobState& js, int step, const std::string& worker) {
  std::string t = "[" + js.job.target_platform.ToString() + " " + js.job.stage;
  if (step >= 0)
    t += " " + std::to_string(step + 1) + "/" + std::to_string(js.job.instructions.size());
  if (!worker.empty()) t += " @" + worker;
  return t + "]";
}

}  // namespace manifold::coordinator
