/* test_crc32c.c — CRC-32C against published check values, piecewise updates and
 * crc32c_combine (which checkpoints use to assemble per-rank slab checksums). */
#include <stdint.h>
#include <string.h>

#include "io/crc32c.h"
#include "test.h"

int main(void) {
    TEST_EXPECT(crc32c_update(0, "123456789", 9) == 0xE3069283u, "crc32c check value of \"123456789\"",
                "got 0x%08x", crc32c_update(0, "123456789", 9));
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    /* RFC 3720 B.4 test vectors. */
    TEST_EXPECT(crc32c_update(0, zeros, 32) == 0x8A9136AAu, "crc32c of 32 zero bytes (RFC 3720)", "0x%08x",
                crc32c_update(0, zeros, 32));
    TEST_EXPECT(crc32c_update(0, ones, 32) == 0x62A8AB43u, "crc32c of 32 0xff bytes (RFC 3720)", "0x%08x",
                crc32c_update(0, ones, 32));
    TEST_EXPECT(crc32c_update(0, "", 0) == 0, "crc32c of nothing is 0", "nonzero");

    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + i / 13);
    uint32_t whole = crc32c_update(0, buf, sizeof buf);
    int piece_ok = 1, comb_ok = 1;
    for (size_t cut = 0; cut <= 1000; cut += 37) {
        uint32_t a = crc32c_update(0, buf, cut);
        if (crc32c_update(a, buf + cut, 1000 - cut) != whole) piece_ok = 0;
        uint32_t b = crc32c_update(0, buf + cut, 1000 - cut);
        if (crc32c_combine(a, b, 1000 - cut) != whole) comb_ok = 0;
    }
    TEST_EXPECT(piece_ok, "crc32c fed in two pieces equals the whole", "mismatch");
    TEST_EXPECT(comb_ok, "crc32c_combine(crc(A), crc(B), |B|) == crc(A||B)", "mismatch");
    /* Three unequal slabs, as three ranks would produce them. */
    uint32_t c = crc32c_update(0, buf, 1);
    c = crc32c_combine(c, crc32c_update(0, buf + 1, 0), 0);
    c = crc32c_combine(c, crc32c_update(0, buf + 1, 998), 998);
    c = crc32c_combine(c, crc32c_update(0, buf + 999, 1), 1);
    TEST_EXPECT(c == whole, "crc32c_combine over slabs incl. an empty one", "0x%08x vs 0x%08x", c, whole);
    return test_finish();
}
