/* AES-NI multi-buffer AES-256-CBC (built with -maes -mavx2; reached only through the dispatch
 * table). CBC is serial within a stream, so one stream waits out the aesenc latency every
 * round; 8 streams interleaved round by round keep the AES units busy instead. */

#include "aes_mb_int.h"

/* The narrowest width that holds every active slot: 8 lanes cost about what 4 cost on a CPU
 * with two AES units of latency 4, but twice as much with one unit. */
static void
aes_avx2_run(struct aesmb *m, size_t k)
{
	if (m->active > 4) {
		aesmb_idle(m, 8);
		aesmb_run_xmm(m, k, 8);
	} else if (m->active > 2) {
		aesmb_idle(m, 4);
		aesmb_run_xmm(m, k, 4);
	} else if (m->active == 2) {
		aesmb_run_xmm(m, k, 2);
	} else {
		aesmb_run_xmm(m, k, 1);
	}
}

void
dime_simd_aes256cbc_avx2(const struct dime_aes256cbc_lane *l, size_t n)
{
	struct aesmb m;

	aesmb_drive(&m, l, n, 8, aes_avx2_run);
}
