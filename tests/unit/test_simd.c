/* Every SIMD table against the portable one, at offsets 0..32 and lengths 0..300. */

#include <string.h>

#include "dime/simd.h"
#include "tlib.h"

int
main(void)
{
	const struct dime_simd_ops *base = dime_simd_table(DIME_SIMD_BASE);
	uint8_t a[400], b[400], want[400], got[400];

	T_CHECK(base != NULL && dime_simd() != NULL, "tables");
	for (size_t i = 0; i < sizeof(a); i++) {
		a[i] = (uint8_t)(i * 7 + 1);
		b[i] = (uint8_t)(i * 13 + 5);
	}
	for (int lvl = DIME_SIMD_BASE; lvl <= DIME_SIMD_MAX; lvl++) {
		const struct dime_simd_ops *t = dime_simd_table((enum dime_simd_level)lvl);

		if (t == NULL)
			continue;
		for (size_t off = 0; off <= 32; off++)
			for (size_t n = 0; n <= 300; n++) {
				memset(want, 0xaa, sizeof(want));
				memset(got, 0xaa, sizeof(got));
				base->xor_bytes(want + off, a + off, b + off, n);
				t->xor_bytes(got + off, a + off, b + off, n);
				if (memcmp(want, got, sizeof(got)) != 0) {
					t_fail("%s xor off %zu len %zu differs from base", t->name,
					       off, n);
					return t_done("test_simd");
				}
				for (size_t k = 0; k < n; k++)
					if (want[off + k] != (uint8_t)(a[off + k] ^ b[off + k])) {
						t_fail("base xor wrong at %zu", k);
						return t_done("test_simd");
					}
			}
	}
	/* In place. */
	memcpy(got, a, sizeof(a));
	dime_simd()->xor_bytes(got, got, b, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		T_CHECK(got[i] == (uint8_t)(a[i] ^ b[i]), "in-place xor at %zu", i);
	return t_done("test_simd");
}
