// CRC-32C (Castagnoli), the cheap checksum verified on every pack record read.
// Uses the SSE4.2 instruction where the CPU has it (three independent streams
// at once, ~3x one stream's throughput), a table otherwise.
// Thread-safety: pure function.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tusk {
uint32_t Crc32c(const void* data, size_t len, uint32_t crc = 0);
// The table-driven version, for tests to compare against.
uint32_t Crc32cPortable(const void* data, size_t len, uint32_t crc = 0);
}  // namespace tusk
