/*
 * Checked JSON for certconn's own files (key-role policy, daemon config): cJSON parses, and a
 * small position index says where each value sits in the text, so that every error names
 * "file:line:col: key.path: problem".
 *
 * cJSON items carry no positions, so a second pass (the scanner) walks the same text knowing
 * only strings (with escapes) and the nesting of {} and []. For every object member it records
 * where the key starts; for every array element and for the top-level value, where the value
 * starts. It never reads a value: cJSON does that. A value is found again by its structural
 * place, (container, ordinal), which is the same in cJSON's child lists because cJSON keeps
 * members in document order, duplicates included.
 *
 * A shared header of the tree (not an installed API): built into cc_policy, whose include
 * directory exports it, and used by cc_policy (key-role policy, issuance profiles through
 * certconn/issuance.h), cc_config (certconnd.json and its net sections) and certconn-hub
 * (hub/: its config file and every protocol request body, so that a bad request is answered
 * with the position and key path of the problem), and by their tests and fuzzers. Keep it
 * free of any one user's types. Error convention: 0/-1; the first failure is written to the
 * context's error buffer and later ones are dropped.
 */
#ifndef CERTCONN_JSONCK_H
#define CERTCONN_JSONCK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CC_JCK_MAX_DEPTH 64          /* deeper documents are refused */
#define CC_JCK_MAX_TEXT (1u << 20)   /* largest document accepted, bytes */

/* ---- the position index (scanner) ---- */

struct cc_jck_entry {
	int32_t parent;    /* entry of the containing object or array; -1 for the top level */
	uint32_t ordinal;  /* 0-based place among the container's members or elements */
	uint32_t line;     /* 1-based */
	uint32_t col;      /* 1-based, in characters (UTF-8 continuation bytes do not count) */
};

struct cc_jck_index {
	struct cc_jck_entry *v; /* owned; document order */
	size_t n;
	size_t cap;
};

/*
 * Builds the index of text[0..len). The text should be one that cJSON accepted; anything else
 * is refused without harm: -1 with *err_off (byte offset) and *why ("nested deeper than 64
 * levels", "malformed JSON", "out of memory"). The index is empty on failure.
 */
int cc_jck_index_build(const char *text, size_t len, struct cc_jck_index *ix, size_t *err_off,
    const char **why);
void cc_jck_index_free(struct cc_jck_index *ix);
/* Entry of the ordinal-th child of entry parent (-1, 0 for the top-level value), or -1. */
int32_t cc_jck_index_find(const struct cc_jck_index *ix, int32_t parent, uint32_t ordinal);
/* Line and column of byte offset off, counted the way the index counts them. */
void cc_jck_linecol(const char *text, size_t len, size_t off, uint32_t *line, uint32_t *col);

/* ---- checked reading ---- */

/*
 * One value being checked. Nodes live on the checker's stack and point up to their container,
 * so the key path and the position are only worked out when an error is reported.
 */
struct cc_jnode {
	const cJSON *item;
	const struct cc_jnode *up; /* NULL for the top level */
	uint32_t ordinal;          /* place in up's child list */
	const char *name;          /* member name (borrowed from cJSON); NULL for an element */
};

struct cc_jck {
	const char *name;          /* file name used in messages */
	const char *text;
	size_t len;
	struct cc_jck_index ix;
	cJSON *root;               /* owned */
	char *err;                 /* caller's buffer */
	size_t errlen;
	bool failed;
};

/*
 * Parses text (len bytes; text[len] must be NUL) into j->root and builds the index. On a
 * syntax error the message is "name:line:col: syntax error" at the place cJSON stopped.
 * root gets the top-level node (top_name: the path prefix the top level stands for, e.g.
 * "net", or NULL). Release with cc_jck_done in any case.
 */
int cc_jck_parse(struct cc_jck *j, const char *name, const char *text, size_t len,
    char *err, size_t errlen, const char *top_name, struct cc_jnode *root);
void cc_jck_done(struct cc_jck *j);

/* Reports "name:line:col: path: message" for node n (the first report wins). Returns -1. */
int cc_jck_fail(struct cc_jck *j, const struct cc_jnode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports a problem of obj's member key, which is absent from the text: at obj's position,
 * with key's path. Returns -1. */
int cc_jck_fail_at(struct cc_jck *j, const struct cc_jnode *obj, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Reports that obj lacks the required member key, at obj's position. Returns -1. */
int cc_jck_fail_missing(struct cc_jck *j, const struct cc_jnode *obj, const char *key);
/* Key path of n, e.g. "keys.roles.ra.mechanisms[1]" ("" for an unnamed top level). */
void cc_jck_path(const struct cc_jnode *n, char *buf, size_t len);
/* Position of n: 0; -1 when n is not in the text and its nearest container's position was
 * given instead (0:0 when none is). */
int cc_jck_pos(const struct cc_jck *j, const struct cc_jnode *n, uint32_t *line, uint32_t *col);

/*
 * Checks that n is an object whose members are all named in allowed (NULL-terminated; NULL
 * for any name), appear once, and number at most max.
 */
int cc_jck_object(struct cc_jck *j, const struct cc_jnode *n, const char *const *allowed,
    size_t max);
/* 1 and *out filled when obj has member key, 0 when it has not. */
int cc_jck_member(const struct cc_jnode *obj, const char *key, struct cc_jnode *out);
/* Element i of array node arr (the caller checked cJSON_IsArray and the bound). */
void cc_jck_element(const struct cc_jnode *arr, const cJSON *item, uint32_t i,
    struct cc_jnode *out);
/* Checks that n is an array of at most max elements; *count gets its size. */
int cc_jck_array(struct cc_jck *j, const struct cc_jnode *n, size_t max, size_t *count);

/* A non-empty string of at most maxlen bytes without control characters; borrowed. */
int cc_jck_str(struct cc_jck *j, const struct cc_jnode *n, size_t maxlen, const char **out);
/* An integral number in min..max. */
int cc_jck_uint(struct cc_jck *j, const struct cc_jnode *n, uint64_t min, uint64_t max,
    uint64_t *out);
int cc_jck_bool(struct cc_jck *j, const struct cc_jnode *n, bool *out);

/* Optional members with defaults. *out of opt_str is strdup'd (caller frees); def may be NULL. */
int cc_jck_opt_str(struct cc_jck *j, const struct cc_jnode *obj, const char *key,
    const char *def, size_t maxlen, char **out);
int cc_jck_opt_uint(struct cc_jck *j, const struct cc_jnode *obj, const char *key,
    uint64_t def, uint64_t min, uint64_t max, uint64_t *out);
int cc_jck_opt_bool(struct cc_jck *j, const struct cc_jnode *obj, const char *key, bool def,
    bool *out);

#endif
