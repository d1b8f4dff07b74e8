// The `manifold` command: wiring only. Each subcommand lives in its own file.
#include <iostream>

#include "cli/commands.h"
#include "common/base/error.h"
#include "common/base/log.h"

namespace manifold::cli {

void PrintError(const Error& e) { std::cerr << "error: " << e.ToString() << "\n"; }

}  // namespace manifold::cli

int main(int argc, char** argv) {
  CLI::App app{"Manifold: a distributed multi-architecture Dockerfile builder", "manifold"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "manifold 0.1.0");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "Log level: debug, info, warn, error")->capture_default_str();
  int exit_code = 0;
  manifold::cli::AddParseCommand(app, &exit_code);
  manifold::cli::AddPlanCommand(app, &exit_code);
  manifold::cli::AddImageCommands(app, &exit_code);
  manifold::cli::AddBuildCommand(app, &exit_code);
  manifold::cli::AddRegistryCommands(app, &exit_code);
  manifold::cli::AddWorkersCommands(app, &exit_code);
  app.parse_complete_callback([&] { manifold::SetLogLevel(log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const manifold::InternalError& e) {
    std::cerr << "error: internal: " << e.what() << "\n";
    return 70;
  }
  return exit_code;
}
