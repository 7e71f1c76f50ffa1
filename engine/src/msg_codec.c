/* D/MIME framing (parse, dump), the standard payload (length, flags, padding), the padding
 * generators, and the envelope texts of chunks 4 and 5. Layout: reference-format.md §6 as
 * WIRE.md settles it; padding and flags from the spec's Part 6. No keys here. */

#include <stdlib.h>
#include <string.h>

#include "dime/codec.h"
#include "dime/crypto.h"
#include "msg_int.h"
#include "rd.h"

/* ---- reasons: static strings naming the chunk type ---- */

/* clang-format off */
#define MSG_TYPES(m)                                                                               \
	m(2) m(3) m(4) m(5) m(33) m(34) m(65) m(66) m(67) m(129) m(130) m(131) m(225) m(226)       \
	m(248) m(249) m(255)
#define MSG_WHY_ROW(t)                                                                             \
	{"chunk " #t ": keyslot does not open",                                                    \
	 "chunk " #t ": plaintext signature does not verify",                                      \
	 "chunk " #t ": data length exceeds the payload",                                          \
	 "chunk " #t ": data length is zero",                                                      \
	 "chunk " #t ": reserved flag bit set",                                                    \
	 "chunk " #t ": alternate-key flag is not supported",                                      \
	 "chunk " #t ": pad octet differs from the padding length",                                \
	 "chunk " #t ": padding byte differs from the pad octet",                                  \
	 "chunk " #t ": alternate padding does not add up",                                        \
	 "chunk " #t ": spanning flag without a continuation chunk",                               \
	 "chunk " #t ": data spanned over more than 4 chunks unnecessarily",                       \
	 "chunk " #t ": GZIP data does not decompress",                                            \
	 "chunk " #t ": signature does not verify",                                                \
	 "chunk " #t ": decryption failed",                                                        \
	 "chunk " #t ": out of order",                                                             \
	 "chunk " #t ": appears more than once",                                                   \
	 "chunk " #t ": payload length is not valid for the type",                                 \
	 "chunk " #t ": required chunk missing",                                                   \
	 "chunk " #t ": data over the size limit",                                                 \
	 "chunk " #t ": envelope text malformed",                                                  \
	 "chunk " #t ": spanning flag on a chunk that cannot span",                                \
	 "chunk " #t ": truncated",                                                          \
	 "chunk " #t ": GZIP flag set, but this build has no decompressor yet"},
#define MSG_TYPE_ENTRY(t) t,
/* clang-format on */

static const uint8_t msg_types[] = {MSG_TYPES(MSG_TYPE_ENTRY)};
static const char *const msg_why_tab[][MSG_R_COUNT] = {MSG_TYPES(MSG_WHY_ROW)};

const char *
msg_why(uint8_t type, enum msg_rule rule)
{
	for (size_t i = 0; i < sizeof(msg_types); i++)
		if (msg_types[i] == type)
			return msg_why_tab[i][rule];
	return "chunk of unknown type";
}

static void
msg_set_why(const char **why, const char *s)
{
	if (why != NULL)
		*why = s;
}

/* ---- chunk types ---- */

const char *
dime_msg_chunk_name(uint8_t type)
{
	switch (type) {
	case DIME_CHUNK_EPHEMERAL: return "ephemeral";
	case DIME_CHUNK_ALTERNATE: return "alternate";
	case DIME_CHUNK_ORIGIN: return "origin";
	case DIME_CHUNK_DESTINATION: return "destination";
	case DIME_CHUNK_COMMON: return "common";
	case DIME_CHUNK_HEADERS: return "headers";
	case DIME_CHUNK_DISPLAY_MULTI: return "display-multipart";
	case DIME_CHUNK_DISPLAY_ALT: return "display-multipart-alternative";
	case DIME_CHUNK_DISPLAY: return "display-content";
	case DIME_CHUNK_ATTACH_MULTI: return "attachments-multipart";
	case DIME_CHUNK_ATTACH_ALT: return "attachments-multipart-alternative";
	case DIME_CHUNK_ATTACH: return "attachments-content";
	case DIME_CHUNK_TREE_SIG: return "author-tree-signature";
	case DIME_CHUNK_AUTHOR_SIG: return "author-signature";
	case DIME_CHUNK_META_BOUNCE: return "org-metadata-bounce-signature";
	case DIME_CHUNK_DISPLAY_BOUNCE: return "org-display-bounce-signature";
	case DIME_CHUNK_ORG_SIG: return "org-signature";
	default: return "unknown";
	}
}

uint8_t
dime_msg_chunk_actors(uint8_t type)
{
	const uint8_t a = DIME_ACTOR_AUTHOR, o = DIME_ACTOR_ORIGIN, d = DIME_ACTOR_DESTINATION,
		      r = DIME_ACTOR_RECIPIENT;

	switch (type) {
	case DIME_CHUNK_ORIGIN:
	case DIME_CHUNK_TREE_SIG:
	case DIME_CHUNK_AUTHOR_SIG: return (uint8_t)(a | o | r);
	case DIME_CHUNK_DESTINATION: return (uint8_t)(a | d | r);
	case DIME_CHUNK_ALTERNATE:
	case DIME_CHUNK_COMMON:
	case DIME_CHUNK_HEADERS:
	case DIME_CHUNK_DISPLAY_MULTI:
	case DIME_CHUNK_DISPLAY_ALT:
	case DIME_CHUNK_DISPLAY:
	case DIME_CHUNK_ATTACH_MULTI:
	case DIME_CHUNK_ATTACH_ALT:
	case DIME_CHUNK_ATTACH: return (uint8_t)(a | r);
	case DIME_CHUNK_META_BOUNCE:
	case DIME_CHUNK_DISPLAY_BOUNCE:
	case DIME_CHUNK_ORG_SIG: return (uint8_t)(a | o | d | r);
	default: return 0;
	}
}

const char *
dime_msg_actors_str(uint8_t actors)
{
	static const char *const s[16] = {"",  "A",  "O",  "AO",  "D",	"AD",  "OD",  "AOD",
					  "R", "AR", "OR", "AOR", "DR", "ADR", "ODR", "AODR"};

	return s[actors & 15u];
}

static int
msg_type_known(uint8_t type)
{
	return type == DIME_CHUNK_EPHEMERAL || dime_msg_chunk_actors(type) != 0;
}

/* Content chunks: 3 and the display and attachment sections (accepted as AR content). */
int
msg_type_content(uint8_t type)
{
	return type == DIME_CHUNK_ALTERNATE || (type >= 65 && type <= 67) ||
	       (type >= 129 && type <= 131);
}

int
msg_type_sig(uint8_t type)
{
	return type >= DIME_CHUNK_TREE_SIG;
}

/* Ordering rank: ascending type order, except that the display types (65-67) share one
 * section, as do the attachment types (129-131); only they may repeat (spec Part 6). */
static unsigned
msg_rank(uint8_t type)
{
	if (type >= 65 && type <= 67)
		return 67;
	if (type >= 129 && type <= 131)
		return 131;
	return type;
}

static int
msg_rank_repeatable(unsigned rank)
{
	return rank == 67 || rank == 131;
}

/* ---- framing ---- */

static int
msg_payload_len_ok(uint8_t type, size_t len)
{
	if (type == DIME_CHUNK_EPHEMERAL)
		return len == DIME_SECP_PUB_BYTES;
	if (msg_type_sig(type))
		return len == DIME_SIG_BYTES;
	/* a standard payload: header, at least one data byte, AES-aligned */
	return len > DIME_MSG_PAYLOAD_HEADER_BYTES && len % DIME_AES_BLOCK_BYTES == 0 &&
	       len <= DIME_MSG_PAYLOAD_MAX_BYTES;
}

/* One pass over the chunks; chunks == NULL counts only. */
static int
msg_frame(struct dime_msg_dump *d, struct dime_msg_chunk_info *chunks, size_t cap, const char **why,
	  const uint8_t *in, size_t in_len)
{
	struct dime_rd r, body;
	unsigned last_rank = 0, seen_required = 0;
	size_t n = 0;
	uint32_t total;

	dime_rd_init(&r, in, in_len);
	if (in_len > DIME_MSG_MAX_BYTES) {
		msg_set_why(why, "message over DIME_MSG_MAX_BYTES");
		return DIME_E_LIMIT;
	}
	if (in_len >= 2 && in[0] == (DIME_MSG_TRACING_MAGIC >> 8) &&
	    in[1] == (DIME_MSG_TRACING_MAGIC & 0xffu)) {
		uint16_t tlen;

		(void)dime_rd_be16(&r);
		tlen = dime_rd_be16(&r);
		d->tracing.p = dime_rd_take(&r, tlen);
		if (r.err != DIME_OK) {
			msg_set_why(why, "tracing prefix truncated");
			return r.err;
		}
		d->tracing.len = tlen;
	}
	d->msg_offset = r.off;
	if (dime_rd_be16(&r) != DIME_MSG_MAGIC && r.err == DIME_OK) {
		msg_set_why(why, "message magic is not 1847");
		return DIME_E_MALFORMED;
	}
	total = dime_rd_be32(&r);
	if (r.err != DIME_OK) {
		msg_set_why(why, "message header truncated");
		return r.err;
	}
	if (total > dime_rd_left(&r)) {
		msg_set_why(why, "message shorter than its 4-byte length");
		return DIME_E_TRUNCATED;
	}
	if (total < dime_rd_left(&r)) {
		msg_set_why(why, "bytes after the message's 4-byte length");
		return DIME_E_TRAILING;
	}
	body = r; /* chunks run to the end of the input */
	while (dime_rd_left(&body) > 0) {
		size_t off = body.off, plen, nslots;
		const uint8_t *payload, *slots;
		uint8_t type = dime_rd_u8(&body), actors;
		unsigned rank;

		plen = dime_rd_be24(&body);
		if (body.err != DIME_OK) {
			msg_set_why(why, "chunk header truncated");
			return body.err;
		}
		if (!msg_type_known(type)) {
			msg_set_why(why, "chunk type unknown");
			return DIME_E_MALFORMED;
		}
		rank = msg_rank(type);
		if (rank < last_rank) {
			msg_set_why(why, msg_why(type, MSG_R_ORDER));
			return DIME_E_MALFORMED;
		}
		if (rank == last_rank && !msg_rank_repeatable(rank)) {
			msg_set_why(why, msg_why(type, MSG_R_TWICE));
			return DIME_E_MALFORMED;
		}
		last_rank = rank;
		actors = dime_msg_chunk_actors(type);
		nslots = (size_t)__builtin_popcount(actors);
		payload = dime_rd_take(&body, plen);
		slots = dime_rd_take(&body, nslots * DIME_MSG_KEYSLOT_BYTES);
		if (body.err != DIME_OK) {
			msg_set_why(why, msg_why(type, MSG_R_TRUNCATED));
			return body.err;
		}
		if (!msg_payload_len_ok(type, plen)) {
			msg_set_why(why, msg_why(type, MSG_R_PLEN));
			return DIME_E_MALFORMED;
		}
		switch (type) {
		case DIME_CHUNK_EPHEMERAL: seen_required |= 1u; break;
		case DIME_CHUNK_ORIGIN: seen_required |= 2u; break;
		case DIME_CHUNK_DESTINATION: seen_required |= 4u; break;
		case DIME_CHUNK_COMMON: seen_required |= 8u; break;
		case DIME_CHUNK_TREE_SIG: seen_required |= 16u; break;
		case DIME_CHUNK_AUTHOR_SIG: seen_required |= 32u; break;
		case DIME_CHUNK_ORG_SIG: seen_required |= 64u; break;
		default: break;
		}
		if (chunks != NULL) {
			struct dime_msg_chunk_info *c;

			if (n == cap) {
				msg_set_why(why, "more chunks than the caller's array holds");
				return DIME_E_NOSPACE;
			}
			c = &chunks[n];
			c->type = type;
			c->actors = actors;
			c->n_slots = (uint8_t)nslots;
			c->offset = off;
			c->chunk.p = in + off;
			c->chunk.len = body.off - off;
			c->payload.p = payload;
			c->payload.len = plen;
			c->slots.p = slots;
			c->slots.len = nslots * DIME_MSG_KEYSLOT_BYTES;
		}
		n++;
	}
	if (seen_required != 127u) {
		static const uint8_t req[] = {2, 4, 5, 33, 225, 226, 255};

		for (unsigned i = 0; i < 7; i++)
			if ((seen_required & (1u << i)) == 0) {
				msg_set_why(why, msg_why(req[i], MSG_R_MISSING));
				break;
			}
		return DIME_E_MALFORMED;
	}
	d->n_chunks = n;
	return DIME_OK;
}

/* ---- the re-key container (docs/rekey.md) ---- */

int
msg_rk_split(struct msg_rk *rk, const char **why, const uint8_t *in, size_t in_len)
{
	struct dime_rd r;
	uint32_t total, n;
	uint8_t version;
	const uint8_t *rec;

	memset(rk, 0, sizeof(*rk));
	if (in_len < 2 || in[0] != (DIME_MSG_REKEY_MAGIC >> 8) ||
	    in[1] != (DIME_MSG_REKEY_MAGIC & 0xffu))
		return DIME_E_NOTFOUND;
	if (in_len > DIME_MSG_REKEY_MAX_BYTES) {
		msg_set_why(why, "re-keyed message over DIME_MSG_REKEY_MAX_BYTES");
		return DIME_E_LIMIT;
	}
	dime_rd_init(&r, in, in_len);
	(void)dime_rd_be16(&r);
	total = dime_rd_be32(&r);
	if (r.err != DIME_OK) {
		msg_set_why(why, "re-key container header truncated");
		return r.err;
	}
	if (total > dime_rd_left(&r)) {
		msg_set_why(why, "re-key container shorter than its 4-byte length");
		return DIME_E_TRUNCATED;
	}
	if (total < dime_rd_left(&r)) {
		msg_set_why(why, "bytes after the re-key container's 4-byte length");
		return DIME_E_TRAILING;
	}
	rec = r.p + r.off;
	version = dime_rd_u8(&r);
	dime_rd_copy(&r, rk->old_fp, DIME_FP_BYTES);
	dime_rd_copy(&r, rk->new_fp, DIME_FP_BYTES);
	dime_rd_copy(&r, rk->eph, DIME_SECP_PUB_BYTES);
	n = dime_rd_be32(&r);
	if (r.err != DIME_OK) {
		msg_set_why(why, "re-key record truncated");
		goto fail;
	}
	if (version != DIME_MSG_REKEY_VERSION) {
		msg_set_why(why, "re-key record: unknown version");
		dime_rd_fail(&r, DIME_E_MALFORMED);
		goto fail;
	}
	if (!dime_secp_pub_valid(rk->eph)) {
		msg_set_why(why,
			    "re-key record: ephemeral key is not a compressed secp256k1 point");
		dime_rd_fail(&r, DIME_E_MALFORMED);
		goto fail;
	}
	/* bounded by the bytes present before anything is taken; msg_rk_check then bounds it by
	 * the message's chunks */
	if (n > dime_rd_left(&r) / MSG_RK_ENTRY_BYTES) {
		msg_set_why(why, "re-key record: more keyslots than bytes");
		dime_rd_fail(&r, DIME_E_TRUNCATED);
		goto fail;
	}
	rk->entries = dime_rd_take(&r, (size_t)n * MSG_RK_ENTRY_BYTES);
	rk->n_slots = n;
	rk->record.p = rec;
	rk->record.len = (size_t)(r.p + r.off - rec);
	if (dime_rd_left(&r) == 0) {
		msg_set_why(why, "re-key container: no message after the record");
		dime_rd_fail(&r, DIME_E_TRUNCATED);
		goto fail;
	}
	rk->message.p = r.p + r.off;
	rk->message.len = dime_rd_left(&r);
	rk->present = 1;
	return DIME_OK;
fail:
	memset(rk, 0, sizeof(*rk));
	return r.err;
}

int
msg_rk_check(const struct msg_rk *rk, const char **why)
{
	struct dime_rd r, e;
	size_t i = 0, j = 0;

	/* the message framed cleanly (msg_frame), so this walk only re-reads lengths */
	dime_rd_init(&r, rk->message.p, rk->message.len);
	dime_rd_init(&e, rk->entries, rk->n_slots * MSG_RK_ENTRY_BYTES);
	if (rk->message.len >= 2 && rk->message.p[0] == (DIME_MSG_TRACING_MAGIC >> 8) &&
	    rk->message.p[1] == (DIME_MSG_TRACING_MAGIC & 0xffu)) {
		(void)dime_rd_be16(&r);
		(void)dime_rd_take(&r, dime_rd_be16(&r));
	}
	(void)dime_rd_take(&r, DIME_MSG_HEADER_BYTES);
	while (r.err == DIME_OK && dime_rd_left(&r) > 0) {
		uint8_t type = dime_rd_u8(&r), actors = dime_msg_chunk_actors(type);
		size_t plen = dime_rd_be24(&r);

		(void)dime_rd_take(&r, plen);
		(void)dime_rd_take(&r, (size_t)__builtin_popcount(actors) * DIME_MSG_KEYSLOT_BYTES);
		if ((actors & DIME_ACTOR_RECIPIENT) != 0) {
			if (j == rk->n_slots || dime_rd_be32(&e) != i) {
				msg_set_why(why,
					    "re-key record: keyslots do not match the message's "
					    "chunks");
				return DIME_E_MALFORMED;
			}
			(void)dime_rd_take(&e, DIME_MSG_KEYSLOT_BYTES);
			j++;
		}
		i++;
	}
	if (r.err != DIME_OK || e.err != DIME_OK || j != rk->n_slots) {
		msg_set_why(why, "re-key record: keyslots do not match the message's chunks");
		return DIME_E_MALFORMED;
	}
	return DIME_OK;
}

/* A container's framing: the record's, then the message's, with chunk offsets from the start
 * of the container. */
static int
msg_frame_any(struct dime_msg_dump *d, struct dime_msg_chunk_info *chunks, size_t cap,
	      const char **why, const uint8_t *in, size_t in_len)
{
	struct msg_rk rk;
	size_t off;
	int rc;

	rc = msg_rk_split(&rk, why, in, in_len);
	if (rc == DIME_E_NOTFOUND)
		return msg_frame(d, chunks, cap, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	rc = msg_frame(d, chunks, cap, why, rk.message.p, rk.message.len);
	if (rc == DIME_OK)
		rc = msg_rk_check(&rk, why);
	if (rc != DIME_OK)
		return rc;
	off = (size_t)(rk.message.p - in);
	d->msg_offset += off;
	for (size_t i = 0; chunks != NULL && i < d->n_chunks; i++)
		chunks[i].offset += off;
	return DIME_OK;
}

int
dime_msg_dump(struct dime_msg_dump *d, struct dime_msg_chunk_info *chunks, size_t chunks_cap,
	      const char **why, const uint8_t *in, size_t in_len)
{
	int rc;

	msg_set_why(why, "");
	if (d == NULL || (in == NULL && in_len > 0) || (chunks == NULL && chunks_cap > 0)) {
		msg_set_why(why, "invalid argument");
		return DIME_E_INVALID;
	}
	memset(d, 0, sizeof(*d));
	if (chunks != NULL)
		memset(chunks, 0, chunks_cap * sizeof(*chunks));
	rc = msg_frame_any(d, chunks, chunks_cap, why, in, in_len);
	if (rc != DIME_OK) {
		memset(d, 0, sizeof(*d));
		if (chunks != NULL)
			memset(chunks, 0, chunks_cap * sizeof(*chunks));
	}
	return rc;
}

void
msg_parsed_free(struct msg_parsed *m)
{
	free(m->ch);
	memset(m, 0, sizeof(*m));
}

int
msg_parse(struct msg_parsed *m, const char **why, const uint8_t *in, size_t in_len)
{
	struct dime_msg_dump d;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = dime_msg_dump(&d, NULL, 0, why, in, in_len);
	if (rc != DIME_OK)
		return rc;
	m->ch = calloc(d.n_chunks, sizeof(*m->ch));
	if (m->ch == NULL) {
		msg_set_why(why, "out of memory");
		return DIME_E_NOMEM;
	}
	rc = dime_msg_dump(&m->d, m->ch, d.n_chunks, why, in, in_len);
	if (rc != DIME_OK) {
		msg_parsed_free(m);
		return rc;
	}
	m->in = in;
	m->in_len = in_len;
	/* framed above, so this only fills m->rk (DIME_E_NOTFOUND: a plain message, rk zeroed) */
	(void)msg_rk_split(&m->rk, NULL, in, in_len);
	m->i_eph = m->i_origin = m->i_dest = m->i_common = m->i_headers = MSG_NONE;
	m->i_tree = m->i_author = m->i_meta = m->i_disp = m->i_org = MSG_NONE;
	m->content_first = m->content_end = MSG_NONE;
	for (size_t i = 0; i < m->d.n_chunks; i++) {
		switch (m->ch[i].type) {
		case DIME_CHUNK_EPHEMERAL: m->i_eph = i; break;
		case DIME_CHUNK_ORIGIN: m->i_origin = i; break;
		case DIME_CHUNK_DESTINATION: m->i_dest = i; break;
		case DIME_CHUNK_COMMON: m->i_common = i; break;
		case DIME_CHUNK_HEADERS: m->i_headers = i; break;
		case DIME_CHUNK_TREE_SIG: m->i_tree = i; break;
		case DIME_CHUNK_AUTHOR_SIG: m->i_author = i; break;
		case DIME_CHUNK_META_BOUNCE: m->i_meta = i; break;
		case DIME_CHUNK_DISPLAY_BOUNCE: m->i_disp = i; break;
		case DIME_CHUNK_ORG_SIG: m->i_org = i; break;
		default:
			if (msg_type_content(m->ch[i].type)) {
				if (m->content_first == MSG_NONE)
					m->content_first = i;
				m->content_end = i + 1;
			}
			break;
		}
	}
	if (m->content_first == MSG_NONE)
		m->content_first = m->content_end = 0;
	memcpy(m->eph, m->ch[m->i_eph].payload.p, DIME_SECP_PUB_BYTES);
	if (!dime_secp_pub_valid(m->eph)) {
		msg_set_why(why, "chunk 2: ephemeral key is not a compressed secp256k1 point");
		msg_parsed_free(m);
		return DIME_E_MALFORMED;
	}
	return DIME_OK;
}

/* ---- the standard payload (spec Part 6 "Encrypted payloads") ---- */

int
msg_payload_decode(struct msg_payload *pl, const char **why, const uint8_t *pt, size_t len,
		   uint8_t type)
{
	struct dime_rd r;
	size_t data_len, padlen;

	memset(pl, 0, sizeof(*pl));
	dime_rd_init(&r, pt, len);
	pl->sig = dime_rd_take(&r, DIME_SIG_BYTES);
	data_len = dime_rd_be24(&r);
	pl->flags = dime_rd_u8(&r);
	pl->pad = dime_rd_u8(&r);
	if (r.err != DIME_OK) {
		msg_set_why(why, msg_why(type, MSG_R_DATALEN));
		memset(pl, 0, sizeof(*pl));
		return DIME_E_BADSIG;
	}
	pl->signed_part.p = pt + DIME_SIG_BYTES;
	pl->signed_part.len = len - DIME_SIG_BYTES;
	if (data_len == 0) {
		msg_set_why(why, msg_why(type, MSG_R_ZERO));
		goto bad;
	}
	if (data_len > dime_rd_left(&r)) {
		msg_set_why(why, msg_why(type, MSG_R_DATALEN));
		goto bad;
	}
	if ((pl->flags & MSG_RESERVED_FLAGS) != 0) {
		msg_set_why(why, msg_why(type, MSG_R_RESERVED));
		goto bad;
	}
	if ((pl->flags & DIME_MSG_FLAG_ALT_KEY) != 0) {
		msg_set_why(why, msg_why(type, MSG_R_ALTKEY));
		goto bad;
	}
	if ((pl->flags & DIME_MSG_FLAG_SPAN) != 0 && !msg_type_content(type)) {
		msg_set_why(why, msg_why(type, MSG_R_SPANTYPE));
		goto bad;
	}
	pl->data.p = dime_rd_take(&r, data_len);
	pl->data.len = data_len;
	padlen = dime_rd_left(&r);
	if ((pl->flags & DIME_MSG_FLAG_ALT_PAD) != 0) {
		/* alternate: the octet counts 16-byte stuffing blocks beyond the alignment */
		size_t align = (16u - (DIME_MSG_PAYLOAD_HEADER_BYTES + data_len) % 16u) % 16u;

		if (padlen != align + 16u * (size_t)pl->pad) {
			msg_set_why(why, msg_why(type, MSG_R_ALTPAD));
			goto bad;
		}
	} else if (pl->pad != (uint8_t)(padlen & 0xffu)) {
		msg_set_why(why, msg_why(type, MSG_R_PADOCT));
		goto bad;
	}
	for (size_t i = 0; i < padlen; i++)
		if (pt[r.off + i] != pl->pad) {
			msg_set_why(why, msg_why(type, MSG_R_PADBYTE));
			goto bad;
		}
	return DIME_OK;
bad:
	memset(pl, 0, sizeof(*pl));
	return DIME_E_BADSIG;
}

int
msg_padding_choose(size_t *padlen, uint8_t *pad_octet, size_t data_len, int alt)
{
	size_t d;
	uint8_t rnd;

	*padlen = 0;
	*pad_octet = 0;
	if (data_len > DIME_MSG_DATA_MAX_BYTES)
		return DIME_E_LIMIT;
	d = DIME_MSG_PAYLOAD_HEADER_BYTES + data_len;
	dime_random(&rnd, 1);
	if (alt) {
		/* spec: alignment (0-15) computed, plus pad_octet 16-byte stuffing blocks; reach
		 * the recommended 256-byte minimum, then add 0-15 random blocks */
		size_t align = (16u - d % 16u) % 16u, blocks = 0;

		if (d + align < 256u)
			blocks = (256u - d - align) / 16u;
		blocks += rnd % 16u;
		while (d + align + 16u * blocks > DIME_MSG_PAYLOAD_MAX_BYTES && blocks > 0)
			blocks--;
		*padlen = align + 16u * blocks;
		*pad_octet = (uint8_t)blocks;
		return DIME_OK;
	}
	/* reference-format §6.4 (dmsg_chunk_padlen_get) */
	if (d < 256u)
		*padlen = (256u - d) + 16u * (rnd % (d / 16u + 1u));
	else
		*padlen = 16u - d % 16u + 16u * (rnd % 16u);
	while (d + *padlen > DIME_MSG_PAYLOAD_MAX_BYTES && *padlen > 16u)
		*padlen -= 16u;
	if (d + *padlen > DIME_MSG_PAYLOAD_MAX_BYTES)
		*padlen = (16u - d % 16u) % 16u; /* a full chunk: alignment only, maybe none */
	*pad_octet = (uint8_t)(*padlen & 0xffu);
	return DIME_OK;
}

/* ---- envelope texts (reference-format §6.5) ---- */

/* Read "Label: <value>\r\n" (open '<', close '>') or "Label: [value]\r\n". */
static int
msg_env_line(struct dime_rd *r, const char *label, char open, char close, struct dime_view *v)
{
	size_t ll = strlen(label);
	const uint8_t *p = dime_rd_take(r, ll);
	size_t start, i;

	if (p == NULL || memcmp(p, label, ll) != 0 || dime_rd_u8(r) != ':' ||
	    dime_rd_u8(r) != ' ' || dime_rd_u8(r) != (uint8_t)open)
		return -1;
	start = r->off;
	for (i = start; i < r->len && r->p[i] != (uint8_t)close; i++)
		if (r->p[i] < 0x21 || r->p[i] > 0x7e)
			return -1;
	if (i == r->len || i == start)
		return -1;
	v->p = r->p + start;
	v->len = i - start;
	(void)dime_rd_take(r, i - start + 1);
	if (dime_rd_u8(r) != '\r' || dime_rd_u8(r) != '\n' || r->err != DIME_OK)
		return -1;
	return 0;
}

static int
msg_env_addr(char out[DIME_MSG_ADDR_MAX], struct dime_view v)
{
	if (v.len >= DIME_MSG_ADDR_MAX)
		return -1;
	memcpy(out, v.p, v.len);
	out[v.len] = 0;
	return 0;
}

static int
msg_env_fp(uint8_t fp[DIME_FP_BYTES], struct dime_view v)
{
	size_t n = 0;

	if (v.len != MSG_FP_B64_LEN ||
	    dime_b64_decode(fp, DIME_FP_BYTES, &n, (const char *)v.p, v.len, DIME_B64_NOPAD) !=
		DIME_OK ||
	    n != DIME_FP_BYTES)
		return -1;
	return 0;
}

int
msg_envelope_parse(struct dime_msg_envelope *env, const char **why, const uint8_t *p, size_t len,
		   int origin_chunk)
{
	struct dime_rd r;
	struct dime_view a, afp, b, bfp;
	int bad;

	dime_rd_init(&r, p, len);
	if (origin_chunk)
		bad = msg_env_line(&r, "Author", '<', '>', &a) ||
		      msg_env_line(&r, "Author-Signet", '[', ']', &afp) ||
		      msg_env_line(&r, "Destination", '<', '>', &b) ||
		      msg_env_line(&r, "Destination-Signet", '[', ']', &bfp);
	else
		bad = msg_env_line(&r, "Recipient", '<', '>', &a) ||
		      msg_env_line(&r, "Recipient-Signet", '[', ']', &afp) ||
		      msg_env_line(&r, "Origin", '<', '>', &b) ||
		      msg_env_line(&r, "Origin-Signet", '[', ']', &bfp);
	if (!bad)
		bad = dime_rd_finish(&r) != DIME_OK;
	if (!bad) {
		if (origin_chunk)
			bad = msg_env_addr(env->author, a) || msg_env_fp(env->author_fp, afp) ||
			      msg_env_addr(env->destination, b) ||
			      msg_env_fp(env->destination_fp, bfp);
		else
			bad = msg_env_addr(env->recipient, a) ||
			      msg_env_fp(env->recipient_fp, afp) || msg_env_addr(env->origin, b) ||
			      msg_env_fp(env->origin_fp, bfp);
	}
	if (bad) {
		msg_set_why(why, msg_why(origin_chunk ? DIME_CHUNK_ORIGIN : DIME_CHUNK_DESTINATION,
					 MSG_R_ENVELOPE));
		return DIME_E_BADSIG;
	}
	if (origin_chunk)
		env->have_origin_chunk = 1;
	else
		env->have_destination_chunk = 1;
	return DIME_OK;
}
