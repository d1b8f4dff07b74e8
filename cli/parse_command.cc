// `manifold parse [--json] FILE`: what the frontend's syntax layer understood.
#include <iostream>

#include "cli/commands.h"
#include "cli/read_file.h"
#include "common/dockerfile/parse_json.h"
#include "common/dockerfile/parser.h"

namespace manifold::cli {

void AddParseCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("parse", "Show how a Dockerfile is read (syntax layer)");
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("FILE", *file, "Dockerfile to read")->required();
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([file, json, exit_code] {
    dockerfile::ParseLimits limits;
    auto content = ReadSmallFile(*file, limits.max_file_bytes);
    if (!content.ok()) {
      PrintError(content.error());
      *exit_code = 1;
      return;
    }
    auto tree = dockerfile::Parse(*content, *file, limits);
    if (!tree.ok()) {
      PrintError(tree.error());
      *exit_code = 1;
      return;
    }
    std::cout << (*json ? dockerfile::SyntaxTreeToJson(*tree) : dockerfile::SyntaxTreeToText(*tree));
  });
}

}  // namespace manifold::cli
