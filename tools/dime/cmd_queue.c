/* dime queue: list, show, retry and delete messages of dimed's outbound queue (dime/outq.h),
 * beside a running dimed: the queue is opened read-only and dimed is told (SIGUSR1) to rescan. */

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "cli.h"
#include "dime/dconf.h"
#include "dime/outq.h"
#include "dime/privsep.h"

static const char queue_usage[] =
    "usage: dime queue list [--config FILE] [--queue DIR]\n"
    "       dime queue show ID [--config FILE] [--queue DIR]\n"
    "       dime queue retry ID [--config FILE] [--queue DIR]\n"
    "       dime queue delete ID [--config FILE] [--queue DIR]\n"
    "\n"
    "The outbound queue of dimed (the `outq` key of its configuration; without --config the\n"
    "embedded default, var/outq). One message per recipient.\n"
    "  list    one JSON object per line, oldest first, like `postqueue -j`: queue_name\n"
    "          (active: not tried yet; deferred), queue_id, arrival_time, message_size,\n"
    "          sender (the author), recipients [{address, delay_reason}], next_attempt,\n"
    "          attempts\n"
    "  show    the envelope and delivery state of ID as one JSON object\n"
    "  retry   make ID due now\n"
    "  delete  remove ID (its message, then its state)\n"
    "retry and delete then signal the dimed running on the configuration's store (its pid\n"
    "file) to rescan the queue (SIGUSR1).\n"
    "\n"
    "Beside a running dimed: the last writer of a state file wins, so a retry that meets a\n"
    "delivery attempt in progress may be overwritten by that attempt's own schedule (retry\n"
    "again); a message deleted while dimed is sending it is still sent once.\n"
    "\n"
    "Exit status: 0 done; 1 no such message; 2 usage, configuration or I/O errors.\n";

struct queue_opts {
	const char *config, *queue, *id;
};

static int
queue_parse(struct queue_opts *o, int argc, char **argv, int want_id)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			o->config = argv[++i];
		else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
			o->queue = argv[++i];
		else if (argv[i][0] != '-' && want_id && o->id == NULL)
			o->id = argv[i];
		else
			return cli_err("queue %s: unexpected argument '%s'\n%s", argv[0], argv[i],
				       queue_usage);
	}
	if (want_id && o->id == NULL)
		return cli_err("queue %s: which message (ID)?\n%s", argv[0], queue_usage);
	return CLI_OK;
}

/* Load the configuration and open its queue read-only. */
static int
queue_open(struct dime_outq **q, struct dime_dconf *c, const struct queue_opts *o)
{
	char why[1024] = "";
	int rc;

	*q = NULL;
	if (dime_dconf_load(c, o->config, why, sizeof(why)) != DIME_OK)
		return cli_err("queue: configuration: %s", why);
	if (o->queue != NULL)
		snprintf(c->outq, sizeof(c->outq), "%s", o->queue);
	rc = dime_outq_open_flags(q, c->outq, NULL, DIME_OUTQ_OPEN_READONLY, why, sizeof(why));
	if (rc != DIME_OK)
		return cli_err("queue: %s: %s", c->outq, why[0] != 0 ? why : dime_strerror(rc));
	return CLI_OK;
}

static json_t *
queue_entry_json(const struct dime_outq_entry *e, int full)
{
	json_t *o = json_object(), *rcpts = json_array(), *r = json_object();

	json_object_set_new(o, "queue_name", json_string(e->attempts > 0 ? "deferred" : "active"));
	json_object_set_new(o, "queue_id", json_string(e->id));
	json_object_set_new(o, "arrival_time", json_integer(e->created));
	json_object_set_new(o, "message_size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "sender", json_string(e->author));
	json_object_set_new(r, "address", json_string(e->recipient));
	if (e->last_error[0] != 0)
		json_object_set_new(r, "delay_reason", json_string(e->last_error));
	json_array_append_new(rcpts, r);
	json_object_set_new(o, "recipients", rcpts);
	json_object_set_new(o, "next_attempt",
			    e->next == INT64_MAX ? json_null() : json_integer(e->next));
	json_object_set_new(o, "attempts", json_integer(e->attempts));
	if (full) {
		json_object_set_new(o, "origin", json_string(e->origin));
		json_object_set_new(o, "origin_fp", json_string(e->origin_fp));
		json_object_set_new(o, "destination_fp", json_string(e->dest_fp));
		json_object_set_new(o, "delay_notified", json_boolean(e->delay_notified));
	}
	return o;
}

static int
queue_print(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	int rc = CLI_OK;

	json_decref(o);
	if (s == NULL)
		return cli_err("queue: out of memory");
	if (puts(s) < 0)
		rc = cli_err("queue: cannot write the output");
	free(s);
	return rc;
}

static int
queue_list_one(const struct dime_outq_entry *e, void *arg)
{
	int *rc = arg;

	if (queue_print(queue_entry_json(e, 0)) != CLI_OK) {
		*rc = CLI_ERR;
		return 1;
	}
	return 0;
}

static int
queue_list(int argc, char **argv)
{
	struct queue_opts o;
	struct dime_dconf c;
	struct dime_outq *q = NULL;
	int rc;

	if (cli_wants_help(argc, argv, queue_usage))
		return CLI_OK;
	if ((rc = queue_parse(&o, argc, argv, 0)) != CLI_OK ||
	    (rc = queue_open(&q, &c, &o)) != CLI_OK)
		return rc;
	rc = CLI_OK;
	(void)dime_outq_list(q, queue_list_one, &rc);
	dime_outq_close(q);
	return rc;
}

static int
queue_show(int argc, char **argv)
{
	struct queue_opts o;
	struct dime_dconf c;
	struct dime_outq *q = NULL;
	struct dime_outq_entry e;
	int rc;

	if (cli_wants_help(argc, argv, queue_usage))
		return CLI_OK;
	if ((rc = queue_parse(&o, argc, argv, 1)) != CLI_OK ||
	    (rc = queue_open(&q, &c, &o)) != CLI_OK)
		return rc;
	if (dime_outq_get(q, o.id, &e) != DIME_OK)
		rc = cli_no("queue show: no message %s in %s", o.id, c.outq);
	else
		rc = queue_print(queue_entry_json(&e, 1));
	dime_outq_close(q);
	return rc;
}

static int
queue_change(int argc, char **argv, int del)
{
	struct queue_opts o;
	struct dime_dconf c;
	struct dime_outq *q = NULL;
	int rc, e;

	if (cli_wants_help(argc, argv, queue_usage))
		return CLI_OK;
	if ((rc = queue_parse(&o, argc, argv, 1)) != CLI_OK ||
	    (rc = queue_open(&q, &c, &o)) != CLI_OK)
		return rc;
	e = del ? dime_outq_done(q, o.id) : dime_outq_retry_now(q, o.id, (int64_t)time(NULL));
	dime_outq_close(q);
	if (e == DIME_E_NOTFOUND)
		return cli_no("queue %s: no message %s in %s", argv[0], o.id, c.outq);
	if (e != DIME_OK)
		return cli_err("queue %s: %s: %s", argv[0], o.id, dime_strerror(e));
	printf("%s %s\n", del ? "deleted" : "due now:", o.id);
	cli_outq_notify(&c);
	return CLI_OK;
}

static int
queue_retry(int argc, char **argv)
{
	return queue_change(argc, argv, 0);
}

static int
queue_delete(int argc, char **argv)
{
	return queue_change(argc, argv, 1);
}

int
cmd_queue(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"list", "the queued messages, one JSON line each (like postqueue -j)", queue_list},
	    {"show", "one message's envelope and delivery state (JSON)", queue_show},
	    {"retry", "make a message due now and tell dimed", queue_retry},
	    {"delete", "remove a message and tell dimed", queue_delete},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("queue", cmds, argc, argv);
}
