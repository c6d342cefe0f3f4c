/* crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
 * 0xFFFFFFFF; the iSCSI/ext4/Btrfs checksum; crc32c("123456789") = 0xE3069283).
 *
 * Defines: crc32c_update (hardware SSE4.2 instruction when the build targets it, a
 * table-free bitwise-by-byte fallback otherwise) and crc32c_combine, which gives
 * crc(A || B) from crc(A), crc(B) and |B|. Checkpoints store the CRC of every dataset's
 * full contents; with combine each rank checksums only the slab it writes or reads and the
 * full value is assembled from the per-slab values in rank order.
 * Must not: know about files or MPI.
 */
#ifndef SOFTCOT_IO_CRC32C_H
#define SOFTCOT_IO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c_update(0, data, n) is the CRC-32C of data; feeding a buffer in consecutive
 * pieces, passing the previous result each time, gives the same value. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

/* CRC of the concatenation A || B, where crc_a = crc(A), crc_b = crc(B), len_b = |B|. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
