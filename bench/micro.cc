// dime-bench micro: Google Benchmark over the C API. Primitives (Ed25519, secp256k1 ECDH,
// AES-256-CBC, SHA-512, gzip), then each engine operation and its crypto floor at 1 KiB to
// 1 MiB, warm (one message again and again) and cold (a rotating pool of distinct messages
// larger than the caches). The label is the SIMD level.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <sodium.h>

#include "bench.h"
#include "dime/crypto.h"
#include "dime/gzip.h"
#include "dime/simd.h"
#include "fixture.h"
#include "floor.h"

namespace
{

bench_fix g_fix;
bench_floor_ctx *g_fctx;
std::string g_label;

const size_t k_sizes[] = {1024, 10 * 1024, 100 * 1024, 1024 * 1024};

// Cold pools: at least this many bytes of distinct inputs (DIME_BENCH_COLD_MB, default 64:
// twice a 32 MiB L3 slice; this VM's CPUID reports 512 MiB, the sum over the socket), at most
// k_cold_max messages so setup stays in seconds.
const size_t k_cold_max = 4096;

size_t
cold_bytes()
{
	const char *e = std::getenv("DIME_BENCH_COLD_MB");
	long mb = e != nullptr ? std::atol(e) : 64;

	return (size_t)(mb > 0 ? mb : 64) * 1024u * 1024u;
}

struct Msg {
	std::vector<uint8_t> mail, in;
	bench_floor *floor = nullptr;
};

// One pool alive at a time: benchmarks run in registration order, product then floor for the
// same (op, size, temperature), so memory stays bounded.
struct Pool {
	int op = -1;
	size_t size = 0;
	bool cold = false;
	std::vector<Msg> msgs;
	size_t in_bytes = 0;

	~Pool()
	{
		clear();
	}
	void clear()
	{
		for (auto &m : msgs)
			bench_floor_free(m.floor);
		msgs.clear();
		in_bytes = 0;
	}
};

Pool g_pool;

void
die(const char *what, int rc, const char *why)
{
	std::fprintf(stderr, "dime-bench micro: %s: %s (%s)\n", what, dime_strerror(rc),
		     why != nullptr ? why : "");
	std::exit(1);
}

Pool &
pool_get(int op, size_t size, bool cold, bool floors)
{
	Pool &p = g_pool;

	if (p.op != op || p.size != size || p.cold != cold) {
		p.clear();
		p.op = op;
		p.size = size;
		p.cold = cold;
		size_t n = 1;
		for (size_t i = 0; i < n; i++) {
			Msg m;
			uint8_t *mail = bench_mail_new(size, 1000 + i), *in = nullptr;
			size_t in_len = 0;
			int rc;

			if (mail == nullptr)
				die("mail", DIME_E_NOMEM, "");
			m.mail.assign(mail, mail + size);
			std::free(mail);
			rc = bench_input_new(&g_fix, &in, &in_len, (bench_op)op, m.mail.data(),
					     size);
			if (rc != DIME_OK)
				die("input", rc, bench_op_name((bench_op)op));
			m.in.assign(in, in + in_len);
			std::free(in);
			p.in_bytes += in_len;
			p.msgs.push_back(std::move(m));
			if (cold && i == 0) {
				n = cold_bytes() / in_len + 1;
				n = n < 8 ? 8 : n > k_cold_max ? k_cold_max : n;
			}
		}
	}
	if (floors)
		for (auto &m : p.msgs)
			if (m.floor == nullptr) {
				const char *why = "";
				int rc = bench_floor_new(&m.floor, &why, g_fctx, &g_fix,
							 (bench_op)op, m.mail.data(), m.mail.size(),
							 m.in.data(), m.in.size());
				if (rc != DIME_OK)
					die("floor", rc, why);
			}
	return p;
}

void
bm_op(benchmark::State &st, int op, size_t size, bool cold, bool floor)
{
	Pool &p = pool_get(op, size, cold, floor);
	size_t i = 0, bytes = 0, n = p.msgs.size();

	for (auto _ : st) {
		Msg &m = p.msgs[i];
		size_t out_len = 0;
		int rc =
		    floor ? bench_floor_run(g_fctx, m.floor)
			  : bench_op_run(&g_fix, &out_len, (bench_op)op, m.in.data(), m.in.size());

		if (rc != DIME_OK) {
			st.SkipWithError(dime_strerror(rc));
			break;
		}
		bytes += m.in.size();
		if (++i == n)
			i = 0;
	}
	st.SetBytesProcessed((int64_t)bytes);
	st.counters["msgs"] = (double)n;
	st.SetLabel(g_label);
}

// ---- primitives ----

void
bm_ed25519_sign(benchmark::State &st)
{
	std::vector<uint8_t> m((size_t)st.range(0), 0x5a);
	uint8_t seed[32], sig[64];

	randombytes_buf(seed, sizeof(seed));
	for (auto _ : st) {
		if (dime_ed25519_sign(sig, seed, m.data(), m.size()) != DIME_OK)
			st.SkipWithError("sign");
		benchmark::DoNotOptimize(sig);
	}
	st.SetBytesProcessed((int64_t)(st.iterations() * m.size()));
	st.SetLabel(g_label);
}

// The same signature from an expanded key: what dime_ed25519_sign costs beyond the floor.
void
bm_ed25519_sign_expanded(benchmark::State &st)
{
	std::vector<uint8_t> m((size_t)st.range(0), 0x5a);
	uint8_t pk[32], sk[64], sig[64];

	crypto_sign_keypair(pk, sk);
	for (auto _ : st) {
		crypto_sign_detached(sig, nullptr, m.data(), m.size(), sk);
		benchmark::DoNotOptimize(sig);
	}
	st.SetBytesProcessed((int64_t)(st.iterations() * m.size()));
	st.SetLabel(g_label);
}

void
bm_ed25519_verify(benchmark::State &st)
{
	std::vector<uint8_t> m((size_t)st.range(0), 0x5a);
	uint8_t pk[32], sk[64], sig[64];

	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(sig, nullptr, m.data(), m.size(), sk);
	for (auto _ : st)
		if (dime_ed25519_verify(sig, pk, m.data(), m.size()) != DIME_OK)
			st.SkipWithError("verify");
	st.SetBytesProcessed((int64_t)(st.iterations() * m.size()));
	st.SetLabel(g_label);
}

// dime_ed25519_verify_batch over n signatures of 1 KiB each (time per batch; items/s counter).
void
bm_ed25519_verify_batch(benchmark::State &st)
{
	size_t n = (size_t)st.range(0);
	std::vector<uint8_t> m(n * 1024), sig(n * 64), pk(n * 32), ok(n);
	std::vector<dime_ed25519_check> c(n);

	randombytes_buf(m.data(), m.size());
	for (size_t i = 0; i < n; i++) {
		uint8_t sk[64];

		crypto_sign_keypair(&pk[i * 32], sk);
		crypto_sign_detached(&sig[i * 64], nullptr, &m[i * 1024], 1024, sk);
		c[i] = {&sig[i * 64], &pk[i * 32], &m[i * 1024], 1024};
	}
	for (auto _ : st)
		if (dime_ed25519_verify_batch(c.data(), n, ok.data()) != DIME_OK)
			st.SkipWithError("verify_batch");
	st.counters["verifies/s"] =
	    benchmark::Counter((double)(st.iterations() * n), benchmark::Counter::kIsRate);
	st.SetLabel(g_label);
}

void
bm_secp_keygen(benchmark::State &st)
{
	uint8_t priv[32], pub[33];

	for (auto _ : st) {
		if (dime_secp_keygen(priv, pub) != DIME_OK)
			st.SkipWithError("keygen");
		benchmark::DoNotOptimize(pub);
	}
	st.SetLabel(g_label);
}

void
bm_secp_ecdh(benchmark::State &st)
{
	uint8_t priv[32], pub[33], priv2[32], pub2[33], x[32];

	if (dime_secp_keygen(priv, pub) != DIME_OK || dime_secp_keygen(priv2, pub2) != DIME_OK)
		st.SkipWithError("keygen");
	for (auto _ : st) {
		if (dime_secp_ecdh_x(x, priv, pub2) != DIME_OK)
			st.SkipWithError("ecdh");
		benchmark::DoNotOptimize(x);
	}
	st.SetLabel(g_label);
}

void
bm_aes(benchmark::State &st, bool enc)
{
	std::vector<uint8_t> in((size_t)st.range(0), 0x33), out(in.size());
	uint8_t key[32], iv[16];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(iv, sizeof(iv));
	for (auto _ : st) {
		int rc = enc ? dime_aes256cbc_encrypt(out.data(), in.data(), in.size(), key, iv)
			     : dime_aes256cbc_decrypt(out.data(), in.data(), in.size(), key, iv);
		if (rc != DIME_OK)
			st.SkipWithError("aes");
		benchmark::DoNotOptimize(out.data());
	}
	st.SetBytesProcessed((int64_t)(st.iterations() * in.size()));
	st.SetLabel(g_label);
}

// AES through one reused EVP context (key schedule still per call): dime_aes256cbc_* minus
// the context allocation, i.e. what the floor pays.
void
bm_aes_evp_reused(benchmark::State &st, bool enc)
{
	std::vector<uint8_t> in((size_t)st.range(0), 0x33), out(in.size());
	uint8_t key[32], iv[16];
	EVP_CIPHER *c = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();

	randombytes_buf(key, sizeof(key));
	randombytes_buf(iv, sizeof(iv));
	for (auto _ : st) {
		int n = 0, fin = 0;

		if (EVP_CipherInit_ex2(x, c, key, iv, enc ? 1 : 0, nullptr) != 1 ||
		    EVP_CIPHER_CTX_set_padding(x, 0) != 1 ||
		    EVP_CipherUpdate(x, out.data(), &n, in.data(), (int)in.size()) != 1 ||
		    EVP_CipherFinal_ex(x, out.data() + n, &fin) != 1)
			st.SkipWithError("evp");
		benchmark::DoNotOptimize(out.data());
	}
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(c);
	st.SetBytesProcessed((int64_t)(st.iterations() * in.size()));
	st.SetLabel(g_label);
}

void
bm_sha512(benchmark::State &st)
{
	std::vector<uint8_t> in((size_t)st.range(0), 0x11);
	uint8_t h[64];

	for (auto _ : st) {
		dime_sha512(h, in.data(), in.size());
		benchmark::DoNotOptimize(h);
	}
	st.SetBytesProcessed((int64_t)(st.iterations() * in.size()));
	st.SetLabel(g_label);
}

void
bm_gzip(benchmark::State &st, bool compress)
{
	size_t n = (size_t)st.range(0), zl = 0, ol = 0;
	uint8_t *mail = bench_mail_new(n, 7);
	std::vector<uint8_t> z(dime_gzip_bound(n)), out(n);

	if (mail == nullptr || dime_gzip_compress(z.data(), z.size(), &zl, mail, n) != DIME_OK)
		st.SkipWithError("gzip setup");
	for (auto _ : st) {
		int rc = compress ? dime_gzip_compress(z.data(), z.size(), &ol, mail, n)
				  : dime_gzip_decompress(out.data(), n, &ol, z.data(), zl);
		if (rc != DIME_OK)
			st.SkipWithError("gzip");
		benchmark::DoNotOptimize(ol);
	}
	std::free(mail);
	st.SetBytesProcessed((int64_t)(st.iterations() * n));
	st.counters["ratio"] = zl > 0 ? (double)n / (double)zl : 0.0;
	st.SetLabel(g_label);
}

void
register_all()
{
	benchmark::RegisterBenchmark("prim/ed25519_sign_seed", bm_ed25519_sign)
	    ->Arg(64)
	    ->Arg(1024)
	    ->Arg(10240);
	benchmark::RegisterBenchmark("prim/ed25519_sign_expanded", bm_ed25519_sign_expanded)
	    ->Arg(64)
	    ->Arg(1024)
	    ->Arg(10240);
	benchmark::RegisterBenchmark("prim/ed25519_verify", bm_ed25519_verify)
	    ->Arg(64)
	    ->Arg(1024)
	    ->Arg(10240);
	benchmark::RegisterBenchmark("prim/ed25519_verify_batch_1k", bm_ed25519_verify_batch)
	    ->Arg(1)
	    ->Arg(8)
	    ->Arg(32);
	benchmark::RegisterBenchmark("prim/secp256k1_keygen", bm_secp_keygen);
	benchmark::RegisterBenchmark("prim/secp256k1_ecdh_x", bm_secp_ecdh);
	benchmark::RegisterBenchmark("prim/aes256cbc_enc", bm_aes, true)
	    ->Arg(64)
	    ->Arg(4096)
	    ->Arg(65536);
	benchmark::RegisterBenchmark("prim/aes256cbc_dec", bm_aes, false)
	    ->Arg(64)
	    ->Arg(4096)
	    ->Arg(65536);
	benchmark::RegisterBenchmark("prim/aes256cbc_enc_evp_reused", bm_aes_evp_reused, true)
	    ->Arg(64)
	    ->Arg(4096)
	    ->Arg(65536);
	benchmark::RegisterBenchmark("prim/aes256cbc_dec_evp_reused", bm_aes_evp_reused, false)
	    ->Arg(64)
	    ->Arg(4096)
	    ->Arg(65536);
	benchmark::RegisterBenchmark("prim/sha512", bm_sha512)
	    ->Arg(32)
	    ->Arg(4096)
	    ->Arg(65536)
	    ->Arg(1 << 20);
	benchmark::RegisterBenchmark("prim/gzip_compress", bm_gzip, true)
	    ->Arg(4096)
	    ->Arg(65536)
	    ->Arg(1 << 20);
	benchmark::RegisterBenchmark("prim/gzip_decompress", bm_gzip, false)
	    ->Arg(4096)
	    ->Arg(65536)
	    ->Arg(1 << 20);
	for (int op = 0; op < BENCH_N_OPS; op++)
		for (size_t size : k_sizes)
			for (int cold = 0; cold < 2; cold++)
				for (int fl = 0; fl < 2; fl++) {
					char sz[16];
					std::string name;

					bench_size_name(sz, sizeof(sz), size);
					name = std::string(fl ? "floor/" : "op/") +
					       bench_op_name((bench_op)op) + "/" + sz +
					       (cold ? "/cold" : "/warm");
					benchmark::RegisterBenchmark(name.c_str(), bm_op, op, size,
								     cold != 0, fl != 0)
					    ->Unit(benchmark::kMicrosecond);
				}
}

const char micro_help[] =
    "usage: dime-bench micro [Google Benchmark flags]\n"
    "\n"
    "Google Benchmark over the C API, one thread: prim/<primitive>/<bytes>,\n"
    "op/<op>/<size>/<warm|cold> (the engine call the pipeline makes) and\n"
    "floor/<op>/<size>/<warm|cold> (its crypto floor); sizes 1k, 10k, 100k, 1m. Label: the\n"
    "SIMD level. Default: every benchmark (minutes). Examples:\n"
    "  dime-bench micro --benchmark_filter='/10k/' --benchmark_min_time=0.5\n"
    "  dime-bench micro --benchmark_list_tests\n"
    "Environment: DIME_BENCH_COLD_MB, the least bytes of distinct messages a cold pool holds\n"
    "(default: 64 MiB, at most 4096 messages); DIME_SIMD=base|avx2 caps the SIMD level.\n"
    "\n"
    "Google Benchmark's flags (defaults: --benchmark_min_time=0.5s per benchmark, 1 repetition,\n"
    "console output, every benchmark):\n";

} // namespace

extern "C" int
bench_micro_main(int argc, char **argv)
{
	const char *why = "";
	int rc;

	for (int i = 1; i < argc; i++)
		if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
			char help[] = "--help";
			char *hargv[] = {argv[0], help, nullptr};
			int hargc = 2;

			std::fputs(micro_help, stdout);
			std::fflush(stdout);
			/* prints its flags and exits 0 */
			benchmark::Initialize(&hargc, hargv);
			return 0;
		}
	rc = bench_fix_init(&g_fix, &why);
	if (rc != DIME_OK) {
		std::fprintf(stderr, "dime-bench micro: setup: %s: %s\n", why, dime_strerror(rc));
		return 1;
	}
	if ((g_fctx = bench_floor_ctx_new(&g_fix)) == nullptr) {
		std::fprintf(stderr, "dime-bench micro: floor context failed\n");
		return 1;
	}
	g_label = std::string("simd=") + dime_simd()->name;
	register_all();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	g_pool.clear();
	bench_floor_ctx_free(g_fctx);
	bench_fix_fini(&g_fix);
	return 0;
}
