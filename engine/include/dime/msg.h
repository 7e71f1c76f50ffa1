#ifndef DIME_ENGINE_MSG_H
#define DIME_ENGINE_MSG_H
/* D/MIME messages (magic 1847): parse and dump, author wrap, origin sign, destination accept,
 * author/recipient open. Byte layout: ../shared/spec/reference-format.md §5-6 as
 * ../shared/spec/WIRE.md settles it (emit the reference's form, reject what the spec rejects).
 *
 * Every function is reentrant: no I/O, no threads, no logging, no globals. Private keys are
 * reached only through the keystore (struct dime_ks + key id). Parsed views borrow the input,
 * which must outlive them.
 *
 * Memory: for now the operations malloc per message (outputs are returned owned and released
 * with dime_msg_free / dime_msg_opened_free, both of which wipe); a later change moves this
 * onto a caller-supplied struct dime_arena without changing what the functions compute.
 *
 * Errors: DIME_OK or a negative enum dime_err. Every operation also returns *why (when why is
 * not NULL): a static reason naming the chunk and the rule ("chunk 67: padding byte differs
 * from the pad octet"), "" on success. Failures a remote peer could cause by sending a bad
 * message (bad signature, bad padding, bad keyslot, an envelope that names other signets)
 * collapse to DIME_E_BADSIG (STYLE.md §3); framing errors keep DIME_E_TRUNCATED /
 * DIME_E_MALFORMED / DIME_E_LIMIT / DIME_E_TRAILING. No plaintext is ever released from a
 * message that failed any check. */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"
#include "dime/crypto.h"
#include "dime/keys.h"
#include "dime/signet.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_MSG_MAGIC		      1847u
#define DIME_MSG_TRACING_MAGIC	      1837u
#define DIME_MSG_HEADER_BYTES	      6u /* magic + 4-byte length */
#define DIME_MSG_CHUNK_HEADER_BYTES   4u /* type + 3-byte payload length */
#define DIME_MSG_KEYSLOT_BYTES	      64u
#define DIME_MSG_PAYLOAD_HEADER_BYTES 69u	  /* sig64 | len3 | flags1 | pad1 */
#define DIME_MSG_PAYLOAD_MAX_BYTES    16777200u	  /* largest 16-aligned 3-byte length */
#define DIME_MSG_DATA_MAX_BYTES	      16777131u	  /* one chunk's data segment (spec Part 6) */
#define DIME_MSG_MAX_BYTES	      0x40000000u /* 1 GiB: our limit on a whole message */
#define DIME_MSG_ADDR_MAX	      256u	  /* an address or domain, NUL included */

/* Chunk types on the wire (spec Part 6 "Types"). Section markers (1, 32, 64, 128, 224) and
 * type 0 never appear; tracing is the 1837 prefix object instead. */
enum dime_msg_chunk_type {
	DIME_CHUNK_EPHEMERAL = 2,
	DIME_CHUNK_ALTERNATE = 3,
	DIME_CHUNK_ORIGIN = 4,
	DIME_CHUNK_DESTINATION = 5,
	DIME_CHUNK_COMMON = 33,
	DIME_CHUNK_HEADERS = 34,
	DIME_CHUNK_DISPLAY_MULTI = 65,
	DIME_CHUNK_DISPLAY_ALT = 66,
	DIME_CHUNK_DISPLAY = 67,
	DIME_CHUNK_ATTACH_MULTI = 129,
	DIME_CHUNK_ATTACH_ALT = 130,
	DIME_CHUNK_ATTACH = 131,
	DIME_CHUNK_TREE_SIG = 225,
	DIME_CHUNK_AUTHOR_SIG = 226,
	DIME_CHUNK_META_BOUNCE = 248,
	DIME_CHUNK_DISPLAY_BOUNCE = 249,
	DIME_CHUNK_ORG_SIG = 255
};

/* Actors, as a bit set; keyslots always appear in A, O, D, R order. */
enum dime_msg_actor {
	DIME_ACTOR_AUTHOR = 1,
	DIME_ACTOR_ORIGIN = 2,
	DIME_ACTOR_DESTINATION = 4,
	DIME_ACTOR_RECIPIENT = 8
};

/* Payload flags (spec Part 6). Bits 8..64 are reserved: a chunk with one set is rejected. */
enum dime_msg_flag {
	DIME_MSG_FLAG_ALT_PAD = 1,
	DIME_MSG_FLAG_ALT_KEY = 2, /* not supported: rejected on open */
	DIME_MSG_FLAG_GZIP = 4,
	DIME_MSG_FLAG_SPAN = 128
};

/* ---- structure (no keys) ---- */

/* One chunk as framed on the wire; every view borrows the input. */
struct dime_msg_chunk_info {
	uint8_t type;
	uint8_t actors; /* enum dime_msg_actor bits of its keyslots (0: none) */
	uint8_t n_slots;
	size_t offset;		  /* of the type octet, from the start of the input */
	struct dime_view chunk;	  /* type octet through the last keyslot */
	struct dime_view payload; /* payload (ciphertext, or the ephemeral key) */
	struct dime_view slots;	  /* n_slots * 64 bytes */
};

/* The message as framed. */
struct dime_msg_dump {
	struct dime_view tracing; /* tracing payload after its 4-byte header; empty when absent */
	size_t msg_offset;	  /* offset of the 1847 magic (0, or after the tracing prefix) */
	size_t n_chunks;
};

/* Parse the framing of a D/MIME message: optional tracing prefix (1837, 2-byte length), magic
 * 1847, 4-byte length equal to what follows, then chunks type|len3|payload|k*64 with k by type,
 * in ascending type order (67s before 131s, repeats in any order among themselves; 65/66 count
 * as display, 129/130 as attachments), known types only, required chunks present (2, 4, 5, 33,
 * 225, 226, 255), the ephemeral key 33 bytes, signature payloads 64, other payloads non-empty
 * multiples of 16 and at most DIME_MSG_PAYLOAD_MAX_BYTES. Nothing is decrypted.
 * chunks may be NULL (count only: d->n_chunks is still set); otherwise chunks_cap must hold
 * every chunk or DIME_E_NOSPACE is returned. n_chunks never exceeds in_len / 4.
 * Returns: DIME_OK, DIME_E_TRUNCATED, DIME_E_MALFORMED, DIME_E_TRAILING, DIME_E_LIMIT,
 *          DIME_E_NOSPACE.
 * Out: *d, chunks[0..d->n_chunks): views into in; zeroed on failure. *why.
 * Thread-safe; borrows in. */
DIME_MUST_CHECK int dime_msg_dump(struct dime_msg_dump *d, struct dime_msg_chunk_info *chunks,
				  size_t chunks_cap, const char **why, const uint8_t *in,
				  size_t in_len);

/* Returns: a static lower-case chunk name ("origin", "display-content", "org-signature",
 * as the interop manifest spells them), or "unknown". */
const char *dime_msg_chunk_name(uint8_t type);
/* Returns: the actor letters of a keyslot set in order ("AOR", "AODR", ""), static. */
const char *dime_msg_actors_str(uint8_t actors);
/* Returns: the keyslot actor set of a chunk type, 0 for unencrypted or unknown types. */
uint8_t dime_msg_chunk_actors(uint8_t type);

/* ---- the parties ---- */

/* The signets an operation may need; which ones each operation uses is in its doc. */
struct dime_msg_parties {
	const struct dime_signet *author;      /* user signet */
	const struct dime_signet *origin;      /* org signet of the author's domain */
	const struct dime_signet *destination; /* org signet of the recipient's domain */
	const struct dime_signet *recipient;   /* user signet */
};

/* What the envelope chunks (4, 5) say, copied out (NUL-terminated). The fingerprints are the
 * crypto fingerprints the envelope carries (reference-format §3.5). have_origin_chunk /
 * have_destination_chunk say which half was opened; the other half stays zeroed. */
struct dime_msg_envelope {
	char author[DIME_MSG_ADDR_MAX];	     /* chunk 4 Author */
	char destination[DIME_MSG_ADDR_MAX]; /* chunk 4 Destination */
	char recipient[DIME_MSG_ADDR_MAX];   /* chunk 5 Recipient */
	char origin[DIME_MSG_ADDR_MAX];	     /* chunk 5 Origin */
	uint8_t author_fp[DIME_FP_BYTES];
	uint8_t destination_fp[DIME_FP_BYTES];
	uint8_t recipient_fp[DIME_FP_BYTES];
	uint8_t origin_fp[DIME_FP_BYTES];
	uint8_t have_origin_chunk;
	uint8_t have_destination_chunk;
};

/* ---- author ---- */

enum dime_msg_gzip_policy {
	DIME_MSG_GZIP_IF_SMALLER = 0, /* default (spec's recommendation) */
	DIME_MSG_GZIP_NEVER = 1,
	DIME_MSG_GZIP_ALWAYS = 2
};

enum dime_msg_padding {
	DIME_MSG_PAD_REFERENCE = 0, /* reference random padding (reference-format §6.4) */
	DIME_MSG_PAD_ALTERNATE = 1  /* spec's alternate algorithm (flag 1) */
};

/* One content part: a display (67) or attachment (131) data blob. */
struct dime_msg_part {
	uint8_t type; /* DIME_CHUNK_DISPLAY or DIME_CHUNK_ATTACH */
	struct dime_view data;
};

struct dime_msg_content {
	struct dime_view common;  /* chunk 33 data (Date/To/CC/From/Organization/Subject) */
	struct dime_view headers; /* chunk 34 data, always emitted */
	const struct dime_msg_part *parts; /* displays first, then attachments, in wire order */
	size_t n_parts;
};

struct dime_msg_wrap_opts {
	enum dime_msg_gzip_policy gzip;
	enum dime_msg_padding padding;
};

/* Author: build the author-output message: chunk 2 (fresh ephemeral key), 4 and 5 (envelope
 * text from the signets' identifiers and crypto fingerprints), 33, 34, the parts, 225
 * (reference tree form), 226, and placeholder 248, 249, 255 holding encrypted zero signatures;
 * keyslots A,O,D,R as each type allows. Every chunk gets a fresh key and IV.
 * Each data segment is GZIP-compressed per opts->gzip: IF_SMALLER (default) when that saves
 * bytes, ALWAYS, or NEVER. An empty segment cannot be stored raw (the spec forbids data length
 * 0), so it is always compressed, and with NEVER it gives DIME_E_INVALID. A 0-byte body is a
 * message with no display part. Data over DIME_MSG_DATA_MAX_BYTES spans several
 * chunks of the same type (flag 128).
 * In: p: all four signets (author, origin, destination, recipient); author_key: the author's
 *     DIME_KEY_USER key id, whose public signing key must equal the author signet's;
 *     c: content (an empty common or headers is stored compressed); opts: NULL for defaults.
 * Returns: DIME_OK, DIME_E_INVALID (missing signet or identifier, parts out of order, wrong
 *          key), DIME_E_LIMIT (a part over DIME_MSG_DATA_MAX_BYTES or the message over
 *          DIME_MSG_MAX_BYTES), DIME_E_NOTFOUND, DIME_E_NOMEM, DIME_E_CRYPTO.
 * Out: *out (owned: dime_msg_free), *out_len; NULL/0 on failure. *why. */
DIME_MUST_CHECK int dime_msg_wrap(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
				  const char **why, const struct dime_msg_parties *p,
				  uint32_t author_key, const struct dime_msg_content *c,
				  const struct dime_msg_wrap_opts *opts);

/* ---- origin ---- */

/* Origin, verify only: open chunk 4 with org_key, check its plaintext signature with the author
 * signet, that its Author-Signet is p->author's crypto fingerprint, and the author's tree
 * (reference or spec-literal form) and full signatures.
 * In: org_key: the origin's DIME_KEY_ORG key id (its encryption key opens the O keyslots);
 *     p->author required.
 * Returns: DIME_OK, framing errors as dime_msg_dump, DIME_E_BADSIG, DIME_E_INVALID,
 *          DIME_E_NOTFOUND, DIME_E_NOMEM, DIME_E_CRYPTO.
 * Out: *env: the chunk 4 half (zeroed on failure). *why. */
DIME_MUST_CHECK int dime_msg_origin_check(const struct dime_ks *ks, struct dime_msg_envelope *env,
					  const char **why, const uint8_t *in, size_t in_len,
					  uint32_t org_key, const struct dime_msg_parties *p);

/* Origin: dime_msg_origin_check, then fill 248 (S(2)..S(34)), 249 (S(2)..S(67...)) and 255
 * (every chunk before it) by decrypting the author-chosen key from the origin keyslot of each
 * and re-encrypting the signature in place (keyslots unchanged). Signs with sign_key: the POK
 * of org_key when sign_key == DIME_KS_NONE, else a DIME_KEY_SIGN key that p->origin must list
 * as a SOK with DIME_SOK_MESSAGES. A tracing prefix is kept. Works on author output and
 * re-signs an already signed message.
 * In: p->author and p->origin required.
 * Returns: as dime_msg_origin_check, plus DIME_E_INVALID (sign_key not POK/SOK-with-bit-2).
 * Out: *out (owned: dime_msg_free), *out_len; NULL/0 on failure. *env, *why. */
DIME_MUST_CHECK int dime_msg_origin_sign(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
					 struct dime_msg_envelope *env, const char **why,
					 const uint8_t *in, size_t in_len, uint32_t org_key,
					 uint32_t sign_key, const struct dime_msg_parties *p);

/* dime_msg_origin_sign with flags. DIME_MSG_SIGN_OWN: `in` is this process's own
 * dime_msg_wrap output, made with p->author's key a moment ago (wrap --origin-sign), so
 * dime_msg_origin_check is skipped (no author signature is verified again; *env stays zeroed);
 * never set it for a message read from anywhere else. */
#define DIME_MSG_SIGN_OWN 1u
DIME_MUST_CHECK int dime_msg_origin_sign_flags(const struct dime_ks *ks, uint8_t **out,
					       size_t *out_len, struct dime_msg_envelope *env,
					       const char **why, const uint8_t *in, size_t in_len,
					       uint32_t org_key, uint32_t sign_key,
					       const struct dime_msg_parties *p, unsigned flags);

/* ---- destination ---- */

/* Destination: open chunk 5 with dest_key (its plaintext signature is the author's, which the
 * destination cannot check), require its Origin-Signet to be p->origin's crypto fingerprint,
 * then verify 248 and 249 (when present) and 255 against p->origin's POK or any SOK with
 * DIME_SOK_MESSAGES. An unsigned (author-output) message fails here.
 * In: dest_key: the destination's DIME_KEY_ORG key id; p->origin required.
 * Returns: DIME_OK, framing errors, DIME_E_BADSIG, DIME_E_INVALID, DIME_E_NOTFOUND,
 *          DIME_E_NOMEM, DIME_E_CRYPTO.
 * Out: *env: the chunk 5 half (recipient, recipient_fp, origin, origin_fp), zeroed on
 *      failure. *why. */
DIME_MUST_CHECK int dime_msg_accept(const struct dime_ks *ks, struct dime_msg_envelope *env,
				    const char **why, const uint8_t *in, size_t in_len,
				    uint32_t dest_key, const struct dime_msg_parties *p);

/* Any actor, before it knows which signets to fetch: decrypt the envelope chunk(s) the actor
 * has a keyslot for (author: 4 and 5; origin: 4; destination: 5; recipient: 4 and 5) and parse
 * them. NOTHING IS VERIFIED: use the result only to look up signets, then run the actor's
 * operation. Returns and outputs as dime_msg_accept. */
DIME_MUST_CHECK int dime_msg_envelope_peek(const struct dime_ks *ks, struct dime_msg_envelope *env,
					   const char **why, const uint8_t *in, size_t in_len,
					   enum dime_msg_actor as, uint32_t key);

/* ---- author re-read, recipient ---- */

/* One opened content part. */
struct dime_msg_opened_part {
	uint8_t type;	       /* 67, 131 (or 3, 65, 66, 129, 130 as received) */
	uint8_t flags;	       /* the payload flags as received (GZIP already undone) */
	struct dime_view data; /* owned by the struct dime_msg_opened */
};

struct dime_msg_opened {
	struct dime_msg_envelope env;
	struct dime_view common;  /* chunk 33 data */
	struct dime_view headers; /* chunk 34 data; empty when the chunk is absent */
	uint8_t common_flags, headers_flags;
	struct dime_msg_opened_part *parts; /* wire order; spanned chunks joined into one part */
	size_t n_parts;
	void *mem; /* private */
	size_t mem_len;
};

/* Author (as == DIME_ACTOR_AUTHOR) or recipient (DIME_ACTOR_RECIPIENT): verify, then open.
 * Order (STYLE.md §4): framing; chunks 4 and 5 opened and their signatures checked against
 * p->author; the envelope fingerprints must match the given signets; 225 (either form) and 226
 * over ciphertext; for the recipient, 248/249 (when present) and 255 against p->origin's POK or
 * a SOK with DIME_SOK_MESSAGES; only then content chunks are decrypted, signature-checked,
 * padding- and flag-checked, spanned runs (flag 128) joined, GZIP-decompressed (the
 * decompressed size is bounded by DIME_MSG_MAX_BYTES and must equal the member's ISIZE). Any
 * failure releases nothing.
 * In: key: the actor's DIME_KEY_USER key id; p->author required; p->origin required for the
 *     recipient; p->destination and p->recipient, when given, are matched against the
 *     envelope fingerprints.
 * Returns: DIME_OK, framing errors, DIME_E_BADSIG, DIME_E_INVALID, DIME_E_NOTFOUND,
 *          DIME_E_LIMIT, DIME_E_NOMEM, DIME_E_CRYPTO.
 * Out: *o (free with dime_msg_opened_free), zeroed on failure. *why. */
DIME_MUST_CHECK int dime_msg_open(const struct dime_ks *ks, struct dime_msg_opened *o,
				  const char **why, const uint8_t *in, size_t in_len,
				  enum dime_msg_actor as, uint32_t key,
				  const struct dime_msg_parties *p);

/* ---- mail in and out (docs/mime.md) ---- */

/* Author: dime_msg_wrap of an RFC 5322 message, split losslessly into chunks 33, 34 and the
 * display and attachment parts (dime_mime_split). Any byte string is a message.
 * Returns and outputs: as dime_msg_wrap, plus DIME_E_LIMIT for a message over
 * DIME_MIME_MAX_BYTES. */
DIME_MUST_CHECK int dime_msg_wrap_mail(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
				       const char **why, const struct dime_msg_parties *p,
				       uint32_t author_key, const uint8_t *mail, size_t mail_len,
				       const struct dime_msg_wrap_opts *opts);

/* The mail an opened message carries: for our own messages, the original bytes exactly
 * (dime_mime_join); for a chunk 34 that is not our encoding (another implementation's), a
 * rendering: chunks 33 and 34 as the header block, then the single display part as the body, or
 * every part in a multipart/mixed.
 * Returns: DIME_OK, DIME_E_NOMEM, DIME_E_LIMIT, DIME_E_INVALID.
 * Out: *out (malloc'd: the caller wipes and frees it), *out_len; NULL/0 on failure. */
DIME_MUST_CHECK int dime_msg_opened_mail(uint8_t **out, size_t *out_len,
					 const struct dime_msg_opened *o);

/* ---- bounce (docs/bounce.md) ---- */

#define DIME_MSG_BOUNCE_MAGIC	   1849u
#define DIME_MSG_BOUNCE_REASON_MAX 1024u

enum dime_msg_bounce_code {
	DIME_BOUNCE_UNKNOWN_RECIPIENT = 1,
	DIME_BOUNCE_REFUSED = 2,
	DIME_BOUNCE_TOO_LARGE = 3,
	DIME_BOUNCE_SIGNET_CHANGED = 4,
	DIME_BOUNCE_TEMPORARY = 5,
	DIME_BOUNCE_OTHER = 255
};

/* What a verified bounce says: the reason, and the chunk 4 half of the envelope (author and
 * destination) the origin reads with its own key. */
struct dime_msg_bounce_info {
	enum dime_msg_bounce_code code;
	char reason[DIME_MSG_BOUNCE_REASON_MAX + 1];
	struct dime_msg_envelope env;
	uint8_t with_display; /* 249 and the display chunks were returned and verified */
};

/* Destination: build the bounce object for a message it accepts (dime_msg_accept must pass with
 * dest_key and p->origin): chunks 2, 4, 5, 33, 34 and 248 copied unchanged, plus the display
 * chunks and 249 when with_display and the message has 249.
 * In: reason: UTF-8 text, at most DIME_MSG_BOUNCE_REASON_MAX bytes (may be empty).
 * Returns: as dime_msg_accept, plus DIME_E_INVALID (bad code or reason, no chunk 248).
 * Out: *out (owned: dime_msg_free), *out_len; NULL/0 on failure. *why. */
DIME_MUST_CHECK int dime_msg_bounce(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
				    const char **why, const uint8_t *in, size_t in_len,
				    uint32_t dest_key, const struct dime_msg_parties *p,
				    enum dime_msg_bounce_code code, const char *reason,
				    int with_display);

/* Origin: check that a bounce refers to a message it signed: open its keyslot of 248 (and 249)
 * with org_key, verify the signature over the returned chunks with origin's POK or a SOK with
 * DIME_SOK_MESSAGES, then open chunk 4 for the envelope.
 * Returns: DIME_OK, DIME_E_TRUNCATED, DIME_E_MALFORMED, DIME_E_TRAILING, DIME_E_LIMIT,
 *          DIME_E_BADSIG, DIME_E_INVALID, DIME_E_NOTFOUND, DIME_E_NOMEM.
 * Out: *info, zeroed on failure. *why. */
DIME_MUST_CHECK int dime_msg_bounce_verify(const struct dime_ks *ks,
					   struct dime_msg_bounce_info *info, const char **why,
					   const uint8_t *in, size_t in_len, uint32_t org_key,
					   const struct dime_signet *origin);

/* The framing checks of dime_msg_bounce_verify alone (magic, length, reason, chunk order and
 * sizes), without a key: is in a bounce object at all?
 * Returns: DIME_OK, DIME_E_TRUNCATED, DIME_E_MALFORMED, DIME_E_TRAILING, DIME_E_LIMIT,
 *          DIME_E_NOMEM. *why. Thread-safe; borrows in. */
DIME_MUST_CHECK int dime_msg_bounce_frame(const char **why, const uint8_t *in, size_t in_len);

/* ---- re-key (docs/rekey.md) ---- */

/* A re-keyed message is a container: [magic 1850][4-byte length] { record ; the original
 * message bytes unchanged }. The record holds the recipient's chunk keys rewrapped for a new
 * signet under a fresh ephemeral key; every signature of the message still verifies, since
 * none of its bytes change. Every function above accepts the container: the author, origin and
 * destination ignore the record; the recipient (dime_msg_open, dime_msg_envelope_peek) opens
 * its keyslots from the record, with the key of the record's new signet, and then requires
 * p->recipient: it must be the record's new signet, its identifier the envelope's Recipient,
 * and the record's old fingerprint the envelope's Recipient-Signet (else DIME_E_BADSIG).
 * dime_msg_dump reports the inner message's chunks with offsets from the start of the
 * container. */
#define DIME_MSG_REKEY_MAGIC	 1850u
#define DIME_MSG_REKEY_VERSION	 1u
#define DIME_MSG_REKEY_MAX_BYTES 0x60000000u /* a DIME_MSG_MAX_BYTES message plus its record */

/* What a message's framing says about re-keying. */
struct dime_msg_rekey_info {
	int rekeyed;		       /* 1: a container (the fields below are set), 0: plain */
	uint8_t old_fp[DIME_FP_BYTES]; /* crypto fingerprint the envelope names as recipient */
	uint8_t new_fp[DIME_FP_BYTES]; /* crypto fingerprint of the signet the record is for */
	size_t n_slots;		       /* keyslots in the record */
	struct dime_view record;       /* the record: version octet through the last keyslot */
	struct dime_view message;      /* the message carried (the whole input when plain) */
};

/* Parse a message's framing (as dime_msg_dump, container included) and say whether it is
 * re-keyed. NOTHING IS VERIFIED: the fingerprints are what the record claims; use them only to
 * look up the signets, then dime_msg_open decides.
 * Returns: DIME_OK, or the framing errors of dime_msg_dump.
 * Out: *info, views into in; zeroed on failure. *why. Thread-safe; borrows in. */
DIME_MUST_CHECK int dime_msg_rekey_info(struct dime_msg_rekey_info *info, const char **why,
					const uint8_t *in, size_t in_len);

/* Recipient: re-key a message for new_signet, so that it opens with new_signet's key alone.
 * First the message is opened exactly as dime_msg_open(.., DIME_ACTOR_RECIPIENT, old_key, p)
 * would (a message that would not open is never re-keyed; the plaintext is wiped at once);
 * then every recipient keyslot is opened with old_key and sealed again under the KEK of a
 * fresh secp256k1 ephemeral key and new_signet's encryption key. A re-keyed input gets its
 * record REPLACED (old_key is then the key of its record's new signet); the output never holds
 * more than one record. The original message bytes (tracing prefix included) are copied
 * bit-identical, so every original signature still verifies.
 * In: old_key: the DIME_KEY_USER key id that opens in as the recipient; new_signet: a user
 *     signet with an encryption key whose identifier is the envelope's Recipient;
 *     p: as for dime_msg_open as the recipient (author and origin required); p->recipient is
 *     the signet of old_key, required when in is re-keyed.
 * Returns: as dime_msg_open, plus DIME_E_INVALID (new_signet unusable or not the envelope's
 *          recipient), DIME_E_LIMIT (output over DIME_MSG_REKEY_MAX_BYTES).
 * Out: *out (owned: dime_msg_free), *out_len; NULL/0 on failure. *why.
 * Every secret (chunk keys, ECDH output, the ephemeral private key) is wiped on every path. */
DIME_MUST_CHECK int dime_msg_rekey(const struct dime_ks *ks, uint8_t **out, size_t *out_len,
				   const char **why, const uint8_t *in, size_t in_len,
				   uint32_t old_key, const struct dime_signet *new_signet,
				   const struct dime_msg_parties *p);

/* Wipe and free what dime_msg_open returned, and zero *o. NULL-safe. */
void dime_msg_opened_free(struct dime_msg_opened *o);

/* Wipe len bytes of p and free a buffer returned by dime_msg_wrap / dime_msg_origin_sign.
 * NULL-safe. */
void dime_msg_free(uint8_t *p, size_t len);

/* ---- batches (pipeline workers) ----
 *
 * A batch call runs n jobs of one operation, so that their ECDH computations and signature
 * verifications go through one batched engine call each (dime_ks_ecdh_batch per distinct key
 * id, dime_secp_ecdh_x_batch, dime_ed25519_verify_batch) instead of n separate ones.
 *
 * Exactness: every job's rc, why (the same static string), env and out / opened are exactly
 * what the one-at-a-time function returns for that job's arguments (for wrap, up to the random
 * parts: ephemeral key, chunk keys, IVs, padding, keyslot nonces). Jobs are independent: they
 * may name different parties and keys, and one job's bad input never changes another's result.
 * How: KEKs come from a table filled before the jobs run; every signature check is recorded
 * instead of being made, and all of them go to one dime_ed25519_verify_batch call at the end.
 * A job whose checks all pass keeps the result of that run (no later step depends on a
 * signature's verdict, only on its passing); a job with any failing check (or any check the
 * batch cannot decide cheaply) is released and run again one at a time, which gives the
 * verdict, why and outputs of the single call. Outputs are written only after the verdicts:
 * nothing decrypted from a job whose signatures fail is ever visible to the caller.
 * Work done for a job before its verdict (decrypting, GZIP) is bounded by the same limits as
 * the single call, and anyone able to make an engine do it can also sign the content with
 * a signet of their own, so deferring the checks gives an attacker nothing new.
 *
 * Memory: each job's in (in_len bytes), p and the signets it points to are borrowed and must
 * stay valid and unchanged for the whole call. The out fields are overwritten, not freed (the
 * caller releases earlier results first); what a job returns is owned exactly as from the
 * single call (out: dime_msg_free; opened: dime_msg_opened_free). The batch itself allocates
 * working memory (tables, recorded checks, copies of signed plaintext, all wiped) that is
 * freed before it returns.
 *
 * Thread-safety: as the single calls; distinct batches may run concurrently on one keystore.
 * Returns: DIME_OK when every job's rc is DIME_OK, otherwise the first failing job's rc;
 *          DIME_E_INVALID (no job touched) when jobs is NULL with n > 0. Only a summary: each
 *          job's rc is its result, so the return value may be ignored (not DIME_MUST_CHECK). */

struct dime_msg_job {
	/* in */
	const uint8_t *in; /* the message (wrap: the RFC 5322 mail; bounce: the bounce object) */
	size_t in_len;
	const struct dime_msg_parties *p;    /* bounce verify: p->origin is the origin */
	uint32_t key;			     /* the actor's key id for this job */
	struct dime_msg_bounce_info *bounce; /* bounce verify: where the info goes; may be NULL */
	struct dime_msg_keks *keks;	     /* KEKs a peek already derived for this job, or NULL */
	uint8_t own; /* origin sign: in is our own wrap output (DIME_MSG_SIGN_OWN) */
	/* out */
	int rc;
	const char *why;
	struct dime_msg_envelope env; /* origin sign, accept: as the single call; open: a copy of
				       * opened.env; bounce verify: the info's env; wrap: zero */
	uint8_t *out;		      /* origin sign, wrap: owned, dime_msg_free */
	size_t out_len;
	struct dime_msg_opened opened; /* open: dime_msg_opened_free */
	/* out: what batching did for this job (for benchmarks; not part of the result) */
	uint32_t n_batched; /* signature checks of this job that went into the batch call */
	uint8_t rerun;	    /* 1: a check failed in the batch, and the job ran again alone */
};

/* A caller-owned memo of key-encryption keys. An actor that peeks at an envelope to find
 * its key and signets, then runs its operation, would derive the same KEK twice (one ECDH
 * each); a peek through a memo records it and a batch job pointing at the memo looks it up.
 * Entries are exactly what the engine derives for (key id, ephemeral key), so results do not
 * change. The memo holds secrets: it is wiped by clear and free. One memo per thread.
 * dime_msg_keks_new returns DIME_OK or DIME_E_NOMEM; a full memo just stops recording. */
struct dime_msg_keks;
DIME_MUST_CHECK int dime_msg_keks_new(struct dime_msg_keks **out, size_t cap);
void dime_msg_keks_clear(struct dime_msg_keks *c);
void dime_msg_keks_free(struct dime_msg_keks *c); /* NULL-safe */

/* dime_msg_envelope_peek, recording the KEKs it derives in memo (NULL: plain peek). */
DIME_MUST_CHECK int dime_msg_envelope_peek_memo(struct dime_msg_keks *memo,
						const struct dime_ks *ks,
						struct dime_msg_envelope *env, const char **why,
						const uint8_t *in, size_t in_len,
						enum dime_msg_actor as, uint32_t key);

/* dime_msg_origin_sign for each job (org_key = job->key), with one sign_key for all. */
int dime_msg_origin_sign_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
			       uint32_t sign_key);
/* dime_msg_accept for each job (dest_key = job->key). */
int dime_msg_accept_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n);
/* dime_msg_open for each job, all as actor as (key = job->key). */
int dime_msg_open_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
			enum dime_msg_actor as);
/* dime_msg_bounce_verify for each job (org_key = job->key, origin = job->p->origin, or NULL
 * when job->p is NULL). */
int dime_msg_bounce_verify_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n);
/* dime_msg_wrap_mail for each job (mail = job->in, author_key = job->key): it signs and does
 * not verify; the 4 ECDHs of every job go through one dime_secp_ecdh_x_batch call. */
int dime_msg_wrap_mail_batch(const struct dime_ks *ks, struct dime_msg_job *jobs, size_t n,
			     const struct dime_msg_wrap_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
