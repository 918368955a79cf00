// CRC-32C (Castagnoli), the cheap checksum verified on every pack record read.
// Uses the SSE4.2 instruction where the CPU has it, a table otherwise.
// Thread-safety: pure function.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tusk {
uint32_t Crc32c(const void* data, size_t len, uint32_t crc = 0);
}
