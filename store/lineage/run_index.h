// The index entries of a run record (tables `runs` and `runlinks`), shared
// by the writer and the index rebuild. Internal to the store.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "store/ids.h"
#include "store/lineage/lineage.h"

namespace tusk {

// (table, key, value) triples for run `id`.
std::vector<std::tuple<size_t, std::string, std::string>> RunIndexEntries(const ObjectId& id, const RunRecord& run);

}  // namespace tusk
