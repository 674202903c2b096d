// cairn: the command-line front end. Thin: parse flags, call the library, print results.
// Exit codes: 0 success, 1 error, 2 usage error, 3 check found problems.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "crypto/passphrase.h"
#include "crypto/secret.h"

namespace cairn::cli {
namespace {

using json = nlohmann::ordered_json;

json VersionJson(const VersionInfo& v) {
  return {{"version", v.version},          {"size", v.size},
          {"chunks", v.chunks},            {"created", TimeString(v.created_ns)},
          {"created_ns", v.created_ns},    {"content_hash", v.content_hash.Hex()},
          {"manifest", v.manifest_id.Hex()}};
}

int CmdInit(const std::string& repo, const std::string& avg, const std::string& min,
            const std::string& max, const std::string& hash, const std::string& compression,
            const std::string& segment_size, const std::string& encryption,
            const std::string& reseal_after, const Globals& g) {
  InitOptions o;
  auto a = ParseSize(avg), mi = ParseSize(min), ma = ParseSize(max);
  for (auto* r : {&a, &mi, &ma})
    if (!r->ok()) return Fail(r->status());
  if (*a > UINT32_MAX || *mi > UINT32_MAX || *ma > UINT32_MAX)
    return Fail(Status::Invalid("chunk sizes must be below 4G"));
  o.avg_chunk = static_cast<uint32_t>(*a);
  o.min_chunk = static_cast<uint32_t>(*mi);
  o.max_chunk = static_cast<uint32_t>(*ma);
  auto h = ParseHashAlgorithm(hash);
  if (!h.ok()) return Fail(h.status());
  o.hash = *h;
  auto c = ParseCompression(compression);
  if (!c.ok()) return Fail(c.status());
  o.compression = *c;
  auto seg = ParseSize(segment_size);
  if (!seg.ok()) return Fail(seg.status());
  o.segment_size = *seg;
  auto e = ParseEncryption(encryption);
  if (!e.ok()) return Fail(e.status());
  o.encryption = *e;
  if (!reseal_after.empty()) {
    auto d = ParseDuration(reseal_after);
    if (!d.ok()) return Fail(d.status().WithContext("--reseal-after"));
    o.reseal_after = *d;
  }
  if (encryption != "none") {
    auto pw = crypto::ReadPassphrase(g.password_file, /*confirm=*/true,
                                     "password for the new repository: ");
    if (!pw.ok()) return Fail(pw.status());
    o.password = std::move(*pw);
  }
  Status s = Repository::Init(repo, o);
  crypto::Cleanse(o.password);
  if (!s.ok()) return Fail(s);
  std::printf("created %s cairn repository at %s\n",
              encryption == "none" ? "an unencrypted" : "an encrypted", repo.c_str());
  return 0;
}

int CmdPut(const Globals& g, const std::string& repo_path, const std::string& name,
           const std::string& file) {
  int fd = 0;
  std::string label = "stdin";
  uint64_t size = 0;
  if (!file.empty() && file != "-") {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Status::FromErrno(errno, "cannot read " + file));
    struct stat st;
    if (::fstat(fd, &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return Fail(Status::Invalid("cannot read " + file + ": it is a directory"));
      }
      if (S_ISREG(st.st_mode)) size = st.st_size;
    }
    label = file;
  }
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  FdSource src(fd, label, size);
  ProgressBar bar("put " + name, !g.quiet);
  auto r = (*repo)->Put(name, src, [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  if (fd > 0) ::close(fd);
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    json j = {{"name", name},
              {"version", r->version},
              {"bytes", r->bytes},
              {"chunks", r->chunks},
              {"new_chunks", r->new_chunks},
              {"new_bytes", r->new_bytes},
              {"dedup_chunks", r->dedup_chunks},
              {"dedup_bytes", r->dedup_bytes},
              {"stored_bytes", r->stored_bytes},
              {"content_hash", r->content_hash.Hex()},
              {"manifest", r->manifest_id.Hex()}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s@%llu: %s in %llu chunks; new %llu chunks (%s, %s stored), deduplicated %llu "
                "chunks (%s)\n",
                name.c_str(), (unsigned long long)r->version, HumanBytes(r->bytes).c_str(),
                (unsigned long long)r->chunks, (unsigned long long)r->new_chunks,
                HumanBytes(r->new_bytes).c_str(), HumanBytes(r->stored_bytes).c_str(),
                (unsigned long long)r->dedup_chunks, HumanBytes(r->dedup_bytes).c_str());
  }
  return 0;
}

Result<Range> ParseRange(const std::string& s) {
  Range r;
  if (s.empty()) return r;
  auto colon = s.find(':');
  if (colon == std::string::npos) return Status::Invalid("bad range '" + s + "' (use OFFSET:LENGTH)");
  CAIRN_ASSIGN_OR_RETURN(r.offset, ParseSize(s.substr(0, colon)));
  if (colon + 1 < s.size()) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t len, ParseSize(s.substr(colon + 1)));
    r.length = len;
  }
  return r;
}

int CmdGet(const Globals& g, const std::string& repo_path, const std::string& ref,
           const std::string& out, const std::string& range_s) {
  auto parsed = ParseObjectRef(ref);
  if (!parsed.ok()) return Fail(parsed.status());
  auto range = ParseRange(range_s);
  if (!range.ok()) return Fail(range.status());
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto& [name, version] = parsed.value();
  ProgressBar bar("get " + ref, !g.quiet && !out.empty() && out != "-");
  auto progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  if (out.empty() || out == "-") {
    FdSink sink(1, "standard output");
    Status s = (*repo)->Get(name, version, *range, sink, progress);
    return s.ok() ? 0 : Fail(s);
  }
  // Write beside the target and rename, so a failed get never leaves a partial file behind.
  std::string tmp = out + ".cairn-partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(Status::FromErrno(errno, "cannot write " + out));
  FdSink sink(fd, out);
  Status s = (*repo)->Get(name, version, *range, sink, progress);
  bar.Finish();
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, "writing " + out);
  if (s.ok() && ::rename(tmp.c_str(), out.c_str()) != 0)
    s = Status::FromErrno(errno, "renaming " + tmp + " to " + out);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return Fail(s);
  }
  return 0;
}

int CmdLs(const Globals& g, const std::string& repo_path, const std::string& prefix) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto list = (*repo)->List(prefix);
  if (!list.ok()) return Fail(list.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& o : *list) {
      json j = {{"name", o.name}, {"versions", o.versions}, {"latest", VersionJson(o.latest)}};
      arr.push_back(j);
    }
    std::cout << arr.dump() << "\n";
    return 0;
  }
  for (const auto& o : *list)
    std::printf("%-40s %4llu versions  latest @%llu  %12s  %s\n", o.name.c_str(),
                (unsigned long long)o.versions, (unsigned long long)o.latest.version,
                HumanBytes(o.latest.size).c_str(), TimeString(o.latest.created_ns).c_str());
  return 0;
}

int CmdVersions(const Globals& g, const std::string& repo_path, const std::string& name) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto vs = (*repo)->Versions(name);
  if (!vs.ok()) return Fail(vs.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& v : *vs) arr.push_back(VersionJson(v));
    std::cout << arr.dump() << "\n";
    return 0;
  }
  for (const auto& v : *vs)
    std::printf("%s@%-6llu %12s  %6llu chunks  %s  %s\n", name.c_str(),
                (unsigned long long)v.version, HumanBytes(v.size).c_str(),
                (unsigned long long)v.chunks, TimeString(v.created_ns).c_str(),
                v.content_hash.ShortHex().c_str());
  return 0;
}

int CmdRm(const Globals& g, const std::string& repo_path, const std::string& ref) {
  auto parsed = ParseObjectRef(ref);
  if (!parsed.ok()) return Fail(parsed.status());
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  auto n = (*repo)->Remove(parsed->first, parsed->second);
  if (!n.ok()) return Fail(n.status());
  if (!g.quiet) std::printf("removed %llu version(s) of %s\n", (unsigned long long)*n, parsed->first.c_str());
  return 0;
}

int CmdForget(const Globals& g, const std::string& repo_path, const std::string& name,
              uint64_t keep_last) {
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  std::optional<std::string> target;
  if (!name.empty()) target = name;
  auto n = (*repo)->Forget(target, keep_last);
  if (!n.ok()) return Fail(n.status());
  if (g.json) std::cout << json({{"versions_removed", *n}}).dump() << "\n";
  else if (!g.quiet) std::printf("removed %llu version(s)\n", (unsigned long long)*n);
  return 0;
}

int CmdMaintain(const Globals& g, const std::string& repo_path, double threshold,
                const std::string& max_bytes, double max_seconds) {
  MaintainRequest req;
  req.live_threshold = threshold;
  if (!max_bytes.empty()) {
    auto b = ParseSize(max_bytes);
    if (!b.ok()) return Fail(b.status());
    req.max_bytes = *b;
  }
  if (max_seconds > 0) req.max_seconds = max_seconds;
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("maintain", !g.quiet);
  req.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Maintain(req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    std::cout << json({{"segments_compacted", r->segments_compacted},
                       {"segments_removed", r->segments_removed},
                       {"chunks_moved", r->chunks_moved},
                       {"bytes_moved", r->bytes_moved},
                       {"bytes_released", r->bytes_released},
                       {"chunks_resealed", r->chunks_resealed},
                       {"finished", r->finished}})
                     .dump()
              << "\n";
  } else {
    std::printf("maintain: %llu segment(s) removed (%llu compacted), %llu chunks (%s) moved, %s "
                "released, %llu chunks re-sealed by policy%s\n",
                (unsigned long long)r->segments_removed, (unsigned long long)r->segments_compacted,
                (unsigned long long)r->chunks_moved, HumanBytes(r->bytes_moved).c_str(),
                HumanBytes(r->bytes_released).c_str(), (unsigned long long)r->chunks_resealed,
                r->finished ? "" : "; stopped by a limit, run again to continue");
  }
  return 0;
}

int CmdStat(const Globals& g, const std::string& repo_path) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto s = (*repo)->Stats();
  if (!s.ok()) return Fail(s.status());
  if (g.json) {
    json j = {{"objects", s->objects},
              {"versions", s->versions},
              {"manifests", s->manifests},
              {"logical_bytes", s->logical_bytes},
              {"unique_chunks", s->unique_chunks},
              {"unreferenced_chunks", s->unreferenced_chunks},
              {"unique_bytes", s->unique_bytes},
              {"stored_bytes", s->stored_bytes},
              {"segments", s->segments},
              {"segment_bytes", s->segment_bytes},
              {"disk_bytes", s->disk_bytes},
              {"used_bytes", s->used_bytes},
              {"free_extents", s->free_extents},
              {"free_bytes", s->free_bytes},
              {"largest_free_extent", s->largest_free_extent},
              {"reclaimable_bytes", s->reclaimable_bytes},
              {"fragmentation", s->fragmentation},
              {"dedup_ratio", s->dedup_ratio},
              {"compression_ratio", s->compression_ratio},
              {"total_ratio", s->total_ratio},
              {"store", s->store},
              {"encryption", s->encryption},
              {"current_key_version", s->current_key_version},
              {"oldest_seal", s->oldest_seal},
              {"min_generation", s->min_generation},
              {"max_generation", s->max_generation}};
    json kv = json::object();
    for (const auto& [v, n] : s->chunks_by_key_version) kv[std::to_string(v)] = n;
    j["chunks_by_key_version"] = kv;
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("store:               %s\n", s->store.c_str());
  std::printf("encryption:          %s\n", s->encryption.c_str());
  if (s->encryption != "none") {
    std::string kv;
    for (const auto& [v, n] : s->chunks_by_key_version)
      kv += (kv.empty() ? "" : ", ") + std::string("v") + std::to_string(v) + ": " + std::to_string(n);
    std::printf("key version:         %u current; chunks by key version: %s\n",
                s->current_key_version, kv.empty() ? "none" : kv.c_str());
    if (s->oldest_seal)
      std::printf("oldest seal:         %s (re-sealed %u..%u times)\n",
                  TimeString(s->oldest_seal * 1000000000ull).c_str(),
                  s->min_generation ? s->min_generation - 1 : 0,
                  s->max_generation ? s->max_generation - 1 : 0);
  }
  std::printf("objects:             %llu\n", (unsigned long long)s->objects);
  std::printf("versions:            %llu\n", (unsigned long long)s->versions);
  std::printf("logical bytes:       %s (%llu)\n", HumanBytes(s->logical_bytes).c_str(),
              (unsigned long long)s->logical_bytes);
  std::printf("unique chunks:       %llu (%s)\n", (unsigned long long)s->unique_chunks,
              HumanBytes(s->unique_bytes).c_str());
  std::printf("unreferenced chunks: %llu\n", (unsigned long long)s->unreferenced_chunks);
  std::printf("stored bytes:        %s (%llu)\n", HumanBytes(s->stored_bytes).c_str(),
              (unsigned long long)s->stored_bytes);
  std::printf("segments:            %llu, %s on disk\n", (unsigned long long)s->segments,
              HumanBytes(s->disk_bytes).c_str());
  std::printf("used / free extents: %s used, %llu free extents (%s, largest %s)\n",
              HumanBytes(s->used_bytes).c_str(), (unsigned long long)s->free_extents,
              HumanBytes(s->free_bytes).c_str(), HumanBytes(s->largest_free_extent).c_str());
  std::printf("fragmentation:       %.2f\n", s->fragmentation);
  std::printf("reclaimable:         %s (free extents: reused by new chunks; `cairn maintain` "
              "trims and compacts them)\n",
              HumanBytes(s->reclaimable_bytes).c_str());
  std::printf("dedup ratio:         %.2fx\n", s->dedup_ratio);
  std::printf("compression ratio:   %.2fx\n", s->compression_ratio);
  std::printf("total ratio:         %.2fx (logical / stored)\n", s->total_ratio);
  return 0;
}

int CmdCheck(const Globals& g, const std::string& repo_path, bool read_data) {
  {
    // The password and the key files first: a problem there is an error (exit 1), not a
    // finding about the store.
    auto pw = RepoPassword(g, repo_path);
    if (!pw.ok()) return Fail(pw.status());
    if (!pw->empty()) {
      auto kv = admin::ListKeyVersions(repo_path, *pw);
      crypto::Cleanse(*pw);
      if (!kv.ok()) return Fail(kv.status());
    }
  }
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok() && repo.status().code() == Code::kCorruption) {
    // The store is damaged where opening already reads (segment or free-extent rows): that is
    // a finding of check, reported as one.
    if (g.json)
      std::cout << json({{"clean", false}, {"errors", {repo.status().message()}}}).dump() << "\n";
    else
      std::printf("error: %s\nPROBLEMS FOUND: the store cannot be opened; 1 error(s)\n",
                  repo.status().message().c_str());
    return 3;
  }
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("check", !g.quiet);
  CheckOptions o;
  o.read_data = read_data;
  o.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Check(o);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    json j = {{"clean", r->clean()},          {"chunks", r->chunks},
              {"manifests", r->manifests},    {"versions", r->versions},
              {"chunks_read", r->chunks_read}, {"bytes_read", r->bytes_read},
              {"errors", r->errors},          {"warnings", r->warnings}};
    std::cout << j.dump() << "\n";
  } else {
    for (const auto& w : r->warnings) std::printf("warning: %s\n", w.c_str());
    for (const auto& e : r->errors) std::printf("error: %s\n", e.c_str());
    std::printf("%s: %llu chunks, %llu manifests, %llu versions checked%s; %zu error(s)\n",
                r->clean() ? "clean" : "PROBLEMS FOUND", (unsigned long long)r->chunks,
                (unsigned long long)r->manifests, (unsigned long long)r->versions,
                read_data ? (", " + std::to_string(r->chunks_read) + " chunks read and verified").c_str()
                          : "",
                r->errors.size());
  }
  return r->clean() ? 0 : 3;
}

int CmdReencrypt(const Globals& g, const std::string& repo_path, const std::string& older_than,
                 const std::string& max_bytes, double max_seconds) {
  ReencryptRequest req;
  if (!older_than.empty()) {
    auto d = ParseDuration(older_than);
    if (!d.ok()) return Fail(d.status().WithContext("--older-than"));
    req.older_than_seconds = *d;
  }
  if (!max_bytes.empty()) {
    auto b = ParseSize(max_bytes);
    if (!b.ok()) return Fail(b.status().WithContext("--max-bytes"));
    req.max_bytes = *b;
  }
  if (max_seconds > 0) req.max_seconds = max_seconds;
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("reencrypt", !g.quiet);
  req.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Reencrypt(req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    std::cout << json({{"chunks", r->chunks}, {"bytes", r->bytes}, {"rows", r->rows},
                       {"remaining", r->remaining}, {"finished", r->finished}})
                     .dump()
              << "\n";
  } else if (!g.quiet) {
    std::printf("reencrypt: %llu chunks (%s) and %llu metadata rows re-sealed%s\n",
                (unsigned long long)r->chunks, HumanBytes(r->bytes).c_str(),
                (unsigned long long)r->rows,
                r->finished ? "" : ("; stopped by a limit with " + std::to_string(r->remaining) +
                                    " chunks to go, run again to continue").c_str());
  }
  return 0;
}

int CmdCat(const Globals& g, const std::string& repo_path, const std::string& what,
           const std::string& id_hex) {
  auto id = Digest::FromHex(id_hex);
  if (!id) return Fail(Status::Invalid("bad id '" + id_hex + "': expected 64 hex digits"));
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  if (what == "chunk") {
    FdSink sink(1, "standard output");
    Status s = (*repo)->CatChunk(*id, sink);
    return s.ok() ? 0 : Fail(s);
  }
  auto m = (*repo)->CatManifest(*id);
  if (!m.ok()) return Fail(m.status());
  json arr = json::array();
  uint64_t off = 0;
  for (const auto& [cid, len] : *m) {
    arr.push_back({{"chunk", cid.Hex()}, {"offset", off}, {"length", len}});
    off += len;
  }
  std::cout << arr.dump(g.json ? -1 : 1) << "\n";
  return 0;
}

}  // namespace
}  // namespace cairn::cli

int main(int argc, char** argv) {
  using namespace cairn::cli;
  // The pipelines allocate and free chunk-sized buffers (up to a few MiB) all the time; keep
  // them in the heap instead of a fresh mmap (and page faults) for each. Memory stays bounded by
  // the pipelines' in-flight limits.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  CLI::App app{"cairn: deduplicating, compressed, content-addressed storage"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand: `cairn stat --json REPO`
  Globals g;
  app.add_flag("--json", g.json, "machine-readable output (put, ls, versions, stat, check)");
  app.add_flag("-q,--quiet", g.quiet, "no progress bar");
  app.add_option("--threads", g.threads, "worker threads (default: number of cores)");
  app.add_option("--user", g.user, "work in this user's store");
  app.add_flag("--system", g.system, "work in the system store (the default)");
  // The password never comes from the command line: CAIRN_PASSWORD, this file, or a prompt.
  app.add_option("--password-file", g.password_file, "read the repository password from FILE");
  std::string repo, name, file, out, range, ref, prefix;
  std::string avg = "1M", min = "256K", max = "4M", hash = "blake3", compression = "zstd:3";
  bool read_data = false;
  int rc = 0;

  auto* init = app.add_subcommand("init", "create a repository");
  init->add_option("REPO", repo, "repository directory")->required();
  init->add_option("--avg-chunk", avg, "average chunk size (default 1M)");
  init->add_option("--min-chunk", min, "minimum chunk size (default 256K)");
  init->add_option("--max-chunk", max, "maximum chunk size (default 4M)");
  init->add_option("--hash", hash, "chunk hash: blake3 (default) or sha256");
  init->add_option("--compression", compression, "zstd:LEVEL (default zstd:3) or none");
  std::string segment_size = "1G";
  init->add_option("--segment-size", segment_size, "segment file size (default 1G)");
  std::string encryption = "aes-256-gcm", reseal_after;
  init->add_option("--encryption", encryption, "aes-256-gcm (default) or none");
  init->add_option("--reseal-after", reseal_after,
                   "policy: maintain re-seals chunks older than this (e.g. 90d)");
  init->callback([&] {
    rc = CmdInit(repo, avg, min, max, hash, compression, segment_size, encryption, reseal_after, g);
  });

  auto* put = app.add_subcommand("put", "store a new version of an object from FILE or stdin");
  put->add_option("REPO", repo)->required();
  put->add_option("NAME", name, "object name")->required();
  put->add_option("FILE", file, "input file, or - for stdin (default)");
  put->callback([&] { rc = CmdPut(g, repo, name, file); });

  auto* get = app.add_subcommand("get", "restore an object (NAME or NAME@VERSION)");
  get->add_option("REPO", repo)->required();
  get->add_option("REF", ref, "NAME or NAME@VERSION")->required();
  get->add_option("-o,--output", out, "output file, or - for stdout (default)");
  get->add_option("--range", range, "OFFSET:LENGTH, bytes");
  get->callback([&] { rc = CmdGet(g, repo, ref, out, range); });

  auto* ls = app.add_subcommand("ls", "list objects");
  ls->add_option("REPO", repo)->required();
  ls->add_option("PREFIX", prefix, "only names starting with PREFIX");
  ls->callback([&] { rc = CmdLs(g, repo, prefix); });

  auto* versions = app.add_subcommand("versions", "list the versions of an object");
  versions->add_option("REPO", repo)->required();
  versions->add_option("NAME", name)->required();
  versions->callback([&] { rc = CmdVersions(g, repo, name); });

  auto* rm = app.add_subcommand("rm", "remove an object version (NAME@VERSION) or every version");
  rm->add_option("REPO", repo)->required();
  rm->add_option("REF", ref, "NAME or NAME@VERSION")->required();
  rm->callback([&] { rc = CmdRm(g, repo, ref); });

  uint64_t keep_last = 0;
  auto* forget = app.add_subcommand("forget", "keep the newest N versions, remove the rest");
  forget->add_option("REPO", repo)->required();
  forget->add_option("NAME", name, "object (default: every object)");
  forget->add_option("--keep-last", keep_last, "versions to keep per object")->required();
  forget->callback([&] { rc = CmdForget(g, repo, name, keep_last); });

  double threshold = 0.5, max_seconds = 0;
  std::string max_bytes;
  auto* maintain = app.add_subcommand("maintain", "give space back: release, compact, trim");
  maintain->add_option("REPO", repo)->required();
  maintain->add_option("--threshold", threshold, "compact segments less live than this (0.5)");
  maintain->add_option("--max-bytes", max_bytes, "stop after moving this much (e.g. 512M)");
  maintain->add_option("--max-seconds", max_seconds, "stop after this many seconds");
  maintain->callback([&] { rc = CmdMaintain(g, repo, threshold, max_bytes, max_seconds); });

  auto* stat = app.add_subcommand("stat", "repository statistics");
  stat->add_option("REPO", repo)->required();
  stat->callback([&] { rc = CmdStat(g, repo); });

  auto* check = app.add_subcommand("check", "verify refcounts, extents and (--read-data) data");
  check->add_option("REPO", repo)->required();
  check->add_flag("--read-data", read_data, "read and verify every chunk");
  check->callback([&] { rc = CmdCheck(g, repo, read_data); });

  std::string older_than, reseal_max_bytes;
  double reseal_max_seconds = 0;
  auto* reencrypt = app.add_subcommand("reencrypt", "re-salt and re-seal chunks at rest");
  reencrypt->add_option("REPO", repo)->required();
  reencrypt->add_option("--older-than", older_than, "only chunks sealed longer ago (e.g. 90d)");
  reencrypt->add_option("--max-bytes", reseal_max_bytes, "stop after re-sealing this much");
  reencrypt->add_option("--max-seconds", reseal_max_seconds, "stop after this many seconds");
  reencrypt->callback([&] {
    rc = CmdReencrypt(g, repo, older_than, reseal_max_bytes, reseal_max_seconds);
  });

  std::string cat_what, cat_id;
  auto* cat = app.add_subcommand("cat", "print a chunk (raw) or a manifest (JSON) by id");
  cat->add_option("REPO", repo)->required();
  cat->add_option("WHAT", cat_what, "chunk or manifest")
      ->required()
      ->check(CLI::IsMember({"chunk", "manifest"}));
  cat->add_option("ID", cat_id, "64 hex digits")->required();
  cat->callback([&] { rc = CmdCat(g, repo, cat_what, cat_id); });

  AddAdminCommands(app, g, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return rc;
}
