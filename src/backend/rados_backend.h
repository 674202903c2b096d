// Segments on Ceph RADOS: segment N of a directory is the object "KEY/seg.<8 hex digits>" (KEY is
// the directory's key, rados_connection.h), listed in the directory object's omap so that List is
// one omap read. Normally reached through RadosStorage::OpenSegments (rados_storage.h).
//
// Semantics beyond backend.h, and why:
//   - Write copies the bytes and returns at once: contiguous writes to a segment are gathered into
//     one request of up to `coalesce_bytes` and sent with aio, up to `max_inflight` requests at a
//     time (Write waits for the oldest when more would be in flight). A failed request makes
//     every later Sync of its segment fail (the first error), whichever writer calls it: two
//     transactions writing one segment cannot be told apart, and a Sync that succeeded after
//     losing someone's bytes would let a commit point at them. The error is cleared when the
//     segment is truncated at or below the failed bytes, or removed (or by a new handle). Read,
//     Size, Truncate, Discard and Remove first wait for the writes they depend on, so a thread
//     always reads what it wrote.
//   - Sync waits for every write to the segment sent before it; a RADOS write is durable on all
//     replicas when it completes, so there is nothing more to flush.
//   - A new segment is entered in the directory's omap before its first byte is sent: a crash in
//     between leaves a listed segment that does not exist (Size says NotFound, Remove clears it),
//     never an unlisted object that nothing would delete.
//   - Discard writes zeros over the range (RADOS "zero"; BlueStore releases the allocation units
//     it covers whole). A range reaching the end of the object keeps its last byte as a written
//     zero, because RADOS turns a zero that reaches the end into a truncate and the segment must
//     keep its length.
//   - AllocatedBytes is the sum of the segments' sizes: RADOS does not report allocated blocks
//     per object.
//   - MaxSegmentSize is `max_segment_size`, or else the cluster's osd_max_object_size.
//   - WillNeed queues the range and sends aio reads for it, up to `readahead_bytes` ahead of the
//     reads, in requests of `readahead_request` bytes (a restore on one client otherwise had only
//     as many 1 MiB reads in flight as pool threads: 0.26x of `rados bench` seq). A Read that
//     falls within requested bytes waits for them and copies them out; a request is dropped once
//     a read reaches its end, or when no read used it for a while. A range with writes not yet
//     completed is not read ahead, and a Write, Truncate, Discard or Remove drops what overlaps
//     it, so a read never sees bytes older than the writes before it. A failed or short request
//     is simply not used: the Read then reads itself and reports the error. Bytes are not used
//     more than 2 s after they were asked for, and Forget drops a range (another client may
//     have reused an extent since: a chunk that fails verification is read again after
//     Forget, ChunkStore::ReadRetrying). WillNeedGap is 0:
//     only adjacent extents are hinted as one range, since every byte of a gap would cross the
//     network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "backend/rados_connection.h"

namespace cairn {

struct RadosBackendOptions {
  // aio write requests in flight per backend, over all its segments.
  size_t max_inflight = 16;
  // Contiguous writes to one segment are sent as one request once they reach this many bytes
  // (or at the next Sync, read of the range, Size, Truncate, Discard or Remove).
  size_t coalesce_bytes = 4u << 20;
  // Overrides the cluster's osd_max_object_size (bytes).
  std::optional<uint64_t> max_segment_size;
  // Read-ahead (WillNeed): at most this many bytes requested ahead of the reads, held until
  // read (0: WillNeed is ignored), in aio reads of up to `readahead_request` bytes each.
  size_t readahead_bytes = 32u << 20;
  size_t readahead_request = 4u << 20;
};

// The segments of the directory whose key is `dir_key`; its directory object must exist. A backend
// that is not `writable` refuses Write, Truncate, Discard and Remove with InvalidArgument.
Result<std::unique_ptr<Backend>> OpenRadosBackend(std::shared_ptr<RadosConnection> conn,
                                                  std::string dir_key, bool writable,
                                                  const RadosBackendOptions& opts);

}  // namespace cairn
