/* Checked JSON: the position index and the typed readers. See jsonck.h. */
#include "jsonck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- position index ---- */

enum expect { EXP_NONE, EXP_VALUE, EXP_KEY };

struct frame {
	int32_t entry;     /* entry of this container */
	uint32_t count;    /* members or elements seen so far */
	int32_t last_key;  /* objects: entry of the member whose value comes next */
	uint8_t obj;
	uint8_t expect;
};

struct scan {
	const unsigned char *t;
	size_t len;
	size_t i;
	uint32_t line;
	uint32_t col;
};

/* Consumes one byte, keeping line and column. */
static void
scan_step(struct scan *s)
{
	unsigned char c = s->t[s->i++];

	if (c == '\n') {
		s->line++;
		s->col = 1;
	} else if ((c & 0xc0) != 0x80) {
		s->col++;
	}
}

static int32_t
index_add(struct cc_jck_index *ix, int32_t parent, uint32_t ordinal, uint32_t line,
    uint32_t col)
{
	struct cc_jck_entry *nv;
	size_t ncap;

	if (ix->n == ix->cap) {
		/* The text is capped at CC_JCK_MAX_TEXT, so this never nears INT32_MAX. */
		ncap = ix->cap ? ix->cap * 2 : 64;
		nv = realloc(ix->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		ix->v = nv;
		ix->cap = ncap;
	}
	ix->v[ix->n] = (struct cc_jck_entry){ parent, ordinal, line, col };
	return (int32_t)ix->n++;
}

/* Skips a string starting at the opening quote, the way cJSON finds its end. */
static int
scan_string(struct scan *s)
{
	scan_step(s);
	while (s->i < s->len) {
		if (s->t[s->i] == '"') {
			scan_step(s);
			return 0;
		}
		if (s->t[s->i] == '\\') {
			scan_step(s);
			if (s->i >= s->len)
				return -1;
		}
		scan_step(s);
	}
	return -1;
}

static int
is_delim(unsigned char c)
{
	return c <= 32 || c == ',' || c == ':' || c == '[' || c == ']' || c == '{' ||
	    c == '}' || c == '"';
}

int
cc_jck_index_build(const char *text, size_t len, struct cc_jck_index *ix, size_t *err_off,
    const char **why)
{
	struct frame st[CC_JCK_MAX_DEPTH];
	struct scan s = { (const unsigned char *)text, len, 0, 1, 1 };
	struct frame *top;
	size_t depth = 0;
	int32_t owner;
	int root_seen = 0;
	unsigned char c;

	memset(ix, 0, sizeof(*ix));
	*why = "malformed JSON";
	/* cJSON skips a UTF-8 byte order mark; it is not a column. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		s.i = 3;
	while (s.i < len) {
		c = s.t[s.i];
		if (c <= 32) { /* cJSON's idea of white space */
			scan_step(&s);
			continue;
		}
		top = depth ? &st[depth - 1] : NULL;
		if (c == '}' || c == ']') {
			if (top == NULL || top->obj != (c == '}'))
				goto fail;
			depth--;
			scan_step(&s);
			continue;
		}
		if (c == ',' || c == ':') {
			if (top == NULL)
				goto fail;
			if (c == ',')
				top->expect = top->obj ? EXP_KEY : EXP_VALUE;
			else
				top->expect = EXP_VALUE;
			scan_step(&s);
			continue;
		}
		if (top != NULL && top->obj && top->expect == EXP_KEY) {
			if (c != '"')
				goto fail;
			top->last_key = index_add(ix, top->entry, top->count++, s.line, s.col);
			if (top->last_key < 0)
				goto nomem;
			top->expect = EXP_NONE;
			if (scan_string(&s) == -1)
				goto fail;
			continue;
		}
		/* A value starts here: find (or record) the entry it belongs to. */
		if (top == NULL) {
			if (root_seen)
				goto fail;
			root_seen = 1;
			owner = index_add(ix, -1, 0, s.line, s.col);
			if (owner < 0)
				goto nomem;
		} else {
			if (top->expect != EXP_VALUE)
				goto fail;
			if (top->obj) {
				owner = top->last_key;
			} else {
				owner = index_add(ix, top->entry, top->count++, s.line, s.col);
				if (owner < 0)
					goto nomem;
			}
			top->expect = EXP_NONE;
		}
		if (c == '{' || c == '[') {
			if (depth == CC_JCK_MAX_DEPTH) {
				*why = "nested deeper than 64 levels";
				goto fail;
			}
			st[depth++] = (struct frame){ owner, 0, -1, c == '{',
				c == '{' ? EXP_KEY : EXP_VALUE };
			scan_step(&s);
		} else if (c == '"') {
			if (scan_string(&s) == -1)
				goto fail;
		} else {
			while (s.i < len && !is_delim(s.t[s.i]))
				scan_step(&s);
		}
	}
	if (depth != 0 || !root_seen)
		goto fail;
	return 0;
nomem:
	*why = "out of memory";
fail:
	*err_off = s.i < len ? s.i : len;
	cc_jck_index_free(ix);
	return -1;
}

void
cc_jck_index_free(struct cc_jck_index *ix)
{
	free(ix->v);
	memset(ix, 0, sizeof(*ix));
}

int32_t
cc_jck_index_find(const struct cc_jck_index *ix, int32_t parent, uint32_t ordinal)
{
	size_t k;

	/* Children are recorded after their container, so the search starts there. */
	for (k = parent < 0 ? 0 : (size_t)parent + 1; k < ix->n; k++)
		if (ix->v[k].parent == parent && ix->v[k].ordinal == ordinal)
			return (int32_t)k;
	return -1;
}

void
cc_jck_linecol(const char *text, size_t len, size_t off, uint32_t *line, uint32_t *col)
{
	struct scan s = { (const unsigned char *)text, len, 0, 1, 1 };

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		s.i = 3;
	if (off > len)
		off = len;
	while (s.i < off)
		scan_step(&s);
	*line = s.line;
	*col = s.col;
}

/* ---- errors ---- */

static int32_t
node_entry(const struct cc_jck *j, const struct cc_jnode *n)
{
	int32_t up;

	if (n->up == NULL)
		return cc_jck_index_find(&j->ix, -1, 0);
	up = node_entry(j, n->up);
	if (up < 0)
		return -1;
	return cc_jck_index_find(&j->ix, up, n->ordinal);
}

int
cc_jck_pos(const struct cc_jck *j, const struct cc_jnode *n, uint32_t *line, uint32_t *col)
{
	int32_t e = -1;
	int ret = 0;

	/* A value that is not in the text (a section left out) is shown at its container. */
	for (; n != NULL; n = n->up, ret = -1) {
		e = node_entry(j, n);
		if (e >= 0)
			break;
	}
	if (e < 0) {
		*line = *col = 0;
		return -1;
	}
	*line = j->ix.v[e].line;
	*col = j->ix.v[e].col;
	return ret;
}

static size_t
path_append(char *buf, size_t len, size_t off, const char *s)
{
	size_t n = strlen(s);

	if (off + 1 >= len)
		return off;
	if (n > len - 1 - off)
		n = len - 1 - off;
	memcpy(buf + off, s, n);
	buf[off + n] = '\0';
	return off + n;
}

static size_t
path_build(const struct cc_jnode *n, char *buf, size_t len)
{
	char idx[24];
	size_t off;

	if (n->up == NULL)
		return path_append(buf, len, 0, n->name ? n->name : "");
	off = path_build(n->up, buf, len);
	if (n->name == NULL) {
		snprintf(idx, sizeof(idx), "[%u]", n->ordinal);
		return path_append(buf, len, off, idx);
	}
	if (off > 0)
		off = path_append(buf, len, off, ".");
	return path_append(buf, len, off, n->name);
}

void
cc_jck_path(const struct cc_jnode *n, char *buf, size_t len)
{
	if (len == 0)
		return;
	buf[0] = '\0';
	path_build(n, buf, len);
}

static int
jck_vfail(struct cc_jck *j, const struct cc_jnode *n, const char *extra, const char *fmt,
    va_list ap)
{
	char path[512], msg[512];
	uint32_t line, col;

	if (j->failed)
		return -1;
	j->failed = true;
	if (j->err == NULL || j->errlen == 0)
		return -1;
	cc_jck_pos(j, n, &line, &col);
	cc_jck_path(n, path, sizeof(path));
	if (extra != NULL) {
		/* A missing member: the position is its object's, the path its own. */
		size_t off = strlen(path);
		if (off > 0)
			off = path_append(path, sizeof(path), off, ".");
		path_append(path, sizeof(path), off, extra);
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(j->err, j->errlen, "%s:%u:%u: %s%s%s", j->name, line, col, path,
	    path[0] ? ": " : "", msg);
	return -1;
}

int
cc_jck_fail(struct cc_jck *j, const struct cc_jnode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jck_vfail(j, n, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int
cc_jck_fail_at(struct cc_jck *j, const struct cc_jnode *n, const char *extra,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jck_vfail(j, n, extra, fmt, ap);
	va_end(ap);
	return -1;
}

int
cc_jck_fail_missing(struct cc_jck *j, const struct cc_jnode *obj, const char *key)
{
	return cc_jck_fail_at(j, obj, key, "required key is missing");
}

/* ---- parsing ---- */

int
cc_jck_parse(struct cc_jck *j, const char *name, const char *text, size_t len, char *err,
    size_t errlen, const char *top_name, struct cc_jnode *root)
{
	const char *end = NULL, *why;
	uint32_t line, col;
	size_t off;
	const char *nul;

	memset(j, 0, sizeof(*j));
	memset(root, 0, sizeof(*root));
	j->name = name;
	j->text = text;
	j->len = len;
	j->err = err;
	j->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CC_JCK_MAX_TEXT) {
		j->failed = true;
		snprintf(err, errlen, "%s: larger than %u bytes", name, CC_JCK_MAX_TEXT);
		return -1;
	}
	/* cJSON would stop at a NUL; the scanner would not. Neither may see one. */
	nul = memchr(text, '\0', len);
	if (nul != NULL) {
		cc_jck_linecol(text, len, (size_t)(nul - text), &line, &col);
		j->failed = true;
		snprintf(err, errlen, "%s:%u:%u: NUL byte in the text", name, line, col);
		return -1;
	}
	/* len + 1 takes in the terminating NUL, which cJSON wants to see after the value. */
	j->root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
	if (j->root == NULL) {
		off = end != NULL && end >= text ? (size_t)(end - text) : 0;
		cc_jck_linecol(text, len, off, &line, &col);
		j->failed = true;
		snprintf(err, errlen, "%s:%u:%u: syntax error", name, line, col);
		return -1;
	}
	if (cc_jck_index_build(text, len, &j->ix, &off, &why) == -1) {
		cc_jck_linecol(text, len, off, &line, &col);
		j->failed = true;
		snprintf(err, errlen, "%s:%u:%u: %s", name, line, col, why);
		return -1;
	}
	root->item = j->root;
	root->name = top_name;
	return 0;
}

void
cc_jck_done(struct cc_jck *j)
{
	cJSON_Delete(j->root);
	j->root = NULL;
	cc_jck_index_free(&j->ix);
}

/* ---- typed readers ---- */

static const char *
type_name(const cJSON *it)
{
	if (cJSON_IsObject(it))
		return "an object";
	if (cJSON_IsArray(it))
		return "an array";
	if (cJSON_IsString(it))
		return "a string";
	if (cJSON_IsNumber(it))
		return "a number";
	if (cJSON_IsBool(it))
		return "a boolean";
	if (cJSON_IsNull(it))
		return "null";
	return "something else";
}

int
cc_jck_object(struct cc_jck *j, const struct cc_jnode *n, const char *const *allowed,
    size_t max)
{
	const cJSON *it, *prev;
	struct cc_jnode child, first;
	char list[512];
	uint32_t ord = 0, pord, line, col;
	size_t k, off;

	if (!cJSON_IsObject(n->item))
		return cc_jck_fail(j, n, "expected an object, found %s", type_name(n->item));
	for (it = n->item->child; it != NULL; it = it->next, ord++) {
		child = (struct cc_jnode){ it, n, ord, it->string };
		if (ord >= max)
			return cc_jck_fail(j, &child, "too many members (at most %zu)", max);
		if (allowed != NULL) {
			for (k = 0; allowed[k] != NULL; k++)
				if (strcmp(allowed[k], it->string) == 0)
					break;
			if (allowed[k] == NULL) {
				list[0] = '\0';
				for (k = 0, off = 0; allowed[k] != NULL; k++) {
					if (k > 0)
						off = path_append(list, sizeof(list), off, ", ");
					off = path_append(list, sizeof(list), off, allowed[k]);
				}
				return cc_jck_fail(j, &child, "unknown key (allowed: %s)", list);
			}
		}
		/* Members before this one are few: known names once each, or at most max. */
		for (prev = n->item->child, pord = 0; prev != it; prev = prev->next, pord++) {
			if (strcmp(prev->string, it->string) == 0) {
				first = (struct cc_jnode){ prev, n, pord, prev->string };
				cc_jck_pos(j, &first, &line, &col);
				return cc_jck_fail(j, &child, "duplicate key (first at %u:%u)", line,
				    col);
			}
		}
	}
	return 0;
}

int
cc_jck_member(const struct cc_jnode *obj, const char *key, struct cc_jnode *out)
{
	const cJSON *it;
	uint32_t ord = 0;

	for (it = obj->item->child; it != NULL; it = it->next, ord++) {
		if (it->string != NULL && strcmp(it->string, key) == 0) {
			*out = (struct cc_jnode){ it, obj, ord, it->string };
			return 1;
		}
	}
	return 0;
}

void
cc_jck_element(const struct cc_jnode *arr, const cJSON *item, uint32_t i, struct cc_jnode *out)
{
	*out = (struct cc_jnode){ item, arr, i, NULL };
}

int
cc_jck_array(struct cc_jck *j, const struct cc_jnode *n, size_t max, size_t *count)
{
	const cJSON *it;
	size_t k = 0;

	if (!cJSON_IsArray(n->item))
		return cc_jck_fail(j, n, "expected an array, found %s", type_name(n->item));
	for (it = n->item->child; it != NULL; it = it->next)
		if (++k > max)
			return cc_jck_fail(j, n, "too many elements (at most %zu)", max);
	*count = k;
	return 0;
}

int
cc_jck_str(struct cc_jck *j, const struct cc_jnode *n, size_t maxlen, const char **out)
{
	const char *s;
	size_t k, len;

	if (!cJSON_IsString(n->item) || n->item->valuestring == NULL)
		return cc_jck_fail(j, n, "expected a string, found %s", type_name(n->item));
	s = n->item->valuestring;
	len = strlen(s);
	if (len == 0)
		return cc_jck_fail(j, n, "must not be empty");
	if (len > maxlen)
		return cc_jck_fail(j, n, "longer than %zu bytes", maxlen);
	for (k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
			return cc_jck_fail(j, n, "contains a control character");
	*out = s;
	return 0;
}

int
cc_jck_uint(struct cc_jck *j, const struct cc_jnode *n, uint64_t min, uint64_t max,
    uint64_t *out)
{
	double v;
	uint64_t u;

	if (!cJSON_IsNumber(n->item))
		return cc_jck_fail(j, n, "expected an integer, found %s", type_name(n->item));
	v = n->item->valuedouble;
	/* Written so that NaN fails too. */
	if (!(v >= (double)min && v <= (double)max))
		return cc_jck_fail(j, n, "%.15g is out of range %llu..%llu", v,
		    (unsigned long long)min, (unsigned long long)max);
	u = (uint64_t)v;
	if ((double)u != v)
		return cc_jck_fail(j, n, "expected an integer, found %.15g", v);
	*out = u;
	return 0;
}

int
cc_jck_bool(struct cc_jck *j, const struct cc_jnode *n, bool *out)
{
	if (!cJSON_IsBool(n->item))
		return cc_jck_fail(j, n, "expected true or false, found %s", type_name(n->item));
	*out = cJSON_IsTrue(n->item);
	return 0;
}

int
cc_jck_opt_str(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    size_t maxlen, char **out)
{
	struct cc_jnode m;
	const char *s = def;

	*out = NULL;
	if (cc_jck_member(obj, key, &m) && cc_jck_str(j, &m, maxlen, &s) == -1)
		return -1;
	if (s == NULL)
		return 0;
	*out = strdup(s);
	if (*out == NULL)
		return cc_jck_fail(j, obj, "out of memory");
	return 0;
}

int
cc_jck_opt_uint(struct cc_jck *j, const struct cc_jnode *obj, const char *key, uint64_t def,
    uint64_t min, uint64_t max, uint64_t *out)
{
	struct cc_jnode m;

	*out = def;
	if (cc_jck_member(obj, key, &m))
		return cc_jck_uint(j, &m, min, max, out);
	return 0;
}

int
cc_jck_opt_bool(struct cc_jck *j, const struct cc_jnode *obj, const char *key, bool def,
    bool *out)
{
	struct cc_jnode m;

	*out = def;
	if (cc_jck_member(obj, key, &m))
		return cc_jck_bool(j, &m, out);
	return 0;
}
