#ifndef DIME_TOOLS_CONF_H
#define DIME_TOOLS_CONF_H
/* Shared between the parts of `dime conformance`. */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli.h"

struct conf {
	const char *dir;
	json_t *parties;
	int passed, failed, skipped;
};

/* fmt NULL: PASS; otherwise FAIL with the formatted reason. */
void conf_result(struct conf *c, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A string member of o, or NULL. */
const char *conf_str(const json_t *o, const char *key);
/* A party of the manifest by name, or NULL. */
const json_t *conf_party(const struct conf *c, const char *name);
/* Read a file named by a manifest path (resolved inside DIR). Returns 0 or -1. */
int conf_read(uint8_t **buf, size_t *len, const struct conf *c, const char *manifest_path);
/* Load a signet named by a manifest path; *why on failure. Returns 0 or -1. */
int conf_signet(struct dime_signet **s, const char **why, const struct conf *c, const char *mpath,
		int binary_only);

/* The D/MIME cases (conf_msg.c). */
void conf_dmime_case(struct conf *c, const json_t *cs, const char *id);

/* The DMTP cases, dmtp-format and dmtp-parse (conf_dmtp.c). */
void conf_dmtp_case(struct conf *c, const json_t *cs, const char *id);

#endif
