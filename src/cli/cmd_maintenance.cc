// `cairn forget|maintain|stat|check|reencrypt|repair`: retention, giving space back, statistics,
// verification and re-sealing chunks at rest.
#include <cstdio>
#include <iostream>

#include "cairn/admin.h"
#include "cairn/repair.h"
#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/progress.h"

namespace cairn::cli {
namespace {

// ------------------------------------------------------------------ forget

struct ForgetArgs {
  std::string repo, name;
  uint64_t keep_last = 0;
  bool allow_remove_all = false;
};

int CmdForget(const Globals& g, const ForgetArgs& a) {
  // Like restic's forget: a policy that keeps nothing empties the object (or every object), so
  // it runs only when the user says so explicitly.
  if (a.keep_last == 0 && !a.allow_remove_all)
    return Fail(
        Status::Invalid("--keep-last 0 would remove every version of " +
                        (a.name.empty() ? std::string("every object") : "'" + a.name + "'") +
                        "; add --unsafe-allow-remove-all if that is what you want"));
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  std::optional<std::string> target;
  if (!a.name.empty()) target = a.name;
  auto n = (*repo)->Forget(target, a.keep_last);
  if (!n.ok()) return Fail(n.status());
  if (g.json)
    PrintJson({{"versions_removed", *n}});
  else if (!g.quiet)
    std::printf("removed %llu version(s)\n", (unsigned long long)*n);
  return 0;
}

RunFn DefineForget(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ForgetArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "object (default: every object)");
  cmd.add_option("--keep-last", a->keep_last, "versions to keep per object")
      ->required()
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--unsafe-allow-remove-all", a->allow_remove_all,
               "allow --keep-last 0, which removes every version");
  return [a, &g = ctx.globals] { return CmdForget(g, *a); };
}

// ------------------------------------------------------------------ maintain

struct MaintainArgs {
  std::string repo, max_bytes, grace;
  double threshold = 0.5, max_seconds = 0;
};

// The shortest --grace: it must outlast a transaction until its writer lease is published (60 s
// open, renewed every 20 s: repo/writer_lease.h), with room for clock skew; a put whose dedup hit
// is collected before it commits fails (and is retried by its user).
constexpr uint64_t kMinGraceSeconds = 300;
// The longest: what MaintainRequest::grace_seconds accepts.
constexpr uint64_t kMaxGraceSeconds = 1000000000;

// --grace DURATION as seconds, at least kMinGraceSeconds.
Result<double> ParseGrace(const std::string& text) {
  auto d = ParseDuration(text);
  if (!d.ok()) return d.status();
  if (*d < kMinGraceSeconds)
    return Status::Invalid(text + " is below the floor of 5m: a put of another " +
                           "client that deduplicated against a chunk deleted sooner would fail");
  if (*d > kMaxGraceSeconds)
    return Status::Invalid(text + " is more than the longest grace, " +
                           std::to_string(kMaxGraceSeconds) + " s (about 31 years)");
  return static_cast<double>(*d);
}

void PrintMaintain(const Globals& g, const MaintainResult& r) {
  if (g.json) {
    PrintJson({{"segments_compacted", r.segments_compacted},
               {"segments_removed", r.segments_removed},
               {"chunks_moved", r.chunks_moved},
               {"bytes_moved", r.bytes_moved},
               {"bytes_released", r.bytes_released},
               {"chunks_resealed", r.chunks_resealed},
               {"finished", r.finished}});
    return;
  }
  std::printf(
      "maintain: %llu segment(s) removed (%llu compacted), %llu chunks (%s) moved, %s "
      "released, %llu chunks re-sealed by policy%s\n",
      (unsigned long long)r.segments_removed, (unsigned long long)r.segments_compacted,
      (unsigned long long)r.chunks_moved, HumanBytes(r.bytes_moved).c_str(),
      HumanBytes(r.bytes_released).c_str(), (unsigned long long)r.chunks_resealed,
      r.finished ? "" : "; stopped by a limit, run again to continue");
}

int CmdMaintain(const Globals& g, const MaintainArgs& a) {
  MaintainRequest req;
  req.live_threshold = a.threshold;
  if (!a.max_bytes.empty()) {
    auto b = ParseSize(a.max_bytes);
    if (!b.ok()) return Fail(b.status());
    req.max_bytes = *b;
  }
  if (a.max_seconds > 0) req.max_seconds = a.max_seconds;
  if (!a.grace.empty()) {
    auto grace = ParseGrace(a.grace);
    if (!grace.ok()) return Fail(grace.status());
    req.grace_seconds = *grace;
  }
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("maintain", !g.quiet);
  req.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Maintain(req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintMaintain(g, *r);
  return 0;
}

RunFn DefineMaintain(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<MaintainArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("--threshold", a->threshold, "compact segments less live than this (0.5)")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--max-bytes", a->max_bytes, "stop after moving this much (e.g. 512M)")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--grace", a->grace,
                 "store shared by several writers (rados:): delete chunks unreferenced for at "
                 "least this long (default 1h, at least 5m)")
      ->check(ValueCheck("DURATION", ParseGrace));
  return [a, &g = ctx.globals] { return CmdMaintain(g, *a); };
}

// ------------------------------------------------------------------ stat

json StatJson(const RepoStats& s) {
  json j = {{"objects", s.objects},
            {"versions", s.versions},
            {"manifests", s.manifests},
            {"vdisks", s.vdisks},
            {"vdisk_blocks", s.vdisk_blocks},
            {"logical_bytes", s.logical_bytes},
            {"unique_chunks", s.unique_chunks},
            {"unreferenced_chunks", s.unreferenced_chunks},
            {"delta_chunks", s.delta_chunks},
            {"delta_stored_bytes", s.delta_stored_bytes},
            {"delta_bases", s.delta_bases},
            {"unique_bytes", s.unique_bytes},
            {"stored_bytes", s.stored_bytes},
            {"segments", s.segments},
            {"segment_bytes", s.segment_bytes},
            {"disk_bytes", s.disk_bytes},
            {"used_bytes", s.used_bytes},
            {"free_extents", s.free_extents},
            {"free_bytes", s.free_bytes},
            {"largest_free_extent", s.largest_free_extent},
            {"reclaimable_bytes", s.reclaimable_bytes},
            {"fragmentation", s.fragmentation},
            {"dedup_ratio", s.dedup_ratio},
            {"compression_ratio", s.compression_ratio},
            {"total_ratio", s.total_ratio},
            {"store", s.store},
            {"encryption", s.encryption},
            {"protected", s.encryption != "none"},
            {"current_key_version", s.current_key_version},
            {"oldest_seal", s.oldest_seal},
            {"min_generation", s.min_generation},
            {"max_generation", s.max_generation},
            {"cache_capacity", s.cache.capacity},
            {"cache_bytes", s.cache.bytes},
            {"cache_entries", s.cache.entries},
            {"cache_hits", s.cache.hits},
            {"cache_misses", s.cache.misses},
            {"cache_hit_ratio", s.cache.hit_ratio},
            {"cache_insertions", s.cache.insertions},
            {"cache_evictions", s.cache.evictions},
            {"cache_declined", s.cache.declined}};
  json kv = json::object();
  for (const auto& [v, n] : s.chunks_by_key_version) kv[std::to_string(v)] = n;
  j["chunks_by_key_version"] = kv;
  return j;
}

// The store and, when encrypted, its key versions and seal ages.
void PrintStatEncryption(const RepoStats& s) {
  std::printf("store:               %s\n", s.store.c_str());
  std::printf("encryption:          %s\n", s.encryption.c_str());
  if (s.encryption == "none") {
    std::printf(
        "protection:          none: anyone who can read the files reads the data, and an edited\n"
        "                     config.json or users.json is not detected (docs/security.md)\n");
    return;
  }
  std::string kv;
  for (const auto& [v, n] : s.chunks_by_key_version)
    kv +=
        (kv.empty() ? "" : ", ") + std::string("v") + std::to_string(v) + ": " + std::to_string(n);
  std::printf("key version:         %u current; chunks by key version: %s\n", s.current_key_version,
              kv.empty() ? "none" : kv.c_str());
  if (s.oldest_seal)
    std::printf("oldest seal:         %s (re-sealed %u..%u times)\n",
                TimeString(s.oldest_seal * 1000000000ull).c_str(),
                s.min_generation ? s.min_generation - 1 : 0,
                s.max_generation ? s.max_generation - 1 : 0);
}

// Objects, bytes, chunks, segments, free space and ratios.
void PrintStatSpace(const RepoStats& s) {
  std::printf("objects:             %llu\n", (unsigned long long)s.objects);
  std::printf("versions:            %llu\n", (unsigned long long)s.versions);
  std::printf("vdisks:              %llu (%llu blocks in their own maps)\n",
              (unsigned long long)s.vdisks, (unsigned long long)s.vdisk_blocks);
  std::printf("logical bytes:       %s (%llu)\n", HumanBytes(s.logical_bytes).c_str(),
              (unsigned long long)s.logical_bytes);
  std::printf("unique chunks:       %llu (%s)\n", (unsigned long long)s.unique_chunks,
              HumanBytes(s.unique_bytes).c_str());
  std::printf("unreferenced chunks: %llu\n", (unsigned long long)s.unreferenced_chunks);
  std::printf("delta chunks:        %llu (%s stored), against %llu base chunks\n",
              (unsigned long long)s.delta_chunks, HumanBytes(s.delta_stored_bytes).c_str(),
              (unsigned long long)s.delta_bases);
  std::printf("stored bytes:        %s (%llu)\n", HumanBytes(s.stored_bytes).c_str(),
              (unsigned long long)s.stored_bytes);
  std::printf("segments:            %llu, %s on disk\n", (unsigned long long)s.segments,
              HumanBytes(s.disk_bytes).c_str());
  std::printf("used / free extents: %s used, %llu free extents (%s, largest %s)\n",
              HumanBytes(s.used_bytes).c_str(), (unsigned long long)s.free_extents,
              HumanBytes(s.free_bytes).c_str(), HumanBytes(s.largest_free_extent).c_str());
  std::printf("fragmentation:       %.2f\n", s.fragmentation);
  std::printf(
      "reclaimable:         %s (free extents: reused by new chunks; `cairn maintain` "
      "trims and compacts them)\n",
      HumanBytes(s.reclaimable_bytes).c_str());
  std::printf("dedup ratio:         %.2fx\n", s.dedup_ratio);
  std::printf("compression ratio:   %.2fx\n", s.compression_ratio);
  std::printf("total ratio:         %.2fx (logical / stored)\n", s.total_ratio);
}

// The hot cache of this process (a fresh one: it has seen only what stat itself read).
void PrintStatCache(const RepoStats& s) {
  if (s.cache.capacity == 0) {
    std::printf("hot cache:           off\n");
    return;
  }
  std::printf(
      "hot cache:           %s, %s held in %llu chunks; %llu hits, %llu misses (hit ratio "
      "%.2f), %llu insertions, %llu evictions, %llu declined\n",
      HumanBytes(s.cache.capacity).c_str(), HumanBytes(s.cache.bytes).c_str(),
      (unsigned long long)s.cache.entries, (unsigned long long)s.cache.hits,
      (unsigned long long)s.cache.misses, s.cache.hit_ratio, (unsigned long long)s.cache.insertions,
      (unsigned long long)s.cache.evictions, (unsigned long long)s.cache.declined);
}

void PrintStat(const RepoStats& s) {
  PrintStatEncryption(s);
  PrintStatSpace(s);
  PrintStatCache(s);
}

// The system store's and every user's statistics ("" is the system store), each store opened
// read-only with the one password.
Result<std::vector<RepoStats>> AllStoreStats(const Globals& g, const std::string& repo_path) {
  OpenOptions o;
  o.threads = g.threads;
  o.cache_size = g.cache_size;
  CAIRN_ASSIGN_OR_RETURN(o.password, RepoPassword(g, repo_path));
  std::vector<std::string> users{""};
  auto listed = admin::ListUsers(repo_path, o.password);
  if (!listed.ok()) {
    SecureWipe(o.password);
    return listed.status();
  }
  for (const auto& u : *listed) users.push_back(u.name);
  std::vector<RepoStats> out;
  Status st;
  for (const auto& user : users) {
    o.user = user;
    auto repo = Repository::Open(repo_path, o);
    auto s = repo.ok() ? (*repo)->Stats() : Result<RepoStats>(repo.status());
    if (!s.ok()) {
      st = s.status().WithContext(user.empty() ? "system store" : "store of user " + user);
      break;
    }
    out.push_back(std::move(*s));
  }
  SecureWipe(o.password);
  if (!st.ok()) return st;
  return out;
}

// stat: the store --user or --system names; otherwise every store of the repository, the
// system store first (under --json its figures stay at the top level, and "stores" lists each
// store's).
int CmdStat(const Globals& g, const std::string& repo_path) {
  if (g.system || !g.user.empty()) {
    auto repo = OpenRepo(repo_path, false, g);
    if (!repo.ok()) return Fail(repo.status());
    auto s = (*repo)->Stats();
    if (!s.ok()) return Fail(s.status());
    if (g.json)
      PrintJson(StatJson(*s));
    else
      PrintStat(*s);
    return 0;
  }
  auto all = AllStoreStats(g, repo_path);
  if (!all.ok()) return Fail(all.status());
  if (g.json) {
    json j = StatJson(all->front());
    json stores = json::array();
    for (const auto& s : *all) stores.push_back(StatJson(s));
    j["stores"] = stores;
    PrintJson(j);
    return 0;
  }
  for (size_t i = 0; i < all->size(); i++) {
    if (i > 0) std::printf("\n");
    PrintStat((*all)[i]);
  }
  return 0;
}

RunFn DefineStat(CLI::App& cmd, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  cmd.add_option("REPO", *repo)->required();
  return [repo, &g = ctx.globals] { return CmdStat(g, *repo); };
}

// ------------------------------------------------------------------ check

struct CheckArgs {
  std::string repo;
  bool read_data = false;
};

// The password and the key files first: a problem there is an error (exit 1), not a finding
// about the stores. Sets `pw` (empty for an unencrypted repository); returns 0 when fine.
int CheckKeys(const Globals& g, const std::string& repo, std::string& pw) {
  auto p = RepoPassword(g, repo);
  if (!p.ok()) return Fail(p.status());
  pw = std::move(*p);
  if (pw.empty()) return 0;
  auto kv = admin::ListKeyVersions(repo, pw);
  return kv.ok() ? 0 : Fail(kv.status());
}

// The stores `check` covers: the one --user or --system names, else the system store and every
// user's ("" is the system store).
Result<std::vector<std::string>> StoresToCheck(const Globals& g, const std::string& repo,
                                               const std::string& pw) {
  if (g.system && !g.user.empty()) return Status::Invalid("--user and --system exclude each other");
  if (!g.user.empty()) return std::vector<std::string>{g.user};
  std::vector<std::string> stores{""};
  if (g.system) return stores;
  CAIRN_ASSIGN_OR_RETURN(auto users, admin::ListUsers(repo, pw));
  for (const auto& u : users) stores.push_back(u.name);
  return stores;
}

// One store's outcome: its report, or why it could not be checked (`opened` false).
struct StoreCheck {
  std::string user;  // "" = the system store
  bool opened = false;
  Status failure;  // why it could not be checked
  CheckReport report;
};

std::string StoreLabel(const std::string& user) {
  return user.empty() ? "system store" : "store of user " + user;
}

// Checks one store, read-only. A store that cannot be opened is a finding (it names why).
StoreCheck CheckOneStore(const Globals& g, const CheckArgs& a, const std::string& pw,
                         const std::string& user, ProgressBar& bar) {
  StoreCheck sc;
  sc.user = user;
  OpenOptions o;
  o.threads = g.threads;
  o.user = user;
  o.password = pw;
  auto repo = Repository::Open(a.repo, o);
  SecureWipe(o.password);
  if (!repo.ok()) {
    sc.failure = repo.status();
    sc.report.errors.push_back("could not check the " + StoreLabel(user) + ": " +
                               repo.status().message());
    return sc;
  }
  CheckOptions co;
  co.read_data = a.read_data;
  co.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Check(co);
  if (!r.ok()) {
    sc.failure = r.status();
    sc.report.errors.push_back("could not check the " + StoreLabel(user) + ": " +
                               r.status().message());
    return sc;
  }
  sc.opened = true;
  sc.report = std::move(*r);
  return sc;
}

// The totals over every store checked; a user store's findings name it.
CheckReport MergeChecks(const std::vector<StoreCheck>& all) {
  CheckReport t;
  for (const auto& sc : all) {
    const CheckReport& r = sc.report;
    t.chunks += r.chunks;
    t.manifests += r.manifests;
    t.versions += r.versions;
    t.chunks_read += r.chunks_read;
    t.bytes_read += r.bytes_read;
    const std::string pre = sc.user.empty() || !sc.opened ? "" : "user " + sc.user + ": ";
    for (const auto& e : r.errors) t.errors.push_back(pre + e);
    for (const auto& w : r.warnings) t.warnings.push_back(pre + w);
  }
  return t;
}

void PrintCheck(const Globals& g, const std::vector<StoreCheck>& all, bool read_data) {
  CheckReport r = MergeChecks(all);
  if (g.json) {
    json stores = json::array();
    for (const auto& sc : all)
      stores.push_back({{"store", sc.user.empty() ? "system" : "user:" + sc.user},
                        {"checked", sc.opened},
                        {"clean", sc.report.clean()},
                        {"errors", sc.report.errors.size()}});
    PrintJson({{"clean", r.clean()},
               {"chunks", r.chunks},
               {"manifests", r.manifests},
               {"versions", r.versions},
               {"chunks_read", r.chunks_read},
               {"bytes_read", r.bytes_read},
               {"errors", r.errors},
               {"warnings", r.warnings},
               {"stores", stores}});
    return;
  }
  for (const auto& w : r.warnings) std::printf("warning: %s\n", ShownInTerminal(w).c_str());
  for (const auto& e : r.errors) std::printf("error: %s\n", ShownInTerminal(e).c_str());
  std::string stores;
  for (const auto& sc : all)
    stores += (stores.empty() ? "" : ", ") + ShownInTerminal(sc.user.empty() ? "system" : sc.user) +
              (sc.opened ? "" : " (not checked)");
  std::printf(
      "%s: %llu chunks, %llu manifests, %llu versions checked%s in %zu store(s) (%s); %zu "
      "error(s)\n",
      r.clean() ? "clean" : "PROBLEMS FOUND", (unsigned long long)r.chunks,
      (unsigned long long)r.manifests, (unsigned long long)r.versions,
      read_data ? (", " + std::to_string(r.chunks_read) + " chunks read and verified").c_str() : "",
      all.size(), stores.c_str(), r.errors.size());
}

// Checks the system store and every user's (the password unlocks them all), or the one store
// --user/--system names. A store that cannot be opened is reported as not checked (exit 3).
int CmdCheck(const Globals& g, const CheckArgs& a) {
  std::string pw;
  if (int rc = CheckKeys(g, a.repo, pw); rc != 0) return rc;
  auto stores = StoresToCheck(g, a.repo, pw);
  if (!stores.ok()) {
    SecureWipe(pw);
    return Fail(stores.status());
  }
  ProgressBar bar("check", !g.quiet);
  std::vector<StoreCheck> all;
  for (const auto& user : *stores) {
    all.push_back(CheckOneStore(g, a, pw, user, bar));
    // The store asked for (or the system store) that fails for another reason than damage
    // found while opening it is an error of the command, as before (exit 1).
    const Status& f = all.back().failure;
    if (!f.ok() && f.code() != Code::kCorruption && (user.empty() || !g.user.empty())) {
      SecureWipe(pw);
      bar.Finish();
      return Fail(f);
    }
  }
  SecureWipe(pw);
  bar.Finish();
  PrintCheck(g, all, a.read_data);
  return MergeChecks(all).clean() ? 0 : 3;
}

RunFn DefineCheck(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<CheckArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_flag("--read-data", a->read_data, "read and verify every chunk");
  return [a, &g = ctx.globals] { return CmdCheck(g, *a); };
}

// ------------------------------------------------------------------ reencrypt

struct ReencryptArgs {
  std::string repo, older_than, max_bytes;
  double max_seconds = 0;
};

Result<ReencryptRequest> ReencryptRequestFrom(const ReencryptArgs& a) {
  ReencryptRequest req;
  if (!a.older_than.empty()) {
    auto d = ParseDuration(a.older_than);
    if (!d.ok()) return d.status().WithContext("--older-than");
    req.older_than_seconds = *d;
  }
  if (!a.max_bytes.empty()) {
    auto b = ParseSize(a.max_bytes);
    if (!b.ok()) return b.status().WithContext("--max-bytes");
    req.max_bytes = *b;
  }
  if (a.max_seconds > 0) req.max_seconds = a.max_seconds;
  return req;
}

void PrintReencrypt(const Globals& g, const ReencryptResult& r) {
  if (g.json) {
    PrintJson({{"chunks", r.chunks},
               {"bytes", r.bytes},
               {"rows", r.rows},
               {"remaining", r.remaining},
               {"finished", r.finished}});
  } else if (!g.quiet) {
    std::printf("reencrypt: %llu chunks (%s) and %llu metadata rows re-sealed%s\n",
                (unsigned long long)r.chunks, HumanBytes(r.bytes).c_str(),
                (unsigned long long)r.rows,
                r.finished ? ""
                           : ("; stopped by a limit with " + std::to_string(r.remaining) +
                              " chunks to go, run again to continue")
                                 .c_str());
  }
}

int CmdReencrypt(const Globals& g, const ReencryptArgs& a) {
  auto req = ReencryptRequestFrom(a);
  if (!req.ok()) return Fail(req.status());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("reencrypt", !g.quiet);
  req->progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Reencrypt(*req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintReencrypt(g, *r);
  return 0;
}

RunFn DefineReencrypt(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ReencryptArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("--older-than", a->older_than, "only chunks sealed longer ago (e.g. 90d)")
      ->check(ValueCheck("DURATION", ParseDuration));
  cmd.add_option("--max-bytes", a->max_bytes, "stop after re-sealing this much")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  return [a, &g = ctx.globals] { return CmdReencrypt(g, *a); };
}

// ------------------------------------------------------------------ repair

json RepairJson(const RepairReport& r) {
  json stores = json::array();
  for (const StoreRepair& s : r.stores) {
    json ranges = json::array();
    for (const LostRange& l : s.ranges)
      ranges.push_back({{"object", l.object},
                        {"version", l.version},
                        {"offset", l.offset},
                        {"length", l.length},
                        {"error", l.why}});
    stores.push_back({{"store", s.store},
                      {"actions", s.actions},
                      {"lost", s.lost},
                      {"lost_ranges", ranges},
                      {"lost_commits", s.lost_commits},
                      {"objects", s.objects},
                      {"versions", s.versions},
                      {"chunks_read", s.chunks_read}});
  }
  return {{"clean", r.clean()}, {"actions", r.actions}, {"stores", stores}};
}

void PrintRepair(const RepairReport& r) {
  for (const auto& a : r.actions) std::printf("repaired: %s\n", ShownInTerminal(a).c_str());
  for (const StoreRepair& s : r.stores) {
    const std::string store = ShownInTerminal(s.store);
    for (const auto& a : s.actions)
      std::printf("%s store: repaired: %s\n", store.c_str(), ShownInTerminal(a).c_str());
    for (const auto& l : s.lost)
      std::printf("%s store: LOST: %s\n", store.c_str(), ShownInTerminal(l).c_str());
    for (const LostRange& l : s.ranges)
      std::printf("%s store: LOST: %s@%llu bytes %llu..%llu (%llu bytes): %s\n", store.c_str(),
                  ShownInTerminal(l.object).c_str(), (unsigned long long)l.version,
                  (unsigned long long)l.offset, (unsigned long long)(l.offset + l.length),
                  (unsigned long long)l.length, ShownInTerminal(l.why).c_str());
    std::printf("%s store: %llu objects, %llu versions, %llu chunks read\n", store.c_str(),
                (unsigned long long)s.objects, (unsigned long long)s.versions,
                (unsigned long long)s.chunks_read);
  }
  std::printf("%s\n", r.clean() ? "nothing lost" : "DATA LOST: see the LOST lines above");
}

int CmdRepair(const Globals& g, const std::string& repo) {
  return WithPassword(g, repo, [&](const std::string& pw) {
    RepairOptions o;
    o.password = pw;
    if (!g.user.empty()) o.user = g.user;
    auto r = Repair(repo, o);
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      PrintJson(RepairJson(*r));
    } else {
      PrintRepair(*r);
    }
    return r->clean() ? 0 : 3;
  });
}

RunFn DefineRepair(CLI::App& cmd, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  cmd.add_option("REPO", *repo)->required();
  return [repo, &g = ctx.globals] { return CmdRepair(g, *repo); };
}

constexpr CommandSpec kMaintenanceCommands[] = {
    {"forget", "keep the newest N versions, remove the rest", DefineForget},
    {"maintain", "give space back: release, compact, trim", DefineMaintain},
    {"stat", "repository statistics", DefineStat},
    {"check", "verify refcounts, extents and (--read-data) data of every store", DefineCheck},
    {"reencrypt", "re-salt and re-seal chunks at rest", DefineReencrypt},
    {"repair", "put back the index or key ring from their copies, name every lost byte range",
     DefineRepair},
};

}  // namespace

std::span<const CommandSpec> MaintenanceCommands() { return kMaintenanceCommands; }

}  // namespace cairn::cli
