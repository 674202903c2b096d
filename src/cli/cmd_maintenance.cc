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
};

int CmdForget(const Globals& g, const ForgetArgs& a) {
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
  cmd.add_option("--keep-last", a->keep_last, "versions to keep per object")->required();
  return [a, &g = ctx.globals] { return CmdForget(g, *a); };
}

// ------------------------------------------------------------------ maintain

struct MaintainArgs {
  std::string repo, max_bytes;
  double threshold = 0.5, max_seconds = 0;
};

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
  cmd.add_option("--threshold", a->threshold, "compact segments less live than this (0.5)");
  cmd.add_option("--max-bytes", a->max_bytes, "stop after moving this much (e.g. 512M)");
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds");
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
            {"cache_capacity", s.cache_capacity},
            {"cache_bytes", s.cache_bytes},
            {"cache_entries", s.cache_entries},
            {"cache_hits", s.cache_hits},
            {"cache_misses", s.cache_misses},
            {"cache_hit_ratio", s.cache_hit_ratio},
            {"cache_insertions", s.cache_insertions},
            {"cache_evictions", s.cache_evictions}};
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
  if (s.cache_capacity == 0) {
    std::printf("hot cache:           off\n");
    return;
  }
  std::printf(
      "hot cache:           %s, %s held in %llu chunks; %llu hits, %llu misses (hit ratio "
      "%.2f), %llu insertions, %llu evictions\n",
      HumanBytes(s.cache_capacity).c_str(), HumanBytes(s.cache_bytes).c_str(),
      (unsigned long long)s.cache_entries, (unsigned long long)s.cache_hits,
      (unsigned long long)s.cache_misses, s.cache_hit_ratio, (unsigned long long)s.cache_insertions,
      (unsigned long long)s.cache_evictions);
}

int CmdStat(const Globals& g, const std::string& repo_path) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto s = (*repo)->Stats();
  if (!s.ok()) return Fail(s.status());
  if (g.json) {
    PrintJson(StatJson(*s));
    return 0;
  }
  PrintStatEncryption(*s);
  PrintStatSpace(*s);
  PrintStatCache(*s);
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
// about the store. Returns 0 when they are fine.
int CheckKeys(const Globals& g, const std::string& repo) {
  auto pw = RepoPassword(g, repo);
  if (!pw.ok()) return Fail(pw.status());
  if (pw->empty()) return 0;
  auto kv = admin::ListKeyVersions(repo, *pw);
  SecureWipe(*pw);
  return kv.ok() ? 0 : Fail(kv.status());
}

void PrintCheck(const Globals& g, const CheckReport& r, bool read_data) {
  if (g.json) {
    PrintJson({{"clean", r.clean()},
               {"chunks", r.chunks},
               {"manifests", r.manifests},
               {"versions", r.versions},
               {"chunks_read", r.chunks_read},
               {"bytes_read", r.bytes_read},
               {"errors", r.errors},
               {"warnings", r.warnings}});
    return;
  }
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& e : r.errors) std::printf("error: %s\n", e.c_str());
  std::printf(
      "%s: %llu chunks, %llu manifests, %llu versions checked%s; %zu error(s)\n",
      r.clean() ? "clean" : "PROBLEMS FOUND", (unsigned long long)r.chunks,
      (unsigned long long)r.manifests, (unsigned long long)r.versions,
      read_data ? (", " + std::to_string(r.chunks_read) + " chunks read and verified").c_str() : "",
      r.errors.size());
}

int CmdCheck(const Globals& g, const CheckArgs& a) {
  if (int rc = CheckKeys(g, a.repo); rc != 0) return rc;
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok() && repo.status().code() == Code::kCorruption) {
    // The store is damaged where opening already reads (segment or free-extent rows): that is
    // a finding of check, reported as one.
    if (g.json)
      PrintJson({{"clean", false}, {"errors", {repo.status().message()}}});
    else
      std::printf("error: %s\nPROBLEMS FOUND: the store cannot be opened; 1 error(s)\n",
                  repo.status().message().c_str());
    return 3;
  }
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("check", !g.quiet);
  CheckOptions o;
  o.read_data = a.read_data;
  o.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Check(o);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintCheck(g, *r, a.read_data);
  return r->clean() ? 0 : 3;
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
  cmd.add_option("--older-than", a->older_than, "only chunks sealed longer ago (e.g. 90d)");
  cmd.add_option("--max-bytes", a->max_bytes, "stop after re-sealing this much");
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds");
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
  for (const auto& a : r.actions) std::printf("repaired: %s\n", a.c_str());
  for (const StoreRepair& s : r.stores) {
    for (const auto& a : s.actions)
      std::printf("%s store: repaired: %s\n", s.store.c_str(), a.c_str());
    for (const auto& l : s.lost) std::printf("%s store: LOST: %s\n", s.store.c_str(), l.c_str());
    for (const LostRange& l : s.ranges)
      std::printf("%s store: LOST: %s@%llu bytes %llu..%llu (%llu bytes): %s\n", s.store.c_str(),
                  l.object.c_str(), (unsigned long long)l.version, (unsigned long long)l.offset,
                  (unsigned long long)(l.offset + l.length), (unsigned long long)l.length,
                  l.why.c_str());
    std::printf("%s store: %llu objects, %llu versions, %llu chunks read\n", s.store.c_str(),
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
    {"check", "verify refcounts, extents and (--read-data) data", DefineCheck},
    {"reencrypt", "re-salt and re-seal chunks at rest", DefineReencrypt},
    {"repair", "put back the index or key ring from their copies, name every lost byte range",
     DefineRepair},
};

}  // namespace

std::span<const CommandSpec> MaintenanceCommands() { return kMaintenanceCommands; }

}  // namespace cairn::cli
