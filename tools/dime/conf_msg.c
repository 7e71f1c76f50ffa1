/* The D/MIME half of `dime conformance`: every dmime and dmime-variant case acted out by each
 * actor its project_expect names, with the parties' own keys and signets, opened plaintexts
 * compared with the .plain files, and every author output re-read, origin-signed and then
 * accepted by the destination and opened by the recipient. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "dime/io.h"
#include "dime/msg.h"

/* The keys and signets of one message's four parties. */
struct cm_parties {
	struct dime_ks *ks;
	uint32_t key[4]; /* author, origin, destination, recipient */
	struct dime_signet *s[4];
	struct dime_msg_parties p;
};

static const char *const cm_roles[4] = {"author", "origin", "destination", "recipient"};

static void
cm_free(struct cm_parties *cp)
{
	for (int i = 0; i < 4; i++)
		dime_signet_free(cp->s[i]);
	dime_ks_free(cp->ks);
	memset(cp, 0, sizeof(*cp));
}

static int
cm_load(struct cm_parties *cp, const struct conf *c, const json_t *parties, const char **why)
{
	memset(cp, 0, sizeof(*cp));
	if (dime_ks_new(&cp->ks) != DIME_OK) {
		*why = "out of memory";
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		const json_t *party = conf_party(c, conf_str(parties, cm_roles[i]));
		uint8_t *buf = NULL;
		size_t len = 0;
		int rc;

		if (party == NULL) {
			*why = "a party is missing from the manifest";
			return -1;
		}
		if (conf_signet(&cp->s[i], why, c, conf_str(party, "signet_bin"), 1) != 0)
			return -1;
		if (conf_read(&buf, &len, c, conf_str(party, "keys_file")) != 0) {
			*why = "keys file missing";
			return -1;
		}
		rc = dime_ks_load(cp->ks, &cp->key[i], buf, len);
		dime_wipe(buf, len);
		free(buf);
		if (rc != DIME_OK) {
			*why = "keys file does not load";
			return -1;
		}
	}
	cp->p.author = cp->s[0];
	cp->p.origin = cp->s[1];
	cp->p.destination = cp->s[2];
	cp->p.recipient = cp->s[3];
	return 0;
}

/* Act as role on msg. Returns DIME_OK or the failure; *o is filled for author/recipient. */
static int
cm_act(const struct cm_parties *cp, int role, struct dime_msg_opened *o, const char **why,
       const uint8_t *msg, size_t len)
{
	struct dime_msg_envelope env;

	memset(o, 0, sizeof(*o));
	switch (role) {
	case 0:
		return dime_msg_open(cp->ks, o, why, msg, len, DIME_ACTOR_AUTHOR, cp->key[0],
				     &cp->p);
	case 1: return dime_msg_origin_check(cp->ks, &env, why, msg, len, cp->key[1], &cp->p);
	case 2: return dime_msg_accept(cp->ks, &env, why, msg, len, cp->key[2], &cp->p);
	default:
		return dime_msg_open(cp->ks, o, why, msg, len, DIME_ACTOR_RECIPIENT, cp->key[3],
				     &cp->p);
	}
}

static int
cm_same(const struct dime_view *v, const uint8_t *p, size_t n)
{
	return v->len == n && (n == 0 || memcmp(v->p, p, n) == 0);
}

/* Compare what role opened with the manifest's plaintext. Returns NULL or the difference. */
static const char *
cm_check_plain(const struct conf *c, const json_t *pt, const struct dime_msg_opened *o,
	       const char *role)
{
	static const char *const labels[] = {"Date", "To", "CC", "From", "Organization", "Subject"};
	static char why[160];
	const json_t *common = json_object_get(pt, "common_headers");
	const char *other = conf_str(pt, "other_headers");
	const char *lists[2] = {"display", "attachments"};
	size_t k = 0;

	if (json_object_size(common) > 0) {
		char want[4096];
		size_t n = 0;

		for (size_t i = 0; i < 6; i++) {
			const char *v = conf_str(common, labels[i]);

			if (v != NULL)
				n += (size_t)snprintf(want + n, sizeof(want) - n, "%s: %s\r\n",
						      labels[i], v);
		}
		if (n >= sizeof(want) || !cm_same(&o->common, (const uint8_t *)want, n))
			return "common headers differ";
	}
	if (other != NULL && !cm_same(&o->headers, (const uint8_t *)other, strlen(other)))
		return "other headers differ";
	for (int l = 0; l < 2; l++) {
		const json_t *arr = json_object_get(pt, lists[l]);
		const json_t *e;
		size_t i;

		json_array_foreach(arr, i, e) {
			const char *seen = conf_str(e, "seen_by");
			uint8_t *buf = NULL;
			size_t len = 0;
			int same;

			if (seen != NULL && strcmp(seen, role) != 0)
				continue;
			if (k >= o->n_parts)
				return "fewer parts than the manifest lists";
			if (conf_read(&buf, &len, c, conf_str(e, "file")) != 0)
				return ".plain file missing";
			same = cm_same(&o->parts[k].data, buf, len);
			free(buf);
			if (!same) {
				snprintf(why, sizeof(why), "%s part %zu differs from %s", lists[l],
					 i, conf_str(e, "file"));
				return why;
			}
			k++;
		}
	}
	return NULL;
}

static int
cm_read_msg(uint8_t **buf, size_t *len, const struct conf *c, const char *name)
{
	return name != NULL ? conf_read(buf, len, c, name) : -1;
}

void
conf_dmime_case(struct conf *c, const json_t *cs, const char *id)
{
	const json_t *pe = json_object_get(cs, "project_expect");
	const json_t *actors = json_object_get(pe, "actors"),
		     *ao = json_object_get(pe, "author_output");
	const json_t *pt = json_object_get(json_object_get(cs, "expect"), "plaintext");
	struct cm_parties cp;
	struct dime_msg_opened o;
	uint8_t *msg = NULL, *signed_msg = NULL;
	size_t len = 0, signed_len = 0;
	const char *why = "";

	if (cm_load(&cp, c, json_object_get(cs, "parties"), &why) != 0) {
		conf_result(c, id, "parties: %s", why);
		goto out;
	}
	if (actors != NULL) {
		if (cm_read_msg(&msg, &len, c, conf_str(pe, "message")) != 0) {
			conf_result(c, id, "message file missing");
			goto out;
		}
		for (int r = 0; r < 4; r++) {
			const char *want = conf_str(actors, cm_roles[r]), *diff;
			int rc;

			if (want == NULL)
				continue;
			why = "";
			rc = cm_act(&cp, r, &o, &why, msg, len);
			if ((rc == DIME_OK) != (strcmp(want, "accept") == 0)) {
				conf_result(c, id, "%s: got %s (%s), want %s", cm_roles[r],
					    rc == DIME_OK ? "accept" : "reject", why, want);
				dime_msg_opened_free(&o);
				goto out;
			}
			diff = rc == DIME_OK && (r == 0 || r == 3) && pt != NULL
				   ? cm_check_plain(c, pt, &o, cm_roles[r])
				   : NULL;
			dime_msg_opened_free(&o);
			if (diff != NULL) {
				conf_result(c, id, "%s: %s", cm_roles[r], diff);
				goto out;
			}
		}
	}
	if (ao != NULL) {
		struct dime_msg_envelope env;
		uint8_t *a = NULL;
		size_t alen = 0;
		int rc;

		if (cm_read_msg(&a, &alen, c, conf_str(ao, "file")) != 0) {
			conf_result(c, id, "author output file missing");
			goto out;
		}
		rc = cm_act(&cp, 0, &o, &why, a, alen);
		dime_msg_opened_free(&o);
		if ((rc == DIME_OK) !=
		    (strcmp(conf_str(ao, "author") ? conf_str(ao, "author") : "", "accept") == 0)) {
			conf_result(c, id, "author output: author got %s (%s)",
				    rc == DIME_OK ? "accept" : "reject", why);
			free(a);
			goto out;
		}
		rc = dime_msg_origin_sign(cp.ks, &signed_msg, &signed_len, &env, &why, a, alen,
					  cp.key[1], DIME_KS_NONE, &cp.p);
		free(a);
		if (rc != DIME_OK) {
			conf_result(c, id, "author output: origin-sign failed (%s)", why);
			goto out;
		}
		for (int r = 2; r < 4; r++) {
			rc = cm_act(&cp, r, &o, &why, signed_msg, signed_len);
			dime_msg_opened_free(&o);
			if (rc != DIME_OK) {
				conf_result(c, id, "origin-signed author output: %s rejects (%s)",
					    cm_roles[r], why);
				goto out;
			}
		}
	}
	conf_result(c, id, NULL);
out:
	free(msg);
	dime_msg_free(signed_msg, signed_len);
	cm_free(&cp);
}
