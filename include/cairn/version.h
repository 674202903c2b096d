// Which cairn this is: the library version, and the repository format version it writes and
// the range it reads. `cairn --version` prints both.
#pragma once

namespace cairn {

// Library version (semantic versioning: a major bump breaks the public API in include/cairn/).
inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;
inline constexpr const char* kVersionString = "0.1.0";

// Repository format (docs/format.md): new repositories are written in format 6 (packed vdisk
// block groups; 5 added block groups, 4 delta chunks); formats 1 to 6 are opened (a format-2
// repository is upgraded to 3 by its first writable open). A repository of a newer format is
// refused with kUnsupported.
inline constexpr int kRepositoryFormatVersion = 6;
inline constexpr int kRepositoryFormatMinVersion = 1;

}  // namespace cairn
