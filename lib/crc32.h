/*
 * CRC-32 (IEEE 802.3, zlib's crc32()) for short records, slicing by 8.
 * zlib's crc32() costs ~25 ns on the 20-byte modseq records, most of it
 * per call, which made checking a 100,000-record log 2-3 ms of every
 * SELECT.  Same values as zlib: crc32_short(crc, p, n) == crc32(crc, p, n).
 */
#ifndef MK_CRC32_H
#define MK_CRC32_H
#include <stddef.h>
#include <stdint.h>

uint32_t crc32_short(uint32_t crc, const void *buf, size_t len);
#endif
