// Parallel cutting (parallel_cut.h): speculative chains on helper threads, joined to the serial
// chain where the two first share a cut.
#include "objects/parallel_cut.h"

#include <algorithm>
#include <future>

namespace cairn {
namespace {

// The chain from `from`: appends each cut to `out` until one is at or past `stop`. Returns
// false when NextCut could not decide (more data needed) before that.
bool Chain(const Chunker& chunker, std::span<const uint8_t> data, bool eof, size_t from,
           size_t stop, std::vector<size_t>& out) {
  size_t pos = from;
  while (pos < stop) {
    const size_t cut = chunker.NextCut(data.subspan(pos), eof);
    if (cut == 0) return false;
    pos += cut;
    out.push_back(pos);
  }
  return true;
}

// A part's speculative chain: its cuts, and whether it reached the part's end (false: it
// stopped where more data was needed).
struct Speculative {
  std::vector<size_t> cuts;
  bool complete = true;
};

}  // namespace

std::vector<size_t> FindCutsFrom(const Chunker& chunker, std::span<const uint8_t> data, bool eof,
                                 ThreadPool* helpers, const std::vector<size_t>& starts) {
  const size_t n = data.size();
  const size_t parts = starts.size();
  auto end_of = [&](size_t k) { return k + 1 < parts ? starts[k + 1] : n; };
  std::vector<size_t> out;
  if (!helpers || helpers->size() == 0 || parts < 2) {
    Chain(chunker, data, eof, 0, n, out);
    return out;
  }
  std::vector<std::future<Speculative>> spec;
  WaitAllOnExit wait(spec);  // an early return leaves no helper reading `data`
  for (size_t k = 1; k < parts; k++)
    spec.push_back(helpers->Submit([&chunker, data, eof, from = starts[k], stop = end_of(k)] {
      Speculative s;
      s.complete = Chain(chunker, data, eof, from, stop, s.cuts);
      return s;
    }));
  if (!Chain(chunker, data, eof, 0, end_of(0), out)) return out;
  size_t pos = out.empty() ? 0 : out.back();
  for (size_t k = 1; k < parts; k++) {
    const Speculative s = spec[k - 1].get();
    const size_t stop = end_of(k);
    // The serial chain walks on until it lands on a cut of the speculative one (or on the
    // part's start, where that chain begins), or crosses the part without meeting it; it can
    // also land on one as it crosses the part's end.
    bool met = pos == starts[k];
    size_t j = 0;
    while (!met) {
      while (j < s.cuts.size() && s.cuts[j] < pos) j++;
      if (j < s.cuts.size() && s.cuts[j] == pos) {
        j++;
        met = true;
        break;
      }
      if (pos >= stop) break;
      const size_t cut = chunker.NextCut(data.subspan(pos), eof);
      if (cut == 0) return out;  // undecided: the rest needs more data
      pos += cut;
      out.push_back(pos);
    }
    if (!met) continue;
    out.insert(out.end(), s.cuts.begin() + static_cast<std::ptrdiff_t>(j), s.cuts.end());
    if (!s.complete) return out;
    if (!out.empty()) pos = out.back();
  }
  return out;
}

std::vector<size_t> FindCuts(const Chunker& chunker, std::span<const uint8_t> data, bool eof,
                             ThreadPool* helpers, size_t parts) {
  const size_t threads = helpers ? helpers->size() + 1 : 1;
  const size_t min_part = 2 * chunker.max_size();
  const size_t p = std::max<size_t>(1, std::min({parts, threads, data.size() / min_part}));
  std::vector<size_t> starts;
  for (size_t k = 0; k < p; k++) starts.push_back(k * (data.size() / p));
  return FindCutsFrom(chunker, data, eof, p > 1 ? helpers : nullptr, starts);
}

}  // namespace cairn
