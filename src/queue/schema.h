// wisp/queue/schema.h
//
// The queue's tables, created and migrated by wisp (docs/design/queue.md
// lists them for psql users). Each migration runs once, in order, under an
// advisory lock so that workers starting together do not race.
#pragma once

#include "queue/db.h"

namespace wisp::queue {

// The schema version this wisp writes.
inline constexpr int kSchemaVersion = 1;

// Brings the database to kSchemaVersion; throws wisp::Error if it holds a
// newer schema than this wisp knows.
void migrate(Db& db);

}  // namespace wisp::queue
