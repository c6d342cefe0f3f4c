/* test_h5util.c — h5u_next_piece, which splits a rank's flat slab of an N-d dataset into
 * hyperslabs of bounded size (checkpoints and trajectories rely on it for ROMIO's 2 GiB
 * limit): for many shapes, ranges and limits the pieces tile the range in order, each is
 * a single hyperslab whose elements are exactly the claimed flat range, and none exceeds
 * the limit. */
#include <stdint.h>

#include "io/h5util.h"
#include "test.h"

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(void) {
    uint64_t seed = 88172645463325252ull;
    int bad = 0, cases = 0;
    char why[256] = "";
    for (int t = 0; t < 3000 && !bad; t++) {
        int ndim = 1 + (int)(rnd(&seed) % 4);
        int64_t dims[H5U_MAX_DIMS], n = 1, stride[H5U_MAX_DIMS];
        for (int i = 0; i < ndim; i++) n *= dims[i] = 1 + (int64_t)(rnd(&seed) % 6);
        for (int i = ndim - 1, s = 1; i >= 0; i--) stride[i] = s, s *= (int)dims[i];
        int64_t a = (int64_t)(rnd(&seed) % (uint64_t)(n + 1)), b = a + (int64_t)(rnd(&seed) % (uint64_t)(n - a + 1));
        int64_t lim = 1 + (int64_t)(rnd(&seed) % (uint64_t)(n + 2));
        int64_t pos = a, expect = a, count = 0;
        H5uPiece p;
        while (h5u_next_piece(ndim, dims, &pos, b, lim, &p)) {
            count++;
            /* flat index of the hyperslab start, and its element count */
            int64_t first = 0, elems = 1;
            int j = -1;
            for (int i = 0; i < ndim; i++) {
                first += (int64_t)p.start[i] * stride[i];
                elems *= (int64_t)p.count[i];
                if (p.count[i] != 1 && j < 0) j = i;
            }
            /* one contiguous run: every dimension after the first non-1 count is whole */
            int contiguous = 1;
            for (int i = (j < 0 ? ndim : j + 1); i < ndim; i++)
                if (p.start[i] != 0 || (int64_t)p.count[i] != dims[i]) contiguous = 0;
            int inside = 1;
            for (int i = 0; i < ndim; i++)
                if ((int64_t)(p.start[i] + p.count[i]) > dims[i]) inside = 0;
            if (first != expect || p.first != expect || elems != p.nelem || p.nelem > lim || p.nelem < 1 ||
                !contiguous || !inside) {
                bad = 1;
                snprintf(why, sizeof why, "ndim %d range [%lld,%lld) limit %lld: piece at %lld (expected %lld), %lld elems",
                         ndim, (long long)a, (long long)b, (long long)lim, (long long)first, (long long)expect,
                         (long long)p.nelem);
                break;
            }
            expect += p.nelem;
        }
        if (!bad && (expect != b || count != h5u_count_pieces(ndim, dims, a, b, lim))) {
            bad = 1;
            snprintf(why, sizeof why, "range [%lld,%lld) covered to %lld", (long long)a, (long long)b, (long long)expect);
        }
        cases++;
    }
    TEST_EXPECT(!bad, "h5u_next_piece tiles 3000 random ranges with bounded single hyperslabs", "%s", why);
    /* A large tensor: 128256 x 4096 floats (Llama 3 8B embedding, 2.1 GB) in 1 GiB pieces. */
    int64_t emb[2] = {128256, 4096};
    int64_t pieces = h5u_count_pieces(2, emb, 0, emb[0] * emb[1], H5U_PIECE_BYTES_MAX / 4);
    TEST_EXPECT(pieces == 2, "an 8B-model embedding (2.1 GB) is written in 2 pieces of <= 1 GiB", "%lld pieces",
                (long long)pieces);
    return test_finish();
}
