// The simulator uses the collectors' UniqueFd (collectors/unique_fd.h).
#pragma once

#include "collectors/unique_fd.h"

namespace facility::sim {
using facility::UniqueFd;
}  // namespace facility::sim
