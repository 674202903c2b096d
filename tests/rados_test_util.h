// Helpers for tests against a Ceph cluster: find it through CEPH_CONF (skipping with a message
// when unset), give each test its own object prefix, and remove that prefix afterwards.
// Start a throw-away cluster with tests/rados/run.sh or `ctest -L rados` (scripts/ceph-local.sh).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/rados_connection.h"

namespace cairn::testing {

// The ceph.conf of the test cluster, or "" when none was given.
inline std::string CephConf() {
  const char* c = std::getenv("CEPH_CONF");
  return c ? c : "";
}

// The pool the tests use: $CAIRN_RADOS_POOL or "cairn" (created by scripts/ceph-local.sh).
inline std::string TestPool() {
  const char* p = std::getenv("CAIRN_RADOS_POOL");
  return p && *p ? p : "cairn";
}

#define CAIRN_REQUIRE_CEPH()                                                             \
  do {                                                                                   \
    if (::cairn::testing::CephConf().empty())                                            \
      GTEST_SKIP() << "CEPH_CONF is not set: no Ceph cluster to test against (run "      \
                      "tests/rados/run.sh, or ctest -L rados, which start a local one)"; \
  } while (0)

// "cairn-test/<name>-<16 hex digits>": a prefix no other test run uses.
inline std::string UniquePrefix(const std::string& name) {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t(rd()) << 32) ^ rd());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng()));
  return "cairn-test/" + name + "-" + hex;
}

inline std::shared_ptr<RadosConnection> TestConnection() {
  RadosOptions o;
  o.ceph_conf = CephConf();
  o.timeout = std::chrono::seconds(60);
  auto c = RadosConnection::Connect(TestPool(), o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : nullptr;
}

// Every object in the pool whose name starts with `prefix` (a pool-wide listing: tests only).
inline std::vector<std::string> ObjectsUnder(RadosConnection& c, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto it = c.io().nobjects_begin(); it != c.io().nobjects_end(); ++it)
    if (it->get_oid().rfind(prefix, 0) == 0) out.push_back(it->get_oid());
  return out;
}

inline void RemoveObjectsUnder(RadosConnection& c, const std::string& prefix) {
  for (const auto& o : ObjectsUnder(c, prefix)) (void)c.io().remove(o);
}

}  // namespace cairn::testing
