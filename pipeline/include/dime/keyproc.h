#ifndef DIME_PIPELINE_KEYPROC_H
#define DIME_PIPELINE_KEYPROC_H
/* The key process (docs/keyproc.md): the only process that holds decrypted private keys, after
 * OpenSMTPD's `ca` process and Postfix's privilege separation. Network-facing processes reach
 * keys through a remote keystore (dime_ks_new_remote) whose backend is a client of this module;
 * a bug in a parser facing the internet cannot read what its process never held.
 *
 * The key process answers only two requests, batched and addressed by the key's Ed25519
 * public key (so ids never go stale across restarts and reloads): Ed25519 sign and secp256k1
 * ECDH. It never exports a key, never parses a message, and runs with core dumps off, memory
 * locked where allowed and a seccomp filter allowing only what serving needs. It also lists its
 * keys' public halves (hello) and reloads them from the store on request (rotation).
 *
 * Transport: SOCK_SEQPACKET socketpairs, one request and one reply per datagram, a fixed-size
 * header and fixed-size items; sign inputs ride inline, or in a sealed memfd passed with the
 * datagram when larger than a datagram allows. Every reply carries the request's sequence
 * number, so a reply to a request the client gave up on is recognised and dropped. Because
 * datagrams are atomic, a supervisor can keep the server ends of the channels and start a new
 * key process on them when one dies: requests queued meanwhile are answered by the new one.
 *
 * Thread-safety: a client may be used from any number of threads (each request takes one of
 * its channels for the round trip). */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dime/common.h"
#include "dime/dir.h"
#include "dime/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_KP_BATCH_MAX	 64u	     /* items in one request */
#define DIME_KP_SIGN_MAX_DEFAULT (64u << 20) /* largest input of one signature */
#define DIME_KP_TIMEOUT_DEFAULT	 5000u	     /* ms a client waits for one reply */
#define DIME_KP_CHANNELS_MAX	 64u

/* What the key process may do. Hardening is on by default; tests under sanitizers may turn
 * seccomp off (the sanitizer runtimes make system calls a production build never does). */
#define DIME_KP_HARDEN_NODUMP  1u /* PR_SET_DUMPABLE 0, RLIMIT_CORE 0 */
#define DIME_KP_HARDEN_MLOCK   2u /* mlockall where RLIMIT_MEMLOCK allows; failure is logged */
#define DIME_KP_HARDEN_SECCOMP 4u /* a filter allowing only the serving system calls */
#define DIME_KP_HARDEN_ALL     7u

struct dime_kp_conf {
	size_t sign_max; /* 0: DIME_KP_SIGN_MAX_DEFAULT; larger sign requests are refused */
	unsigned harden; /* DIME_KP_HARDEN_* bits */
	int log_fd;	 /* one key=value line per refused request or reload; -1: none */
};

/* --- the key process side --- */

/* Run as the key process: open store_path with its secrets (dime_store_open_flags with
 * DIME_STORE_OPEN_EXISTING), load every hosted key of every version, close the store (which
 * wipes its key-encryption key), harden, and serve channels fds[0..n) until every one is
 * closed by its peer or SIGTERM arrives. Malformed or out-of-policy requests (unknown op, bad
 * header, count 0 or above DIME_KP_BATCH_MAX, a sign input over sign_max, an unknown key, ECDH
 * with a sign-only key, a bad point) get an error reply, never a crash; the channel keeps
 * serving. Returns: the process exit status (0: clean end; 2: the store or its keys could not
 * be opened, the reason on log_fd). Never returns to a caller that should keep running: call
 * it in a child. */
int dime_kp_serve(const char *store_path, const int *fds, size_t n,
		  const struct dime_kp_conf *conf);

/* Fork a key process serving n channels (n <= DIME_KP_CHANNELS_MAX) and give back the client
 * ends. With supervise, the child is a small supervisor that keeps the server ends and starts a
 * new key process whenever one dies (with a backoff when they die fast), and reloads on SIGHUP;
 * without, the child is the key process itself (dime batch --key-process).
 * Returns: DIME_OK, DIME_E_IO (err: why), DIME_E_INVALID. Out: *pid, fds[0..n). */
DIME_MUST_CHECK int dime_kp_spawn(pid_t *pid, int *fds, size_t n, const char *store_path,
				  const struct dime_kp_conf *conf, int supervise, char *err,
				  size_t errlen);

/* --- the client side --- */

struct dime_kp_client;

/* A client over channels fds[0..n) (taken: closed by dime_kp_client_free). timeout_ms: how long
 * one round trip may take (0: DIME_KP_TIMEOUT_DEFAULT); past it the request fails with
 * DIME_E_AGAIN. Returns: DIME_OK, DIME_E_INVALID, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_kp_client_new(struct dime_kp_client **out, const int *fds, size_t n,
				       unsigned timeout_ms);
void dime_kp_client_free(struct dime_kp_client *c); /* NULL-safe */

/* The key process's hosted keys now: a remote keystore over c holding their public halves, and
 * their descriptions (ids are *ks's) in the order the in-process directory loads them: org
 * keys, then user keys, each by ident and version (every identity's versions contiguous), ready
 * for dime_pl_dir_conf. The caller frees both (dime_ks_free, free) after every directory using
 * them is closed; c must outlive *ks.
 * Returns: DIME_OK, DIME_E_AGAIN (no answer in time), DIME_E_IO, DIME_E_NOMEM. */
DIME_MUST_CHECK int dime_kp_client_keys(struct dime_kp_client *c, struct dime_ks **ks,
					struct dime_pl_keyinfo **keys, size_t *n);

/* Ask the key process to load its keys from the store again (after a rotation); the next
 * dime_kp_client_keys sees them. Keys in use stay usable if they are still in the store.
 * Returns: DIME_OK, DIME_E_AGAIN, DIME_E_IO (the reload failed: the old keys stay). */
DIME_MUST_CHECK int dime_kp_client_reload(struct dime_kp_client *c);

struct dime_kp_stats {
	uint64_t requests, items, timeouts, stale_replies, refused;
};
void dime_kp_client_stats(struct dime_kp_client *c, struct dime_kp_stats *st);

#ifdef __cplusplus
}
#endif
#endif
