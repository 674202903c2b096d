// Helpers for tests that drive a whole repository: create and open one for writing, and assert
// that `check` finds it consistent.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cairn/repository.h"

namespace cairn::testing {

// Creates a repository at `path` and opens it writable; nullptr (and a test failure) on error.
inline std::unique_ptr<Repository> InitAndOpen(const std::string& path,
                                               const InitOptions& init = InitOptions{},
                                               OpenOptions open = OpenOptions{}) {
  Status s = Repository::Init(path, init);
  if (!s.ok()) {
    ADD_FAILURE() << "init " << path << ": " << s.message();
    return nullptr;
  }
  open.writable = true;
  auto r = Repository::Open(path, open);
  if (!r.ok()) {
    ADD_FAILURE() << "open " << path << ": " << r.status().message();
    return nullptr;
  }
  return std::move(r.value());
}

// Runs `check` (reading every chunk when `read_data`); every problem it reports is a test
// failure prefixed with `context`. Returns whether the repository is clean.
inline bool ExpectCheckClean(Repository& repo, bool read_data = true,
                             const std::string& context = "") {
  CheckOptions co;
  co.read_data = read_data;
  auto rep = repo.Check(co);
  if (!rep.ok()) {
    ADD_FAILURE() << context << "check failed to run: " << rep.status().message();
    return false;
  }
  for (const auto& e : rep->errors) ADD_FAILURE() << context << e;
  return rep->clean();
}

}  // namespace cairn::testing
