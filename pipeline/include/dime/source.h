#ifndef DIME_PIPELINE_SOURCE_H
#define DIME_PIPELINE_SOURCE_H
/* Batch inputs (`--in PATH`): a directory of files, a Maildir, or an mbox file, yielded one
 * message at a time. Memory does not grow with the number of messages, except that directory
 * and Maildir sources hold the file NAMES (never contents) in memory, to yield them sorted.
 *
 * Kinds, as dime_source_open detects them:
 * - Maildir: a directory holding the subdirectories cur/ and new/ (tmp/ is optional and never
 *   read: mail there is still being delivered). Every regular file of cur/ and new/ whose name
 *   does not start with '.' is a message.
 * - Directory of files: any other directory. Its regular files (names starting with '.' and
 *   everything that is not a regular file, subdirectories included, are skipped; no
 *   recursion) are the messages.
 * Symbolic links (dir and Maildir): a link to a regular file inside the input directory is
 * read as its target; a link that leads outside it is yielded as an item with err = -EXDEV
 * (refused: `ln -s /etc/shadow in/x` must not get encrypted), unless the source was opened
 * with DIME_SOURCE_FOLLOW_SYMLINKS; dangling links and links to anything else are skipped.
 * Paths are yielded as real paths (no symbolic link in them) with no_symlinks set, so the
 * reader can refuse a link swapped in after the listing (O_NOFOLLOW / RESOLVE_NO_SYMLINKS).
 * A Maildir whose cur/ or new/ is a link leading outside the input fails to open.
 * - mbox: a regular file, or a pipe or character device (so /dev/stdin works), read as
 *   mboxrd (see below).
 * Directory and Maildir items come sorted by file name in byte order (strcmp, locale-free),
 * Maildir cur/ and new/ merged (same name: cur/ first), so runs are deterministic.
 *
 * mbox (mboxrd): the file must start with a "From " line (else the source fails: "not an
 * mbox"); an empty file holds zero messages. A line starting with "From " that comes first in
 * the file or right after a blank line ("\n" or "\r\n") starts a new message; it is not part of
 * the message, and the blank line before it belongs to the separator (one newline, "\n" or
 * "\r\n", is removed from the end of the previous message; the same at end of file when the
 * last line is blank). A "From " line that does not follow a blank line is body text. In every
 * message line, ">From ", ">>From ", ... lose one '>' (mboxrd unescaping). mboxo files are read
 * the same way, so an mboxo body line that really began with ">From " loses its '>': the known
 * mboxo ambiguity. CRLF files work: "\r\n" counts as a line end throughout. A line with more
 * '>' than the read buffer (1 MiB) holds before "From " is not unescaped.
 * The mbox is streamed through a fixed 1 MiB buffer: the source holds that buffer plus the
 * message being assembled (bounded by the maximum, see dime_source_set_max).
 *
 * Thread-safety: a source is used by one thread at a time. Return codes are 0/1 or -errno
 * (-EINVAL for a bad format), and *why names the failure (static string). */

#include <stddef.h>
#include <stdint.h>

#include "dime/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dime_source;

enum dime_source_kind { DIME_SRC_DIR = 1, DIME_SRC_MAILDIR = 2, DIME_SRC_MBOX = 3 };

/* Largest mbox message by default: DIME_MSG_MAX_BYTES (1 GiB). */
#define DIME_SOURCE_MAX_DEFAULT ((size_t)0x40000000u)

/* One message. */
struct dime_source_item {
	/* A unique, filesystem-safe name for the output of this item:
	 * - dir: the file name as is (unique in its directory);
	 * - Maildir: the file name with every byte outside [A-Za-z0-9._,+=-] turned into '_' (so
	 *   "1700000000.M1P2.host:2,S" gives "1700000000.M1P2.host_2,S"); when two entries give the
	 *   same name, those get the prefix "cur_" / "new_", and a name still taken after that gets
	 *   a suffix "~N" (N = 1, 2, ...);
	 * - mbox: "msg-%06zu" with the 1-based ordinal of the message in the file. */
	char name[256];
	char *path;	 /* dir/Maildir: the file to read (malloc'd); mbox: NULL */
	uint8_t *data;	 /* mbox: the message (malloc'd, one NUL byte after len bytes); else NULL */
	size_t len;	 /* mbox: bytes of data; else 0 */
	int err;	 /* 0, or an item-level problem: -EFBIG (mbox message over the maximum),
			  * -EXDEV (a symbolic link leading outside the input) */
	const char *why; /* with err: static description; else NULL */
	int no_symlinks; /* 1: path is a real path; open it refusing any symbolic link in it */
};

/* dime_source_open flags */
#define DIME_SOURCE_FOLLOW_SYMLINKS 1u /* follow links wherever they lead (the old behaviour) */

/* Open path and detect its kind. Directory and Maildir names are listed here.
 * Returns: 0; -errno with *why ("cannot stat input", "cannot list directory", "cannot open
 *          mbox", "cannot read mbox"); -EINVAL with *why ("not an mbox: first line is not a
 *          From_ line", "input is not a directory or a file"); -EXDEV with *why (a Maildir
 *          folder leads outside the input); -ENOMEM.
 * In: flags: 0 or DIME_SOURCE_FOLLOW_SYMLINKS.
 * Out: *s, returns owned (dime_source_close), NULL on failure; *why NULL on success. */
DIME_MUST_CHECK int dime_source_open(struct dime_source **s, const char *path, unsigned flags,
				     const char **why);

/* Is path (which must exist) the input directory itself or inside it, symbolic links
 * resolved? Used to refuse an output directory that would be read back as input.
 * Returns: 1 yes, 0 no (or an mbox source, or path cannot be resolved), -ENOMEM. */
int dime_source_contains(const struct dime_source *s, const char *path);

/* Returns: the kind detected at open. */
enum dime_source_kind dime_source_kind(const struct dime_source *s);

/* mbox only: the largest message to yield (default DIME_SOURCE_MAX_DEFAULT; 0 restores it).
 * A larger message is skipped without being buffered and yielded as an item with
 * err = -EFBIG, data NULL; the source goes on with the next message. */
void dime_source_set_max(struct dime_source *s, size_t bytes);

/* The next item. Item-level problems of dir/Maildir files (unreadable, vanished) show only
 * when the path is read.
 * Returns: 1 with *it filled (free it with dime_source_item_free), 0 at the end (and on every
 *          later call), or -errno with *why when the source failed (a read error in the mbox;
 *          -ENOMEM); after a failure every later call fails the same way.
 * Out: *it, zeroed unless 1 is returned. */
DIME_MUST_CHECK int dime_source_next(struct dime_source *s, struct dime_source_item *it,
				     const char **why);

/* Free what an item holds and zero it (NULL-safe fields; safe on a zeroed item). */
void dime_source_item_free(struct dime_source_item *it);

/* Release s (NULL-safe). */
void dime_source_close(struct dime_source *s);

/* Expected number of items, for a progress ETA:
 * - dir/Maildir: exact (the names were listed at open);
 * - mbox: 0 (unknown) before the first message; then an estimate from the bytes read so far,
 *   (messages so far) * (file size) / (bytes consumed); exact at the end. A pipe gives 0 until
 *   its end. Never less than the number of items already yielded. */
size_t dime_source_count_hint(struct dime_source *s);

#ifdef __cplusplus
}
#endif
#endif
