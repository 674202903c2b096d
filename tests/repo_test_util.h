// Helpers for tests that drive a whole repository: create and open one for writing, and assert
// that `check` finds it consistent.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "cairn/repository.h"
#include "crypto/keyfile.h"
#include "repo/testing.h"

namespace cairn::testing {

// The password of every test repository. Key files are made with the weak test-only KDF cost
// (crypto::EnableTestKdf, called below before any test runs), so opening one takes
// milliseconds.
inline constexpr const char* kTestPassword = "correct horse battery staple";
inline const bool kFastKdf = (crypto::EnableTestKdf(), true);

// Init and open options for a test repository: encrypted (the default) with kTestPassword.
inline InitOptions TestInit() {
  InitOptions o;
  o.password = kTestPassword;
  return o;
}
inline OpenOptions TestOpen(bool writable = true) {
  OpenOptions o;
  o.writable = writable;
  o.password = kTestPassword;
  return o;
}

// Creates a repository at `path` and opens it writable (with test `hooks`); nullptr (and a
// test failure) on error.
inline std::unique_ptr<Repository> InitAndOpen(const std::string& path,
                                               const InitOptions& init = TestInit(),
                                               OpenOptions open = TestOpen(),
                                               const TestHooks& hooks = {}) {
  Status s = Repository::Init(path, init);
  if (!s.ok()) {
    ADD_FAILURE() << "init " << path << ": " << s.message();
    return nullptr;
  }
  open.writable = true;
  auto r = OpenForTesting(path, open, hooks);
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
