// Subcommands of `manifold`; main.cc wires them into one CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "coordinator/build/remote_build.h"

namespace manifold::cli {

/// Each Add* registers a subcommand; its callback sets *exit_code.
void AddParseCommand(CLI::App& app, int* exit_code);
void AddPlanCommand(CLI::App& app, int* exit_code);
void AddImageCommands(CLI::App& app, int* exit_code);
void AddBuildCommand(CLI::App& app, int* exit_code);
void AddRegistryCommands(CLI::App& app, int* exit_code);

/// Prints an error as `error: <message>` plus its detail lines, to stderr.
void AddWorkersCommands(CLI::App& app, int* exit_code);

void PrintError(const Error& e);

/// --coordinator/--token/--coordinator-key, with MANIFOLD_COORDINATOR and
/// MANIFOLD_TOKEN as defaults.
coordinator::RemoteTarget RemoteTargetFrom(std::string address, std::string token, std::string key);

}  // namespace manifold::cli
